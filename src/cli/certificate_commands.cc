// `coffer keyvault certificate ...`: the certificates commands, named and
// flagged as `az keyvault certificate ...` (docs/cli.md). Results are the
// certificates API's JSON.

#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/vault_objects.h"
#include "common/encoding.h"
#include "common/json.h"
#include "common/strings.h"
#include "crypto/certificate.h"
#include "crypto/primitives.h"

namespace coffer::cli {
namespace {

void AddCertificateTarget(CLI::App* cmd, ObjectArgs& a, bool with_version) {
  AddObjectTarget(cmd, a, "Certificate", "certificates", with_version);
}

std::pair<std::string, std::string> ResolveCertificate(const client::ApiClient& c, ObjectArgs& a) {
  auto target = ResolveObject(c, a, "certificates");
  RequireName(a);
  return target;
}

// The policy `az keyvault certificate get-default-policy` prints, in az's
// (the Python SDK's) shape.
Json DefaultPolicy() {
  return ParseJson(R"({
    "issuerParameters": {"certificateTransparency": null, "certificateType": null, "name": "Self"},
    "keyProperties": {"curve": null, "exportable": true, "keySize": 2048, "keyType": "RSA",
                      "reuseKey": true},
    "lifetimeActions": [{"action": {"actionType": "AutoRenew"},
                         "trigger": {"daysBeforeExpiry": 90}}],
    "secretProperties": {"contentType": "application/x-pkcs12"},
    "x509CertificateProperties": {"keyUsage": ["cRLSign", "dataEncipherment",
        "digitalSignature", "keyEncipherment", "keyAgreement", "keyCertSign"],
        "subject": "CN=CLIGetDefaultPolicy", "validityInMonths": 12}})")
      .value();
}

// Copies the members of `from` named in `names` ({az's name, Key Vault's})
// that are present and not null into `to`.
void Rename(const Json& from, Json& to,
            std::initializer_list<std::pair<const char*, const char*>> names) {
  for (const auto& [az, kv] : names) {
    if (auto it = from.find(az); it != from.end() && !it->is_null()) {
      to[kv] = *it;
    }
  }
}

// WirePolicy takes a policy as az's users write it (get-default-policy's
// shape) or in Key Vault's wire shape (snake_case, sent as it is), and
// returns the wire shape.
Json WirePolicy(const Json& policy) {
  if (policy.contains("key_props") || policy.contains("x509_props") ||
      policy.contains("secret_props") || policy.contains("issuer")) {
    return policy;
  }
  Json out = Json::object();
  auto part = [&](const char* name) -> const Json& {
    static const Json empty = Json::object();
    auto it = policy.find(name);
    return it != policy.end() && it->is_object() ? *it : empty;
  };
  Json key = Json::object();
  Rename(part("keyProperties"), key,
         {{"keyType", "kty"},
          {"keySize", "key_size"},
          {"curve", "crv"},
          {"exportable", "exportable"},
          {"reuseKey", "reuse_key"}});
  out["key_props"] = std::move(key);
  Json secret = Json::object();
  Rename(part("secretProperties"), secret, {{"contentType", "contentType"}});
  out["secret_props"] = std::move(secret);
  const Json& x509 = part("x509CertificateProperties");
  Json x = Json::object();
  Rename(x509, x,
         {{"subject", "subject"},
          {"ekus", "ekus"},
          {"keyUsage", "key_usage"},
          {"validityInMonths", "validity_months"}});
  if (auto sans = x509.find("subjectAlternativeNames"); sans != x509.end() && sans->is_object()) {
    Json s = Json::object();
    Rename(*sans, s, {{"dnsNames", "dns_names"}, {"emails", "emails"}, {"upns", "upns"}});
    x["sans"] = std::move(s);
  }
  out["x509_props"] = std::move(x);
  Json issuer = Json::object();
  Rename(part("issuerParameters"), issuer,
         {{"name", "name"},
          {"certificateType", "cty"},
          {"certificateTransparency", "cert_transparency"}});
  out["issuer"] = std::move(issuer);
  if (auto actions = policy.find("lifetimeActions");
      actions != policy.end() && actions->is_array()) {
    Json list = Json::array();
    for (const auto& a : *actions) {
      Json action = Json::object();
      Json trigger = Json::object();
      if (a.is_object()) {
        if (auto it = a.find("action"); it != a.end() && it->is_object()) {
          Rename(*it, action, {{"actionType", "action_type"}});
        }
        if (auto it = a.find("trigger"); it != a.end() && it->is_object()) {
          Rename(*it, trigger,
                 {{"daysBeforeExpiry", "days_before_expiry"},
                  {"lifetimePercentage", "lifetime_percentage"}});
        }
      }
      list.push_back({{"action", action}, {"trigger", trigger}});
    }
    out["lifetime_actions"] = std::move(list);
  }
  return out;
}

// The body's attributes and tags from --disabled / --enabled and --tags.
struct Settings {
  std::vector<std::string> tags;
  std::string enabled;
  std::string disabled;
};

Json SettingsBody(const Settings& s) {
  Json body = Json::object();
  Json attrs = Json::object();
  if (!s.enabled.empty()) {
    attrs["enabled"] = ParseBool(s.enabled, "--enabled");
  }
  if (!s.disabled.empty() && ParseBool(s.disabled, "--disabled")) {
    attrs["enabled"] = false;
  }
  body["attributes"] = std::move(attrs);
  if (!s.tags.empty()) {
    body["tags"] = ParseTags(s.tags);
  }
  return body;
}

void AddCreateAndImport(CLI::App* cert) {
  {
    auto* cmd = cert->add_subcommand("create", "Create a certificate, or a new version of it");
    auto a = std::make_shared<ObjectArgs>();
    auto s = std::make_shared<Settings>();
    auto policy = std::make_shared<std::string>();
    AddCertificateTarget(cmd, *a, false);
    cmd->add_option("--policy,-p", *policy,
                    "The policy as JSON, or a file holding it (a leading @ is allowed); "
                    "get-default-policy prints one")
        ->required();
    cmd->add_option("--tags", s->tags, "Space-separated key=value tags");
    cmd->add_option("--disabled", s->disabled, "true to create it disabled");
    cmd->callback([=] {
      Json body = SettingsBody(*s);
      body["policy"] = WirePolicy(ReadJsonArg(*policy, "--policy"));
      auto c = MakeClient();
      auto [base, resource] = ResolveCertificate(c, *a);
      Json op = Expect(c.Call("POST", KvUrl(base, "/certificates/" + a->name + "/create"), resource,
                              ToJson(body)),
                       {202});
      // As az: wait for the operation to finish, then show it; an operation
      // that waits for a merge (the Unknown issuer) is shown at once.
      auto waits_for_merge = [](const Json& o) {
        auto issuer = o.find("issuer");
        return issuer != o.end() && issuer->is_object() &&
               EqualsIgnoreCase(issuer->value("name", ""), "Unknown");
      };
      for (int i = 0; i < 600 && op.is_object() && op.value("status", "") == "inProgress" &&
                      !waits_for_merge(op);
           ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(i < 10 ? 50 : 500));
        op = Expect(c.Call("GET", KvUrl(base, "/certificates/" + a->name + "/pending"), resource),
                    {200});
      }
      Print(op);
    });
  }
  {
    auto* cmd = cert->add_subcommand("import", "Import a certificate with its private key");
    auto a = std::make_shared<ObjectArgs>();
    auto s = std::make_shared<Settings>();
    auto file = std::make_shared<std::string>();
    auto password = std::make_shared<std::string>();
    auto policy = std::make_shared<std::string>();
    AddCertificateTarget(cmd, *a, false);
    cmd->add_option("--file,-f", *file, "PFX or PEM file with the private key and certificates")
        ->required();
    cmd->add_option("--password", *password, "The PFX's password");
    cmd->add_option("--policy,-p", *policy, "A policy (JSON or a file), for the content type");
    cmd->add_option("--tags", s->tags, "Space-separated key=value tags");
    cmd->add_option("--disabled", s->disabled, "true to import it disabled");
    cmd->callback([=] {
      RequireName(*a);
      Json body = SettingsBody(*s);
      if (!policy->empty()) {
        body["policy"] = WirePolicy(ReadJsonArg(*policy, "--policy"));
      }
      // SECURITY: the file holds a private key. It is sent once and its
      // bytes, the password and the request are wiped afterwards.
      std::string bytes = ReadFileOrUsage(*file);
      body["value"] = bytes.rfind("-----BEGIN", 0) == 0 ? bytes : Base64Encode(bytes);
      crypto::SecureWipe(bytes);
      if (!password->empty()) {
        body["pwd"] = *password;
        crypto::SecureWipe(*password);
      }
      std::string request = ToJson(body);
      body = Json();
      auto c = MakeClient();
      auto [base, resource] = ResolveCertificate(c, *a);
      auto response =
          c.Call("POST", KvUrl(base, "/certificates/" + a->name + "/import"), resource, request);
      crypto::SecureWipe(request);
      Print(Expect(response, {200}));
    });
  }
  {
    auto* cmd = cert->add_subcommand("get-default-policy", "Print a default certificate policy");
    cmd->callback([] { Print(DefaultPolicy()); });
  }
}

