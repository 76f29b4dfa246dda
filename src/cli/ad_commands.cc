// `coffer ad sp ...`: service principals, named and flagged as `az ad sp`.
// They talk to the Graph-shaped directory API (/v1.0/servicePrincipals).

#include <cstdlib>
#include <iostream>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "client/api_client.h"
#include "common/files.h"
#include "common/json.h"
#include "common/strings.h"
#include "common/time_format.h"
#include "crypto/rsa_key.h"
#include "crypto/x509.h"

namespace coffer::cli {
namespace {

Json Call(client::ApiClient& c, const std::string& method, const std::string& path,
          std::initializer_list<int> ok, const std::string& body = "") {
  return Expect(c.Call(method, c.config().authority + path, c.config().authority, body), ok);
}

// Resolve finds a service principal by object id or app (client) id.
Json Resolve(client::ApiClient& c, const std::string& id) {
  Json list = Call(c, "GET", "/v1.0/servicePrincipals", {200});
  for (const auto& sp : list.value("value", Json::array())) {
    if (sp.value("id", "") == id || sp.value("appId", "") == id) {
      return sp;
    }
  }
  Fail(Status(StatusCode::kNotFound, "Service principal '" + id + "' does not exist.",
              "Request_ResourceNotFound"));
}

std::string EndDate(int years) {
  if (years < 1 || years > 10) {
    Usage("--years must be from 1 to 10");
  }
  return FormatIsoTime(static_cast<int64_t>(std::time(nullptr)) + int64_t{years} * 365 * 86400);
}

// NewCertificateFile makes an RSA key and a self-signed certificate for an
// app, writes both as PEM to `path` (mode 0600), and returns the certificate.
std::string NewCertificateFile(const std::string& path, const std::string& name, int years) {
  auto key = crypto::RsaKey::Generate(2048);
  if (!key.ok()) {
    Fail(key.status());
  }
  auto cert = crypto::CreateSelfSignedCertificate(**key, name, years * 365);
  if (!cert.ok()) {
    Fail(cert.status());
  }
  Status written = WriteFileAtomic(path, (*key)->PrivatePem() + *cert, 0600);
  if (!written.ok()) {
    Fail(written);
  }
  return *cert;
}

std::string ReadCertificate(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) {
    Usage("cannot read " + path + ": " + std::string(text.status().message()));
  }
  return *text;
}

// Credentials asks for: a new secret (default), a new self-signed
// certificate written to a file, or an existing certificate uploaded.
struct CredentialChoice {
  bool create_cert = false;
  std::string cert_file;  // with create_cert: where to write; else: what to upload
};

void AddCredentialOptions(CLI::App* cmd, CredentialChoice& c) {
  cmd->add_flag("--create-cert", c.create_cert,
                "Create a self-signed certificate instead of a secret and write it, with its "
                "private key, to --cert-file");
  cmd->add_option("--cert-file", c.cert_file,
                  "With --create-cert: the PEM file to write (default ./<appId>.pem). Without: "
                  "an existing certificate (PEM or DER) to register");
}

}  // namespace

