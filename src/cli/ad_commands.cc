// `coffer ad sp ...` and `coffer ad user ...`: service principals and
// users, named and flagged as `az ad sp` and `az ad user`. They talk to the
// Graph-shaped directory API (/v1.0/servicePrincipals, /v1.0/users).

#include <cstdlib>
#include <iostream>
#include <iterator>
#include <optional>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/vault_objects.h"
#include "client/api_client.h"
#include "common/encoding.h"
#include "common/files.h"
#include "common/json.h"
#include "common/strings.h"
#include "common/time_format.h"
#include "crypto/primitives.h"
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

// A password from --password, or --password-file ("-" is stdin; one
// trailing newline dropped). Empty when neither is given.
std::string PasswordOf(const std::string& password, const std::string& file) {
  if (!password.empty() && !file.empty()) {
    Usage("give --password or --password-file, not both");
  }
  if (file.empty()) {
    return password;
  }
  std::string value;
  if (file == "-") {
    value.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    value = ReadFileOrUsage(file);
  }
  if (!value.empty() && value.back() == '\n') {
    value.pop_back();
  }
  if (value.empty()) {
    Usage("--password-file: the password is empty");
  }
  return value;
}

// A generated password that meets the policy: 18 random bytes of base64url
// (24 characters) with a fixed class suffix, so all four classes appear.
std::string GeneratedPassword() {
  return Base64UrlEncode(crypto::RandomBytes(18)) + "a-A1";
}

// The path of a user, named by object id or user principal name.
std::string UserPath(const std::string& id) {
  return "/v1.0/users/" + PercentEncode(id);
}

std::optional<bool> ParseBool(const std::string& flag, const std::string& value) {
  if (value.empty()) {
    return std::nullopt;
  }
  if (value == "true") {
    return true;
  }
  if (value == "false") {
    return false;
  }
  Usage(flag + " takes true or false");
}