void AddReads(CLI::App* cert) {
  {
    auto* cmd = cert->add_subcommand("show", "Show a certificate with its policy");
    auto a = std::make_shared<ObjectArgs>();
    AddCertificateTarget(cmd, *a, true);
    cmd->callback([=] {
      auto c = MakeClient();
      auto [base, resource] = ResolveCertificate(c, *a);
      Print(Expect(
          c.Call("GET", KvUrl(base, "/certificates/" + a->name + "/" + a->version), resource),
          {200}));
    });
  }
  {
    auto* cmd = cert->add_subcommand("download", "Write a certificate (without its key) to a file");
    auto a = std::make_shared<ObjectArgs>();
    auto file = std::make_shared<std::string>();
    auto encoding = std::make_shared<std::string>("PEM");
    AddCertificateTarget(cmd, *a, true);
    cmd->add_option("--file,-f", *file, "Output file (must not exist)")->required();
    cmd->add_option("--encoding,-e", *encoding, "PEM or DER")
        ->check(CLI::IsMember({"PEM", "DER"}))
        ->capture_default_str();
    cmd->callback([=] {
      RefuseExisting(*file);
      auto c = MakeClient();
      auto [base, resource] = ResolveCertificate(c, *a);
      Json out = Expect(
          c.Call("GET", KvUrl(base, "/certificates/" + a->name + "/" + a->version), resource),
          {200});
      auto der = Base64Decode(out.is_object() ? out.value("cer", "") : "");
      if (out.is_object() && out.contains("pending") && !out.contains("cer")) {
        Fail(FailedPreconditionError("Certificate " + a->name +
                                         " has no signed version yet: its operation is in "
                                         "progress (see `pending show` and `pending merge`).",
                                     "PendingCertificate"));
      }
      if (!der || der->empty()) {
        Fail(InternalError("the server returned no certificate"));
      }
      if (*encoding == "DER") {
        WriteFileOrUsage(*file, *der);
        return;
      }
      auto pem = crypto::CertificatePem(*der);
      if (!pem.ok()) {
        Fail(pem.status());
      }
      WriteFileOrUsage(*file, *pem);
    });
  }
}