void AddAdCommands(CLI::App& app) {
  auto* ad = app.add_subcommand("ad", "Manage the directory (as `az ad`)");
  ad->require_subcommand(1);
  auto* sp = ad->add_subcommand("sp", "Manage service principals");
  sp->require_subcommand(1);

  // `create-for-rbac --name` as az; `create --display-name` as the issue of
  // app and principal in one step (Coffer's apps and principals are one object).
  for (const auto& [verb, flag] : {std::pair{"create-for-rbac", "--name,-n"},
                                   std::pair{"create", "--display-name,--name,-n"}}) {
    auto* cmd = sp->add_subcommand(verb, "Create a service principal with a client secret");
    auto name = std::make_shared<std::string>();
    auto years = std::make_shared<int>(1);
    cmd->add_option(flag, *name, "Display name")->required();
    cmd->add_option("--years", *years, "Secret lifetime in years (1-10)")->capture_default_str();
    cmd->callback([=] {
      // Validate everything before the first call, so a usage error creates nothing.
      std::string end = EndDate(*years);
      auto c = MakeClient();
      Json created =
          Call(c, "POST", "/v1.0/servicePrincipals", {201}, ToJson(Json{{"displayName", *name}}));
      std::string password;
      std::string id = created.value("id", "");
      if (*years == 1) {
        password = created["passwordCredentials"][0].value("secretText", "");
      } else {
        // The first secret lasts one year; replace it with one of the asked lifetime.
        Json added = Call(c, "POST", "/v1.0/servicePrincipals/" + id + "/addPassword", {200},
                          ToJson(Json{{"passwordCredential", {{"endDateTime", end}}}}));
        password = added.value("secretText", "");
        Call(c, "POST", "/v1.0/servicePrincipals/" + id + "/removePassword", {204},
             ToJson(Json{{"keyId", created["passwordCredentials"][0].value("keyId", "")}}));
      }
      Print(Json{{"appId", created.value("appId", "")},
                 {"displayName", created.value("displayName", "")},
                 {"password", password},
                 {"tenant", TenantOf(c)}});
    });
  }
  {
    auto* cmd = sp->add_subcommand("list", "List service principals");
    cmd->callback([] {
      auto c = MakeClient();
      Print(Call(c, "GET", "/v1.0/servicePrincipals", {200}).value("value", Json::array()));
    });
  }
  for (const char* verb : {"show", "delete"}) {
    std::string v = verb;
    auto* cmd = sp->add_subcommand(verb, v == "show" ? "Show a service principal"
                                                     : "Delete a service principal; its tokens "
                                                       "stop working at once");
    auto id = std::make_shared<std::string>();
    cmd->add_option("--id", *id, "Object id or app (client) id")->required();
    cmd->callback([=] {
      auto c = MakeClient();
      Json found = Resolve(c, *id);
      if (v == "show") {
        Print(found);
      } else {
        Call(c, "DELETE", "/v1.0/servicePrincipals/" + found.value("id", ""), {204});
      }
    });
  }
  {
    auto* credential =
        sp->add_subcommand("credential", "Manage a service principal's secrets and certificates");
    credential->require_subcommand(1);
    auto* cmd = credential->add_subcommand(
        "reset",
        "Issue a new client secret or certificate (and remove the old credentials unless "
        "--append)");
    auto id = std::make_shared<std::string>();
    auto years = std::make_shared<int>(1);
    auto append = std::make_shared<bool>(false);
    auto choice = std::make_shared<CredentialChoice>();
    cmd->add_option("--id", *id, "Object id or app (client) id")->required();
    cmd->add_option("--years", *years, "Credential lifetime in years (1-10)")
        ->capture_default_str();
    cmd->add_flag("--append", *append, "Keep the existing credentials");
    AddCredentialOptions(cmd, *choice);
    cmd->callback([=] {
      std::string end = EndDate(*years);
      auto c = MakeClient();
      Json found = Resolve(c, *id);
      std::string object_id = found.value("id", "");
      std::string app_id = found.value("appId", "");
      std::string base = "/v1.0/servicePrincipals/" + object_id;
      Json out = {{"appId", app_id}, {"tenant", TenantOf(c)}};
      if (choice->create_cert || !choice->cert_file.empty()) {
        std::string path = choice->cert_file.empty() ? app_id + ".pem" : choice->cert_file;
        std::string cert =
            choice->create_cert ? NewCertificateFile(path, app_id, *years) : ReadCertificate(path);
        Json added = Call(
            c, "POST", base + "/addKey", {200},
            ToJson(Json{{"keyCredential",
                         {{"type", "AsymmetricX509Cert"}, {"usage", "Verify"}, {"key", cert}}}}));
        if (choice->create_cert) {
          out["fileWithCertAndPrivateKey"] = path;
        }
        out["thumbprint"] = added.value("customKeyIdentifier", "");
      } else {
        Json added = Call(c, "POST", base + "/addPassword", {200},
                          ToJson(Json{{"passwordCredential", {{"endDateTime", end}}}}));
        out["password"] = added.value("secretText", "");
      }
      if (!*append) {
        std::string new_thumbprint = out.value("thumbprint", "");
        for (const auto& old : found.value("passwordCredentials", Json::array())) {
          Call(c, "POST", base + "/removePassword", {204},
               ToJson(Json{{"keyId", old.value("keyId", "")}}));
        }
        for (const auto& old : found.value("keyCredentials", Json::array())) {
          if (old.value("customKeyIdentifier", "") != new_thumbprint) {
            Call(c, "POST", base + "/removeKey", {204},
                 ToJson(Json{{"keyId", old.value("keyId", "")}}));
          }
        }
      }
      Print(out);
    });
  }
}

}  // namespace coffer::cli
