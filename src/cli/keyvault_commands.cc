// `coffer keyvault ...`: the management and secrets commands, named and
// flagged as `az keyvault ...` (the keys commands are in key_commands.cc).

#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/seed_apply.h"
#include "cli/vault_objects.h"
#include "client/api_client.h"
#include "common/encoding.h"
#include "common/files.h"
#include "common/json.h"
#include "common/strings.h"
#include "common/time_format.h"
#include "http/url.h"

namespace coffer::cli {
namespace {

constexpr char kArmApiVersion[] = "2023-07-01";

struct VaultTarget {
  std::string name;
  std::string resource_group;
};

std::string ArmUrl(const client::ApiClient& c, const std::string& path) {
  return c.config().authority + "/subscriptions/" + c.config().subscription_id + path +
         (path.find('?') == std::string::npos ? "?" : "&") + "api-version=" + kArmApiVersion;
}

std::string VaultArmPath(const std::string& rg, const std::string& name) {
  return "/resourceGroups/" + rg + "/providers/Microsoft.KeyVault/vaults/" + name;
}

// FindResourceGroup looks a vault up by name when --resource-group is not
// given, as az does.
std::string FindResourceGroup(client::ApiClient& c, const std::string& name) {
  Json list =
      Expect(c.Call("GET", ArmUrl(c, "/providers/Microsoft.KeyVault/vaults"), c.config().authority),
             {200});
  for (const auto& v : list.value("value", Json::array())) {
    if (EqualsIgnoreCase(v.value("name", ""), name)) {
      std::string id = v.value("id", "");
      auto parts = Split(id, '/');
      if (parts.size() > 4) {
        return std::string(parts[4]);
      }
    }
  }
  Fail(Status(StatusCode::kNotFound, "The Vault '" + name + "' not found within subscription.",
              "ResourceNotFound"));
}

void AddVaultCommands(CLI::App& kv) {
  // create
  {
    auto* cmd = kv.add_subcommand("create", "Create a vault");
    auto name = std::make_shared<std::string>();
    auto rg = std::make_shared<std::string>();
    auto location = std::make_shared<std::string>("local");
    auto retention = std::make_shared<int>(90);
    auto purge = std::make_shared<bool>(false);
    auto rbac = std::make_shared<std::string>("true");
    auto no_self = std::make_shared<bool>(false);
    auto tags = std::make_shared<std::vector<std::string>>();
    cmd->add_option("--name,-n", *name, "Vault name")->required();
    cmd->add_option("--resource-group,-g", *rg, "Resource group")->required();
    cmd->add_option("--location,-l", *location, "Location")->capture_default_str();
    cmd->add_option("--retention-days", *retention, "Soft-delete retention, 7-90 days")
        ->capture_default_str();
    cmd->add_flag("--enable-purge-protection", *purge, "Enable purge protection (irreversible)");
    cmd->add_option("--enable-rbac-authorization", *rbac,
                    "true: Azure RBAC (the default); false: access policies")
        ->check(CLI::IsMember({"true", "false"}))
        ->capture_default_str();
    cmd->add_flag("--no-self-perms", *no_self,
                  "With access policies: do not grant the caller every permission");
    cmd->add_option("--tags", *tags, "Space-separated key=value tags");
    cmd->callback([=] {
      auto c = MakeArmClient();
      bool use_rbac = *rbac == "true";
      Json policies = Json::array();
      if (!use_rbac && !*no_self) {
        // As az: the creator gets every permission through an access policy.
        auto oid = c.SignedInObjectId(c.config().authority);
        if (!oid.ok()) {
          Fail(oid.status());
        }
        Json all = Json::array({"all"});
        policies.push_back(
            {{"tenantId", TenantOf(c)},
             {"objectId", *oid},
             {"permissions",
              {{"secrets", all}, {"keys", all}, {"certificates", all}, {"storage", all}}}});
      }
      Json props = {{"tenantId", TenantOf(c)},
                    {"sku", {{"family", "A"}, {"name", "standard"}}},
                    {"softDeleteRetentionInDays", *retention},
                    {"enableRbacAuthorization", use_rbac},
                    {"accessPolicies", policies}};
      if (*purge)
        props["enablePurgeProtection"] = true;
      Json body = {{"location", *location}, {"properties", props}, {"tags", ParseTags(*tags)}};
      Print(Expect(
          c.Call("PUT", ArmUrl(c, VaultArmPath(*rg, *name)), c.config().authority, ToJson(body)),
          {200, 201}));
    });
  }
  // show / delete
  for (const char* verb : {"show", "delete"}) {
    auto* cmd =
        kv.add_subcommand(verb, std::string(verb) == "show" ? "Show a vault" : "Delete a vault");
    auto name = std::make_shared<std::string>();
    auto rg = std::make_shared<std::string>();
    cmd->add_option("--name,-n", *name, "Vault name")->required();
    cmd->add_option("--resource-group,-g", *rg, "Resource group");
    std::string v = verb;
    cmd->callback([=] {
      auto c = MakeArmClient();
      std::string group = rg->empty() ? FindResourceGroup(c, *name) : *rg;
      if (v == "show") {
        Print(Expect(c.Call("GET", ArmUrl(c, VaultArmPath(group, *name)), c.config().authority),
                     {200}));
      } else {
        Expect(c.Call("DELETE", ArmUrl(c, VaultArmPath(group, *name)), c.config().authority),
               {200, 204});
      }
    });
  }
  // list
  {
    auto* cmd = kv.add_subcommand("list", "List vaults");
    auto rg = std::make_shared<std::string>();
    cmd->add_option("--resource-group,-g", *rg, "Resource group");
    cmd->callback([=] {
      auto c = MakeArmClient();
      std::string path = rg->empty()
                             ? "/providers/Microsoft.KeyVault/vaults"
                             : "/resourceGroups/" + *rg + "/providers/Microsoft.KeyVault/vaults";
      Json list = Expect(c.Call("GET", ArmUrl(c, path), c.config().authority), {200});
      Print(list.value("value", Json::array()));
    });
  }
  // list-deleted
  {
    auto* cmd = kv.add_subcommand("list-deleted", "List soft-deleted vaults");
    cmd->callback([] {
      auto c = MakeArmClient();
      Json list = Expect(c.Call("GET", ArmUrl(c, "/providers/Microsoft.KeyVault/deletedVaults"),
                                c.config().authority),
                         {200});
      Print(list.value("value", Json::array()));
    });
  }
  // recover / purge a deleted vault
  for (const char* verb : {"recover", "purge"}) {
    std::string v = verb;
    auto* cmd = kv.add_subcommand(verb, v == "recover" ? "Recover a soft-deleted vault"
                                                       : "Permanently delete a soft-deleted vault");
    auto name = std::make_shared<std::string>();
    cmd->add_option("--name,-n", *name, "Vault name")->required();
    cmd->callback([=] {
      auto c = MakeArmClient();
      Json list = Expect(c.Call("GET", ArmUrl(c, "/providers/Microsoft.KeyVault/deletedVaults"),
                                c.config().authority),
                         {200});
      Json found;
      for (const auto& d : list.value("value", Json::array())) {
        if (EqualsIgnoreCase(d.value("name", ""), *name)) {
          found = d;
        }
      }
      if (found.is_null()) {
        Fail(Status(StatusCode::kNotFound, "Deleted vault '" + *name + "' not found.",
                    "DeletedVaultNotFound"));
      }
      if (v == "purge") {
        Expect(
            c.Call(
                "POST",
                ArmUrl(c, found.value("id", "").substr(found.value("id", "").find("/providers/")) +
                              "/purge"),
                c.config().authority),
            {200, 202});
        return;
      }
      // The original resource id names the resource group to recover into.
      std::string vault_id = found["properties"].value("vaultId", "");
      auto parts = Split(vault_id, '/');
      if (parts.size() < 5)
        Fail(InternalError("malformed deleted vault id"));
      Json body = {{"location", found["properties"].value("location", "local")},
                   {"properties", {{"createMode", "recover"}}}};
      Print(Expect(c.Call("PUT", ArmUrl(c, VaultArmPath(std::string(parts[4]), *name)),
                          c.config().authority, ToJson(body)),
                   {200, 201}));
    });
  }
  // update
  {
    auto* cmd = kv.add_subcommand("update", "Update a vault's properties");
    auto name = std::make_shared<std::string>();
    auto rg = std::make_shared<std::string>();
    auto purge = std::make_shared<std::string>();
    auto rbac = std::make_shared<std::string>();
    auto tags = std::make_shared<std::vector<std::string>>();
    cmd->add_option("--name,-n", *name, "Vault name")->required();
    cmd->add_option("--resource-group,-g", *rg, "Resource group");
    cmd->add_option("--enable-purge-protection", *purge, "true (it cannot be turned off)");
    cmd->add_option("--enable-rbac-authorization", *rbac, "true or false");
    cmd->add_option("--tags", *tags, "Space-separated key=value tags (replaces all)");
    cmd->callback([=] {
      auto c = MakeArmClient();
      std::string group = rg->empty() ? FindResourceGroup(c, *name) : *rg;
      Json props = Json::object();
      auto flag = [](const std::string& v, const char* f) {
        if (v != "true" && v != "false")
          Usage(std::string(f) + " must be true or false");
        return v == "true";
      };
      if (!purge->empty())
        props["enablePurgeProtection"] = flag(*purge, "--enable-purge-protection");
      if (!rbac->empty())
        props["enableRbacAuthorization"] = flag(*rbac, "--enable-rbac-authorization");
      Json body = {{"properties", props}};
      if (!tags->empty())
        body["tags"] = ParseTags(*tags);
      Print(Expect(c.Call("PATCH", ArmUrl(c, VaultArmPath(group, *name)), c.config().authority,
                          ToJson(body)),
                   {200}));
    });
  }
}

// `coffer keyvault set-policy|delete-policy`, as az's: edit the vault's
// access policies (GET the vault, change its list, PATCH it back).
void AddPolicyCommands(CLI::App& kv) {
  for (const char* verb : {"set-policy", "delete-policy"}) {
    std::string v = verb;
    auto* cmd = kv.add_subcommand(
        verb, v == "set-policy" ? "Grant a principal permissions through an access policy"
                                : "Remove a principal's access policy");
    auto name = std::make_shared<std::string>();
    auto rg = std::make_shared<std::string>();
    auto object_id = std::make_shared<std::string>();
    auto perms = std::make_shared<std::map<std::string, std::vector<std::string>>>();
    cmd->add_option("--name,-n", *name, "Vault name")->required();
    cmd->add_option("--resource-group,-g", *rg, "Resource group");
    cmd->add_option("--object-id", *object_id, "Object (principal) id")->required();
    std::vector<std::pair<std::string, CLI::Option*>> lists;
    if (v == "set-policy") {
      for (const char* kind : {"secrets", "keys", "certificates"}) {
        std::string flag = std::string("--") +
                           (std::string(kind) == "secrets" ? "secret"
                            : std::string(kind) == "keys"  ? "key"
                                                           : "certificate") +
                           "-permissions";
        lists.emplace_back(kind, cmd->add_option(flag, (*perms)[kind],
                                                 "Space-separated permissions, e.g. get list"));
      }
    }
    auto application_id = std::make_shared<std::string>();
    cmd->add_option("--application-id", *application_id,
                    "Application id, for a compound identity entry");
    cmd->callback([=] {
      auto c = MakeArmClient();
      std::string group = rg->empty() ? FindResourceGroup(c, *name) : *rg;
      // set-policy replaces the lists it is given in the principal's entry
      // and keeps the others; delete-policy removes the entry.
      Json entry = {
          {"tenantId", TenantOf(c)}, {"objectId", *object_id}, {"permissions", Json::object()}};
      if (!application_id->empty()) {
        entry["applicationId"] = *application_id;
      }
      for (const auto& [kind, opt] : lists) {
        if (opt->count() > 0) {
          entry["permissions"][kind] = perms->at(kind);
        }
      }
      Json body = {{"properties", {{"accessPolicies", Json::array({entry})}}}};
      std::string op = v == "set-policy" ? "/accessPolicies/replace" : "/accessPolicies/remove";
      Print(Expect(c.Call("PUT", ArmUrl(c, VaultArmPath(group, *name) + op), c.config().authority,
                          ToJson(body)),
                   {200, 201}));
    });
  }
}

// Secret commands share --vault-name/--name/--version/--id handling
// (vault_objects.h).
using SecretArgs = ObjectArgs;

void AddSecretTarget(CLI::App* cmd, SecretArgs& a, bool with_version) {
  AddObjectTarget(cmd, a, "Secret", "secrets", with_version);
}

std::pair<std::string, std::string> Resolve(const client::ApiClient& c, SecretArgs& a) {
  return ResolveObject(c, a, "secrets");
}

void AddSecretCommands(CLI::App& kv) {
  auto* secret = kv.add_subcommand("secret", "Manage secrets");
  secret->require_subcommand(1);

  {
    auto* cmd = secret->add_subcommand("set", "Create a secret or a new version of it");
    auto a = std::make_shared<SecretArgs>();
    auto value = std::make_shared<std::string>();
    auto file = std::make_shared<std::string>();
    auto content_type = std::make_shared<std::string>();
    auto tags = std::make_shared<std::vector<std::string>>();
    auto disabled = std::make_shared<std::string>();
    auto expires = std::make_shared<std::string>();
    auto not_before = std::make_shared<std::string>();
    AddSecretTarget(cmd, *a, false);
    cmd->add_option("--value", *value, "Secret value");
    cmd->add_option("--file,-f", *file, "Read the value from a file");
    cmd->add_option("--content-type", *content_type, "Content type");
    cmd->add_option("--tags", *tags, "Space-separated key=value tags");
    cmd->add_option("--disabled", *disabled, "true to create it disabled");
    cmd->add_option("--expires", *expires, "Expiry (ISO 8601 UTC)");
    cmd->add_option("--not-before", *not_before, "Not valid before (ISO 8601 UTC)");
    cmd->callback([=] {
      RequireName(*a);
      if (value->empty() == file->empty())
        Usage("give exactly one of --value and --file");
      std::string v = *value;
      if (!file->empty()) {
        std::ifstream in(*file, std::ios::binary);
        if (!in)
          Usage("cannot read " + *file);
        std::ostringstream s;
        s << in.rdbuf();
        v = s.str();
      }
      // Key Vault stores secret values as strings; refuse bytes that are not
      // UTF-8 rather than store something other than what was given.
      if (!IsValidUtf8(v)) {
        Usage("the secret value is not UTF-8 text; encode binary content first (e.g. base64)");
      }
      auto c = MakeClient();
      auto [base, resource] = Resolve(c, *a);
      Json attrs = Json::object();
      if (*disabled == "true")
        attrs["enabled"] = false;
      if (!expires->empty())
        attrs["exp"] = ParseTime(*expires, "--expires");
      if (!not_before->empty())
        attrs["nbf"] = ParseTime(*not_before, "--not-before");
      Json body = {{"value", v}, {"attributes", attrs}};
      if (!content_type->empty())
        body["contentType"] = *content_type;
      if (!tags->empty())
        body["tags"] = ParseTags(*tags);
      Print(
          Expect(c.Call("PUT", KvUrl(base, "/secrets/" + a->name), resource, ToJson(body)), {200}));
    });
  }
  {
    auto* cmd = secret->add_subcommand("show", "Show a secret and its value");
    auto a = std::make_shared<SecretArgs>();
    AddSecretTarget(cmd, *a, true);
    cmd->callback([=] {
      auto c = MakeClient();
      auto [base, resource] = Resolve(c, *a);
      RequireName(*a);
      Print(Expect(c.Call("GET", KvUrl(base, "/secrets/" + a->name + "/" + a->version), resource),
                   {200}));
    });
  }
  {
    auto* cmd = secret->add_subcommand("set-attributes", "Update a secret's attributes");
    auto a = std::make_shared<SecretArgs>();
    auto enabled = std::make_shared<std::string>();
    auto content_type = std::make_shared<std::string>();
    auto tags = std::make_shared<std::vector<std::string>>();
    auto expires = std::make_shared<std::string>();
    auto not_before = std::make_shared<std::string>();
    AddSecretTarget(cmd, *a, true);
    cmd->add_option("--enabled", *enabled, "true or false");
    cmd->add_option("--content-type", *content_type, "Content type");
    cmd->add_option("--tags", *tags, "Space-separated key=value tags (replaces all)");
    cmd->add_option("--expires", *expires, "Expiry (ISO 8601 UTC)");
    cmd->add_option("--not-before", *not_before, "Not valid before (ISO 8601 UTC)");
    cmd->callback([=] {
      auto c = MakeClient();
      auto [base, resource] = Resolve(c, *a);
      RequireName(*a);
      Json attrs = Json::object();
      if (!enabled->empty()) {
        if (*enabled != "true" && *enabled != "false")
          Usage("--enabled must be true or false");
        attrs["enabled"] = *enabled == "true";
      }
      if (!expires->empty())
        attrs["exp"] = ParseTime(*expires, "--expires");
      if (!not_before->empty())
        attrs["nbf"] = ParseTime(*not_before, "--not-before");
      Json body = {{"attributes", attrs}};
      if (!content_type->empty())
        body["contentType"] = *content_type;
      if (!tags->empty())
        body["tags"] = ParseTags(*tags);
      Print(Expect(c.Call("PATCH", KvUrl(base, "/secrets/" + a->name + "/" + a->version), resource,
                          ToJson(body)),
                   {200}));
    });
  }
  {
    auto* cmd = secret->add_subcommand("list", "List secrets (no values)");
    auto a = std::make_shared<SecretArgs>();
    auto max = std::make_shared<int>(0);
    AddSecretTarget(cmd, *a, false);
    cmd->add_option("--maxresults", *max, "Page size, 1-25");
    cmd->callback([=] {
      auto c = MakeClient();
      auto [base, resource] = Resolve(c, *a);
      std::string q = *max > 0 ? "&maxresults=" + std::to_string(*max) : "";
      Print(ListAll(c, KvUrl(base, "/secrets", q), resource));
    });
  }
  {
    // Not in az: the watch stream (docs/events.md), one JSON line per event.
    auto* cmd = secret->add_subcommand(
        "watch", "Print change events as they happen, one JSON line each (resumable by id)");
    auto a = std::make_shared<SecretArgs>();
    auto names = std::make_shared<std::vector<std::string>>();
    auto from = std::make_shared<std::string>();
    auto count = std::make_shared<int>(0);
    auto seconds = std::make_shared<int>(0);
    AddSecretTarget(cmd, *a, false);
    cmd->add_option("--names", *names, "Only these secrets");
    cmd->add_option("--from", *from, "Resume after this event id");
    cmd->add_option("--count", *count, "Stop after this many events (0: never)");
    cmd->add_option("--timeout", *seconds, "Stop after this many seconds (0: never)");
    cmd->callback([=] {
      auto c = MakeClient();
      auto [base, resource] = Resolve(c, *a);
      std::vector<std::string> wanted = *names;
      if (!a->name.empty()) {
        wanted.push_back(a->name);
      }
      std::string query;
      for (const auto& n : wanted) {
        query += (query.empty() ? "" : ",") + PercentEncode(n);
      }
      std::string url = base + "/coffer/watch?api-version=" + kKvApiVersion +
                        (query.empty() ? "" : "&names=" + query) +
                        (from->empty() ? "" : "&from=" + PercentEncode(*from));
      std::atomic<bool> cancel{false};
      std::thread timer;
      if (*seconds > 0) {
        timer = std::thread([&cancel, s = *seconds] {
          for (int i = 0; i < s * 10 && !cancel.load(); ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
          }
          cancel = true;
        });
      }
      std::string buffer;
      std::string id;
      std::string event;
      int seen = 0;
      auto r = c.Stream(
          url, resource, {},
          [&](std::string_view piece) {
            buffer.append(piece);
            size_t end;
            while ((end = buffer.find('\n')) != std::string::npos) {
              std::string line = buffer.substr(0, end);
              buffer.erase(0, end + 1);
              if (StartsWith(line, "id: ")) {
                id = line.substr(4);
              } else if (StartsWith(line, "event: ")) {
                event = line.substr(7);
              } else if (StartsWith(line, "data: ") && event != "coffer.ready") {
                auto data = ParseJson(line.substr(6));
                Json out = {{"id", id}, {"event", data ? *data : Json(line.substr(6))}};
                std::printf("%s\n", ToJson(out).c_str());
                std::fflush(stdout);
                // The stream's own events (coffer.resync, coffer.closed)
                // are shown but are no change.
                if (*count > 0 && !StartsWith(event, "coffer.") && ++seen >= *count) {
                  return false;
                }
              }
            }
            return true;
          },
          &cancel);
      cancel = true;
      if (timer.joinable()) {
        timer.join();
      }
      Expect(r, {200});
    });
  }
  {
    auto* cmd = secret->add_subcommand("list-versions", "List the versions of a secret");
    auto a = std::make_shared<SecretArgs>();
    auto max = std::make_shared<int>(0);
    AddSecretTarget(cmd, *a, false);
    cmd->add_option("--maxresults", *max, "Page size, 1-25");
    cmd->callback([=] {
      auto c = MakeClient();
      auto [base, resource] = Resolve(c, *a);
      RequireName(*a);
      std::string q = *max > 0 ? "&maxresults=" + std::to_string(*max) : "";
      Print(ListAll(c, KvUrl(base, "/secrets/" + a->name + "/versions", q), resource));
    });
  }
  {
    auto* cmd = secret->add_subcommand("list-deleted", "List deleted secrets");
    auto a = std::make_shared<SecretArgs>();
    AddSecretTarget(cmd, *a, false);
    cmd->callback([=] {
      auto c = MakeClient();
      auto [base, resource] = Resolve(c, *a);
      Print(ListAll(c, KvUrl(base, "/deletedsecrets"), resource));
    });
  }
  struct Simple {
    const char* verb;
    const char* help;
    const char* method;
    const char* path_prefix;
    const char* path_suffix;
    int ok;
  };
  for (const Simple& s :
       {Simple{"delete", "Delete a secret (soft delete)", "DELETE", "/secrets/", "", 200},
        Simple{"show-deleted", "Show a deleted secret", "GET", "/deletedsecrets/", "", 200},
        Simple{"recover", "Recover a deleted secret", "POST", "/deletedsecrets/", "/recover", 200},
        Simple{"purge", "Permanently delete a deleted secret", "DELETE", "/deletedsecrets/", "",
               204}}) {
    auto* cmd = secret->add_subcommand(s.verb, s.help);
    auto a = std::make_shared<SecretArgs>();
    AddSecretTarget(cmd, *a, false);
    cmd->callback([=] {
      auto c = MakeClient();
      auto [base, resource] = Resolve(c, *a);
      RequireName(*a);
      Json out = Expect(
          c.Call(s.method, KvUrl(base, s.path_prefix + a->name + s.path_suffix), resource), {s.ok});
      if (!out.is_null())
        Print(out);
    });
  }
  {
    auto* cmd = secret->add_subcommand("backup", "Back up a secret to a file");
    auto a = std::make_shared<SecretArgs>();
    auto file = std::make_shared<std::string>();
    AddSecretTarget(cmd, *a, false);
    cmd->add_option("--file,-f", *file, "Output file")->required();
    cmd->callback([=] {
      auto c = MakeClient();
      auto [base, resource] = Resolve(c, *a);
      RequireName(*a);
      Json out =
          Expect(c.Call("POST", KvUrl(base, "/secrets/" + a->name + "/backup"), resource), {200});
      auto blob = Base64UrlDecode(out.value("value", ""));
      if (!blob)
        Fail(InternalError("the server returned a malformed backup"));
      std::ofstream f(*file, std::ios::binary | std::ios::trunc);
      f << *blob;
      if (!f)
        Usage("cannot write " + *file);
    });
  }
  {
    auto* cmd = secret->add_subcommand("restore", "Restore a secret from a backup file");
    auto a = std::make_shared<SecretArgs>();
    auto file = std::make_shared<std::string>();
    AddSecretTarget(cmd, *a, false);
    cmd->add_option("--file,-f", *file, "Backup file")->required();
    cmd->callback([=] {
      std::ifstream in(*file, std::ios::binary);
      if (!in)
        Usage("cannot read " + *file);
      std::ostringstream s;
      s << in.rdbuf();
      auto c = MakeClient();
      auto [base, resource] = Resolve(c, *a);
      Json body = {{"value", Base64UrlEncode(s.str())}};
      Print(Expect(c.Call("POST", KvUrl(base, "/secrets/restore"), resource, ToJson(body)), {200}));
    });
  }
}

// `coffer keyvault import` / `export`: seed files (docs/testing-with-coffer.md).
void AddSeedCommands(CLI::App& kv) {
  {
    auto* cmd = kv.add_subcommand(
        "import",
        "Create the vaults, secrets, identities and access a seed file declares, all or nothing");
    auto file = std::make_shared<std::string>();
    cmd->add_option("--file,-f", *file, "The seed file (YAML)")->required();
    cmd->callback([=] {
      std::string text = ReadFileOrUsage(*file);
      auto c = MakeArmClient();
      auto seed = ParseSeed(text, *file, SeedContextFor(c.config()));
      if (!seed.ok()) {
        Fail(seed.status());
      }
      auto imported = ImportSeed(c, *seed, *file);
      if (!imported.ok()) {
        Fail(imported.status());
      }
      Print(*imported);
    });
  }
  {
    auto* cmd = kv.add_subcommand(
        "export", "Write vaults, their secrets, identities and access as a seed file (mode 0600)");
    auto file = std::make_shared<std::string>();
    auto vaults = std::make_shared<std::vector<std::string>>();
    auto values = std::make_shared<bool>(false);
    cmd->add_option("--file,-f", *file, "The file to write")->required();
    cmd->add_option("--vault-name,--name,-n", *vaults, "Only these vaults (default: every vault)");
    cmd->add_flag("--include-values", *values,
                  "Write the secrets' values too (without it, the file holds no value)");
    cmd->callback([=] {
      auto c = MakeArmClient();
      auto seed = ExportSeed(c, *vaults, *values);
      if (!seed.ok()) {
        Fail(seed.status());
      }
      std::string text = RenderSeed(*seed);
      // SECURITY: owner-only whether or not it holds values.
      Status written = WriteFileAtomic(*file, text, 0600);
      std::fill(text.begin(), text.end(), '\0');
      if (!written.ok()) {
        Fail(written);
      }
      size_t secrets = 0;
      for (const auto& v : seed->vaults) {
        secrets += v.secrets.size();
      }
      Print(Json{{"file", *file},
                 {"vaults", seed->vaults.size()},
                 {"secrets", secrets},
                 {"identities", seed->identities.size()},
                 {"access", seed->access.size()},
                 {"values", *values}});
    });
  }
}

// `coffer keyvault time-shift`: time travel (docs/testing-with-coffer.md).
void AddTimeShiftCommand(CLI::App& kv) {
  auto* cmd = kv.add_subcommand(
      "time-shift",
      "Move a vault's clock (or every vault's) forward: expiry, rotation, renewal, retention "
      "and purges behave as if that much time had passed (administrators; dev servers, or "
      "servers started with --allow-time-shift)");
  auto name = std::make_shared<std::string>();
  auto all = std::make_shared<bool>(false);
  auto seconds = std::make_shared<int64_t>(0);
  auto show = std::make_shared<bool>(false);
  auto* name_opt = cmd->add_option("--name,-n", *name, "The vault");
  auto* all_opt = cmd->add_flag("--all", *all, "Every vault, deleted ones too");
  name_opt->excludes(all_opt);
  auto* seconds_opt = cmd->add_option("--seconds", *seconds, "How far forward, in seconds")
                          ->check(CLI::Range(int64_t{1}, int64_t{315576000}));
  auto* show_opt = cmd->add_flag("--show", *show, "Show how far each vault's clock has moved");
  show_opt->excludes(name_opt)->excludes(all_opt)->excludes(seconds_opt);
  cmd->callback([=] {
    auto c = MakeClient();
    const std::string url = c.config().authority + "/coffer/v1/time-shift";
    if (*show) {
      Print(Expect(c.Call("GET", url, c.config().authority), {200}));
      return;
    }
    if (name->empty() && !*all) {
      Usage("name a vault (--name) or every vault (--all)");
    }
    if (*seconds <= 0) {
      Usage("--seconds is required");
    }
    std::string query = *all ? "all=true" : "vault=" + PercentEncode(*name);
    query += "&seconds=" + std::to_string(*seconds);
    Print(Expect(c.Call("POST", url + "?" + query, c.config().authority), {200}));
  });
}

}  // namespace

void AddKeyVaultCommands(CLI::App& app) {
  auto* kv = app.add_subcommand("keyvault", "Manage vaults, secrets and keys (as `az keyvault`)");
  kv->require_subcommand(1);
  AddVaultCommands(*kv);
  AddPolicyCommands(*kv);
  AddSecretCommands(*kv);
  AddKeyCommands(*kv);
  AddCertificateCommands(*kv);
  AddTimeShiftCommand(*kv);
  AddSeedCommands(*kv);
}

}  // namespace coffer::cli