void AddChanges(CLI::App* cert) {
  {
    auto* cmd = cert->add_subcommand(
        "set-attributes", "Update a certificate version's attributes and tags, or its policy");
    auto a = std::make_shared<ObjectArgs>();
    auto s = std::make_shared<Settings>();
    auto policy = std::make_shared<std::string>();
    AddCertificateTarget(cmd, *a, true);
    cmd->add_option("--enabled", s->enabled, "true or false");
    cmd->add_option("--tags", s->tags, "Space-separated key=value tags (replaces all)");
    cmd->add_option("--policy,-p", *policy, "A policy (JSON or a file) to merge into the current");
    cmd->callback([=] {
      auto c = MakeClient();
      auto [base, resource] = ResolveCertificate(c, *a);
      if (!policy->empty()) {
        Expect(c.Call("PATCH", KvUrl(base, "/certificates/" + a->name + "/policy"), resource,
                      ToJson(WirePolicy(ReadJsonArg(*policy, "--policy")))),
               {200});
      }
      Print(Expect(c.Call("PATCH", KvUrl(base, "/certificates/" + a->name + "/" + a->version),
                          resource, ToJson(SettingsBody(*s))),
                   {200}));
    });
  }
  AddObjectCommands(
      cert, "Certificate", "certificates",
      {{"list", "List certificates", "/certificates"},
       {"list-versions", "List the versions of a certificate", "/certificates/{name}/versions"},
       {"list-deleted", "List deleted certificates", "/deletedcertificates"}},
      {{"delete", "Delete a certificate with its key and secret (soft delete)", "DELETE",
        "/certificates/", "", 200},
       {"show-deleted", "Show a deleted certificate", "GET", "/deletedcertificates/", "", 200},
       {"recover", "Recover a deleted certificate", "POST", "/deletedcertificates/", "/recover",
        200},
       {"purge", "Permanently delete a deleted certificate", "DELETE", "/deletedcertificates/", "",
        204}});
  auto* pending = cert->add_subcommand(
      "pending", "Show, merge or delete a certificate's operation in progress");
  pending->require_subcommand(1);
  AddObjectCommands(
      pending, "Certificate", "certificates", {},
      {{"show", "Show the creation operation", "GET", "/certificates/", "/pending", 200},
       {"delete", "Delete the operation in progress (no version is made)", "DELETE",
        "/certificates/", "/pending", 200}});
  {
    auto* cmd = pending->add_subcommand(
        "merge", "Complete an operation in progress with the certificate a CA signed");
    auto a = std::make_shared<ObjectArgs>();
    auto s = std::make_shared<Settings>();
    auto file = std::make_shared<std::string>();
    AddCertificateTarget(cmd, *a, false);
    cmd->add_option("--file,-f", *file,
                    "The signed certificate and its chain: PEM (any number) or one DER")
        ->required();
    cmd->add_option("--disabled", s->disabled, "Make the version disabled (true or false)");
    cmd->add_option("--tags", s->tags, "Space-separated key=value tags");
    cmd->callback([=] {
      std::string bytes = ReadFileOrUsage(*file);
      Json x5c = Json::array();
      if (bytes.find("-----BEGIN CERTIFICATE-----") != std::string::npos) {
        auto chain = crypto::ReadPemCertificates(bytes);
        if (!chain.ok()) {
          Usage("--file: " + std::string(chain.status().message()));
        }
        for (const auto& der : *chain) {
          x5c.push_back(Base64Encode(der));
        }
      } else {
        x5c.push_back(Base64Encode(bytes));
      }
      Json body = SettingsBody(*s);
      body["x5c"] = std::move(x5c);
      auto c = MakeClient();
      auto [base, resource] = ResolveCertificate(c, *a);
      Print(Expect(c.Call("POST", KvUrl(base, "/certificates/" + a->name + "/pending/merge"),
                          resource, ToJson(body)),
                   {201}));
    });
  }
}