void AddUserCommands(CLI::App* ad) {
  auto* user = ad->add_subcommand("user", "Manage users (people who sign in)");
  user->require_subcommand(1);
  {
    auto* cmd = user->add_subcommand("create", "Create a user");
    struct Args {
      std::string name, upn, nickname, password, password_file, given, surname;
      bool force_change = false;
    };
    auto a = std::make_shared<Args>();
    cmd->add_option("--display-name", a->name, "Display name")->required();
    cmd->add_option("--user-principal-name", a->upn, "Sign-in name, alias@domain")->required();
    cmd->add_option("--mail-nickname", a->nickname, "Mail alias (default: the name's alias)");
    cmd->add_option("--password", a->password,
                    "Password (visible to other local users; prefer --password-file)");
    cmd->add_option("--password-file", a->password_file,
                    "Read the password from a file, - for stdin");
    cmd->add_option("--given-name", a->given, "Given name");
    cmd->add_option("--surname", a->surname, "Surname");
    cmd->add_flag("--force-change-password-next-sign-in", a->force_change,
                  "The user must choose a new password at the first sign-in");
    cmd->callback([a] {
      std::string password = PasswordOf(a->password, a->password_file);
      bool generated = password.empty();
      if (generated) {
        password = GeneratedPassword();
      }
      Json body = {
          {"accountEnabled", true},
          {"displayName", a->name},
          {"userPrincipalName", a->upn},
          {"mailNickname", a->nickname.empty() ? a->upn.substr(0, a->upn.find('@')) : a->nickname},
          {"passwordProfile",
           {{"password", password}, {"forceChangePasswordNextSignIn", a->force_change}}}};
      if (!a->given.empty()) {
        body["givenName"] = a->given;
      }
      if (!a->surname.empty()) {
        body["surname"] = a->surname;
      }
      auto c = MakeClient();
      Json created = Call(c, "POST", "/v1.0/users", {201}, ToJson(body));
      if (generated) {
        // Shown this once, as the only place it exists.
        created["password"] = password;
      }
      Print(created);
    });
  }
  {
    auto* cmd = user->add_subcommand("list", "List users (all pages)");
    auto upn = std::make_shared<std::string>();
    auto prefix = std::make_shared<std::string>();
    auto filter = std::make_shared<std::string>();
    cmd->add_option("--upn", *upn, "Only the user with this user principal name");
    cmd->add_option("--display-name", *prefix, "Only users whose display name starts so");
    cmd->add_option("--filter", *filter, "An OData filter (Graph's subset, docs/users.md)");
    cmd->callback([=] {
      auto quote = [](const std::string& s) {
        std::string out = "'";
        for (char ch : s) {
          out += ch == '\'' ? std::string("''") : std::string(1, ch);
        }
        return out + "'";
      };
      std::vector<std::string> clauses;
      if (!filter->empty()) {
        clauses.push_back(*filter);
      }
      if (!upn->empty()) {
        clauses.push_back("userPrincipalName eq " + quote(*upn));
      }
      if (!prefix->empty()) {
        clauses.push_back("startswith(displayName," + quote(*prefix) + ")");
      }
      std::string joined;
      for (const auto& clause : clauses) {
        joined += (joined.empty() ? "" : " and ") + clause;
      }
      auto c = MakeClient();
      std::string url = c.config().authority + "/v1.0/users";
      if (!joined.empty()) {
        url += "?$filter=" + PercentEncode(joined);
      }
      Json all = Json::array();
      // Follow @odata.nextLink, at most 10,000 pages.
      for (int page = 0; !url.empty() && page < 10000; ++page) {
        Json got = Expect(c.Call("GET", url, c.config().authority), {200});
        for (auto& u : got.value("value", Json::array())) {
          all.push_back(std::move(u));
        }
        url = StringMember(got, "@odata.nextLink");
      }
      Print(all);
    });
  }
  for (const char* verb : {"show", "delete"}) {
    std::string v = verb;
    auto* cmd = user->add_subcommand(
        verb, v == "show" ? "Show a user" : "Delete a user; their tokens stop working at once");
    auto id = std::make_shared<std::string>();
    cmd->add_option("--id", *id, "Object id or user principal name")->required();
    cmd->callback([=] {
      auto c = MakeClient();
      if (v == "show") {
        Print(Call(c, "GET", UserPath(*id), {200}));
      } else {
        Call(c, "DELETE", UserPath(*id), {204});
      }
    });
  }
  {
    auto* cmd = user->add_subcommand("update", "Change a user's properties or reset the password");
    struct Args {
      std::string id, name, password, password_file, force_change, enabled, upn;
    };
    auto a = std::make_shared<Args>();
    cmd->add_option("--id", a->id, "Object id or user principal name")->required();
    cmd->add_option("--display-name", a->name, "New display name");
    cmd->add_option("--user-principal-name", a->upn, "New user principal name");
    cmd->add_option("--password", a->password, "New password (a reset; ends the user's sessions)");
    cmd->add_option("--password-file", a->password_file,
                    "Read the new password from a file, - for stdin");
    cmd->add_option("--force-change-password-next-sign-in", a->force_change,
                    "true or false: the user must choose a new password at the next sign-in");
    cmd->add_option("--account-enabled", a->enabled,
                    "true or false: whether the user may sign in (false ends their sessions)");
    cmd->callback([a] {
      Json body = Json::object();
      std::string password = PasswordOf(a->password, a->password_file);
      std::optional<bool> force =
          ParseBool("--force-change-password-next-sign-in", a->force_change);
      std::optional<bool> enabled = ParseBool("--account-enabled", a->enabled);
      if (!password.empty()) {
        body["passwordProfile"] = {{"password", password},
                                   {"forceChangePasswordNextSignIn", force.value_or(false)}};
      } else if (force) {
        Usage("--force-change-password-next-sign-in goes with a new password");
      }
      if (!a->name.empty()) {
        body["displayName"] = a->name;
      }
      if (!a->upn.empty()) {
        body["userPrincipalName"] = a->upn;
      }
      if (enabled) {
        body["accountEnabled"] = *enabled;
      }
      if (body.empty()) {
        Usage("nothing to update");
      }
      auto c = MakeClient();
      Call(c, "PATCH", UserPath(a->id), {204}, ToJson(body));
    });
  }
}

}  // namespace

void AddAdCommands(CLI::App& app) {
  auto* ad = app.add_subcommand("ad", "Manage the directory (as `az ad`)");
  ad->require_subcommand(1);
  AddUserCommands(ad);
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