// The vault a contact or issuer command acts on: --vault-name.
struct VaultArg {
  std::string vault;
};

std::pair<std::string, std::string> ResolveVault(const client::ApiClient& c, VaultArg& v) {
  ObjectArgs a;
  a.vault = v.vault;
  return ResolveObject(c, a, "certificates");
}

void AddContactCommands(CLI::App* cert) {
  auto* contact = cert->add_subcommand("contact", "Manage a vault's certificate contacts");
  contact->require_subcommand(1);
  {
    auto* cmd = contact->add_subcommand("list", "List the contacts");
    auto v = std::make_shared<VaultArg>();
    cmd->add_option("--vault-name", v->vault, "Name of the Key Vault")->required();
    cmd->callback([=] {
      auto c = MakeClient();
      auto [base, resource] = ResolveVault(c, *v);
      Print(Expect(c.Call("GET", KvUrl(base, "/certificates/contacts"), resource), {200}));
    });
  }
  {
    auto* cmd = contact->add_subcommand("add", "Add a contact");
    auto v = std::make_shared<VaultArg>();
    auto who = std::make_shared<std::array<std::string, 3>>();
    cmd->add_option("--vault-name", v->vault, "Name of the Key Vault")->required();
    cmd->add_option("--email", (*who)[0], "The contact's email address")->required();
    cmd->add_option("--name", (*who)[1], "The contact's name");
    cmd->add_option("--phone", (*who)[2], "The contact's phone number");
    cmd->callback([=] {
      auto c = MakeClient();
      auto [base, resource] = ResolveVault(c, *v);
      // As az: read the list, add to it, write it back.
      auto current = c.Call("GET", KvUrl(base, "/certificates/contacts"), resource);
      Json contacts = Json::array();
      if (current.ok() && current->status == 200) {
        auto json = ParseJson(current->body, 4);
        if (json && json->contains("contacts") && (*json)["contacts"].is_array()) {
          contacts = (*json)["contacts"];
        }
      } else if (!current.ok() || current->status != 404) {
        Expect(current, {200});
      }
      Json one = {{"email", (*who)[0]}};
      if (!(*who)[1].empty())
        one["name"] = (*who)[1];
      if (!(*who)[2].empty())
        one["phone"] = (*who)[2];
      contacts.push_back(std::move(one));
      Print(Expect(c.Call("PUT", KvUrl(base, "/certificates/contacts"), resource,
                          ToJson(Json{{"contacts", contacts}})),
                   {200}));
    });
  }
  {
    auto* cmd = contact->add_subcommand("delete", "Remove the contact with an email address");
    auto v = std::make_shared<VaultArg>();
    auto email = std::make_shared<std::string>();
    cmd->add_option("--vault-name", v->vault, "Name of the Key Vault")->required();
    cmd->add_option("--email", *email, "The contact's email address")->required();
    cmd->callback([=] {
      auto c = MakeClient();
      auto [base, resource] = ResolveVault(c, *v);
      Json current = Expect(c.Call("GET", KvUrl(base, "/certificates/contacts"), resource), {200});
      Json keep = Json::array();
      bool found = false;
      for (const auto& one : current.value("contacts", Json::array())) {
        if (one.value("email", std::string()) == *email) {
          found = true;
        } else {
          keep.push_back(one);
        }
      }
      if (!found) {
        Fail(NotFoundError("No contact has the email " + *email, "ContactNotFound"));
      }
      if (keep.empty()) {
        Print(Expect(c.Call("DELETE", KvUrl(base, "/certificates/contacts"), resource), {200}));
        return;
      }
      Print(Expect(c.Call("PUT", KvUrl(base, "/certificates/contacts"), resource,
                          ToJson(Json{{"contacts", keep}})),
                   {200}));
    });
  }
}

// What `issuer create|update` set.
struct IssuerArgs {
  std::string vault;
  std::string name;
  std::string provider;
  std::string account_id;
  std::string password;
  std::string organization_id;
  std::string disabled;
  std::vector<std::string> allowed_dns_suffixes;
  int max_validity_months = -1;
};

Json IssuerBody(const IssuerArgs& i) {
  Json body = Json::object();
  if (!i.provider.empty())
    body["provider"] = i.provider;
  if (!i.account_id.empty() || !i.password.empty()) {
    Json cred = Json::object();
    if (!i.account_id.empty())
      cred["account_id"] = i.account_id;
    if (!i.password.empty())
      cred["pwd"] = i.password;
    body["credentials"] = std::move(cred);
  }
  if (!i.organization_id.empty())
    body["org_details"] = {{"id", i.organization_id}};
  if (!i.disabled.empty()) {
    body["attributes"] = {{"enabled", !ParseBool(i.disabled, "--disabled")}};
  }
  if (!i.allowed_dns_suffixes.empty() || i.max_validity_months >= 0) {
    Json rules = Json::object();
    if (!i.allowed_dns_suffixes.empty())
      rules["allowed_dns_suffixes"] = i.allowed_dns_suffixes;
    if (i.max_validity_months >= 0)
      rules["max_validity_months"] = i.max_validity_months;
    body["coffer"] = std::move(rules);
  }
  return body;
}

void AddIssuerCommands(CLI::App* cert) {
  auto* issuer = cert->add_subcommand("issuer", "Manage a vault's certificate issuers");
  issuer->require_subcommand(1);
  for (bool create : {true, false}) {
    auto* cmd = issuer->add_subcommand(
        create ? "create" : "update",
        create ? "Create (or replace) an issuer; provider Coffer signs with the installation's CA"
               : "Update an issuer");
    auto i = std::make_shared<IssuerArgs>();
    cmd->add_option("--vault-name", i->vault, "Name of the Key Vault")->required();
    cmd->add_option("--issuer-name", i->name, "Name of the issuer")->required();
    auto* provider = cmd->add_option("--provider-name", i->provider,
                                     "The provider: Coffer, or a CA Key Vault knows");
    if (create) {
      provider->required();
    }
    cmd->add_option("--account-id", i->account_id, "The account id at the provider");
    cmd->add_option("--password", i->password, "The account's password (stored sealed)");
    cmd->add_option("--organization-id", i->organization_id, "The organization's id");
    cmd->add_option("--disabled", i->disabled, "Disable the issuer (true or false)");
    cmd->add_option("--allowed-dns-suffixes", i->allowed_dns_suffixes,
                    "Coffer provider: DNS suffixes it may sign names under (space-separated)");
    cmd->add_option("--max-validity-months", i->max_validity_months,
                    "Coffer provider: the longest validity it signs, in months (0: any)");
    cmd->callback([=] {
      auto c = MakeClient();
      VaultArg v{i->vault};
      auto [base, resource] = ResolveVault(c, v);
      Print(Expect(c.Call(create ? "PUT" : "PATCH", KvUrl(base, "/certificates/issuers/" + i->name),
                          resource, ToJson(IssuerBody(*i))),
                   {200}));
    });
  }
  for (const auto& [verb, help, method] : {std::tuple{"show", "Show an issuer", "GET"},
                                           std::tuple{"delete", "Delete an issuer", "DELETE"}}) {
    auto* cmd = issuer->add_subcommand(verb, help);
    auto i = std::make_shared<IssuerArgs>();
    cmd->add_option("--vault-name", i->vault, "Name of the Key Vault")->required();
    cmd->add_option("--issuer-name", i->name, "Name of the issuer")->required();
    std::string m = method;
    cmd->callback([=] {
      auto c = MakeClient();
      VaultArg v{i->vault};
      auto [base, resource] = ResolveVault(c, v);
      Print(Expect(c.Call(m, KvUrl(base, "/certificates/issuers/" + i->name), resource), {200}));
    });
  }
  {
    auto* cmd = issuer->add_subcommand("list", "List the issuers");
    auto v = std::make_shared<VaultArg>();
    cmd->add_option("--vault-name", v->vault, "Name of the Key Vault")->required();
    cmd->callback([=] {
      auto c = MakeClient();
      auto [base, resource] = ResolveVault(c, *v);
      Print(ListAll(c, KvUrl(base, "/certificates/issuers"), resource));
    });
  }
}

}  // namespace

void AddCertificateCommands(CLI::App& kv) {
  auto* cert =
      kv.add_subcommand("certificate", "Manage certificates (as `az keyvault certificate`)");
  cert->require_subcommand(1);
  AddCreateAndImport(cert);
  AddReads(cert);
  AddChanges(cert);
  AddBackupCommands(cert, "Certificate", "certificates");
  AddContactCommands(cert);
  AddIssuerCommands(cert);
}

}  // namespace coffer::cli
