// `coffer keyvault key ...`: the keys commands, named and flagged as
// `az keyvault key ...` (docs/cli.md). Results are the keys API's JSON; the
// cryptographic operations print what az prints for them.

#include "cli/key_commands.h"

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/vault_objects.h"
#include "common/encoding.h"
#include "common/json.h"
#include "crypto/asym_key.h"
#include "crypto/primitives.h"

namespace coffer::cli {

void AddKeyTarget(CLI::App* cmd, ObjectArgs& a, bool with_version) {
  AddObjectTarget(cmd, a, "Key", "keys", with_version);
}

std::pair<std::string, std::string> ResolveKey(const client::ApiClient& c, ObjectArgs& a) {
  auto target = ResolveObject(c, a, "keys");
  RequireName(a);
  return target;
}

std::string VersionPath(const ObjectArgs& a, const std::string& operation) {
  return "/keys/" + a.name + "/" + a.version + (operation.empty() ? "" : "/" + operation);
}

std::string ResultBytes(const Json& result) {
  auto bytes = Base64UrlDecode(result.is_object() ? result.value("value", "") : "");
  if (!bytes) {
    Fail(InternalError("the server returned a malformed result"));
  }
  return *bytes;
}

namespace {

const std::vector<std::string> kKeyTypes = {"RSA", "RSA-HSM", "EC", "EC-HSM"};
const std::vector<std::string> kCurves = {"P-256", "P-384", "P-521", "P-256K"};

// The settings create, import and set-attributes share.
struct KeySettings {
  std::vector<std::string> ops;
  std::vector<std::string> tags;
  std::string enabled;   // set-attributes: --enabled
  std::string disabled;  // create, import: --disabled
  std::string expires;
  std::string not_before;
};

void AddKeySettings(CLI::App* cmd, KeySettings& s, bool update) {
  cmd->add_option("--ops", s.ops,
                  "Space-separated permitted operations: encrypt decrypt sign verify wrapKey "
                  "unwrapKey");
  cmd->add_option(
      "--tags", s.tags,
      update ? "Space-separated key=value tags (replaces all)" : "Space-separated key=value tags");
  if (update) {
    cmd->add_option("--enabled", s.enabled, "true or false");
  } else {
    cmd->add_option("--disabled", s.disabled, "true to create it disabled");
  }
  cmd->add_option("--expires", s.expires, "Expiry (ISO 8601 UTC)");
  cmd->add_option("--not-before", s.not_before, "Not valid before (ISO 8601 UTC)");
}

// SettingsBody is the request body the settings make: attributes always
// (as the SDKs send them), key_ops and tags when given.
Json SettingsBody(const KeySettings& s) {
  Json attrs = Json::object();
  if (!s.enabled.empty()) {
    attrs["enabled"] = ParseBool(s.enabled, "--enabled");
  }
  if (!s.disabled.empty() && ParseBool(s.disabled, "--disabled")) {
    attrs["enabled"] = false;
  }
  if (!s.expires.empty()) {
    attrs["exp"] = ParseTime(s.expires, "--expires");
  }
  if (!s.not_before.empty()) {
    attrs["nbf"] = ParseTime(s.not_before, "--not-before");
  }
  Json body = {{"attributes", attrs}};
  if (!s.ops.empty()) {
    body["key_ops"] = s.ops;
  }
  if (!s.tags.empty()) {
    body["tags"] = ParseTags(s.tags);
  }
  return body;
}

void AddCreateAndImport(CLI::App* key) {
  {
    auto* cmd = key->add_subcommand("create", "Create a key, or a new version of it");
    auto a = std::make_shared<ObjectArgs>();
    auto s = std::make_shared<KeySettings>();
    auto kty = std::make_shared<std::string>("RSA");
    auto size = std::make_shared<int>(0);
    auto curve = std::make_shared<std::string>();
    AddKeyTarget(cmd, *a, false);
    cmd->add_option("--kty", *kty, "Key type")
        ->check(CLI::IsMember(kKeyTypes))
        ->capture_default_str();
    cmd->add_option("--size", *size, "RSA key size: 2048 (default), 3072 or 4096");
    cmd->add_option("--curve", *curve, "EC curve (default P-256)")->check(CLI::IsMember(kCurves));
    AddKeySettings(cmd, *s, false);
    cmd->callback([=] {
      Json body = SettingsBody(*s);
      body["kty"] = *kty;
      if (*size != 0) {
        body["key_size"] = *size;
      }
      if (!curve->empty()) {
        body["crv"] = *curve;
      }
      auto c = MakeClient();
      auto [base, resource] = ResolveKey(c, *a);
      Print(Expect(
          c.Call("POST", KvUrl(base, "/keys/" + a->name + "/create"), resource, ToJson(body)),
          {200}));
    });
  }
  {
    auto* cmd = key->add_subcommand("import", "Import a private key from a PEM or JWK file");
    auto a = std::make_shared<ObjectArgs>();
    auto s = std::make_shared<KeySettings>();
    auto pem_file = std::make_shared<std::string>();
    auto jwk_file = std::make_shared<std::string>();
    AddKeyTarget(cmd, *a, false);
    cmd->add_option("--pem-file", *pem_file, "Unencrypted PEM private key (RSA or EC)");
    cmd->add_option("--jwk-file", *jwk_file, "Private JWK (JSON), as Key Vault's import takes");
    AddKeySettings(cmd, *s, false);
    cmd->callback([=] {
      RequireName(*a);
      if (pem_file->empty() == jwk_file->empty()) {
        Usage("give exactly one of --pem-file and --jwk-file");
      }
      Json body = SettingsBody(*s);
      // SECURITY: the file holds a private key. It is parsed and checked
      // here (so a bad one is refused before anything is sent, with a
      // message that never repeats its contents), sent once in the import
      // request, and its bytes and the request are wiped afterwards.
      std::string text = ReadFileOrUsage(pem_file->empty() ? *jwk_file : *pem_file);
      StatusOr<std::unique_ptr<crypto::AsymKey>> parsed = InvalidArgumentError("");
      Json file_ops;
      std::string file_kty;
      if (!pem_file->empty()) {
        parsed = crypto::AsymKey::FromPrivatePem(text);
      } else {
        auto jwk = ParseJson(text, 8);
        if (!jwk || !jwk->is_object()) {
          crypto::SecureWipe(text);
          Fail(InvalidArgumentError("Import failed: " + *jwk_file + " is not a JSON object.",
                                    "BadParameter"));
        }
        parsed = crypto::AsymKey::FromJwk(*jwk);
        file_ops = jwk->value("key_ops", Json());
        file_kty = jwk->value("kty", "");
      }
      crypto::SecureWipe(text);
      if (!parsed.ok()) {
        Fail(InvalidArgumentError("Import failed: " + std::string(parsed.status().message()),
                                  std::string(parsed.status().reason())));
      }
      body["key"] = (*parsed)->PrivateJwk();
      if (file_kty == "RSA-HSM" || file_kty == "EC-HSM") {
        body["key"]["kty"] = file_kty;  // the vault decides whether it may hold one
      }
      if (body.contains("key_ops")) {
        body["key"]["key_ops"] = body["key_ops"];
        body.erase("key_ops");
      } else if (file_ops.is_array()) {
        body["key"]["key_ops"] = file_ops;
      }
      std::string request = ToJson(body);
      body = Json();
      auto c = MakeClient();
      auto [base, resource] = ResolveKey(c, *a);
      auto response = c.Call("PUT", KvUrl(base, "/keys/" + a->name), resource, request);
      crypto::SecureWipe(request);
      Print(Expect(response, {200}));
    });
  }
}

void AddReadAndLifecycle(CLI::App* key) {
  {
    auto* cmd = key->add_subcommand("show", "Show a key's public part and attributes");
    auto a = std::make_shared<ObjectArgs>();
    AddKeyTarget(cmd, *a, true);
    cmd->callback([=] {
      auto c = MakeClient();
      auto [base, resource] = ResolveKey(c, *a);
      Print(Expect(c.Call("GET", KvUrl(base, VersionPath(*a)), resource), {200}));
    });
  }
  {
    auto* cmd = key->add_subcommand("set-attributes", "Update a key's attributes, ops and tags");
    auto a = std::make_shared<ObjectArgs>();
    auto s = std::make_shared<KeySettings>();
    AddKeyTarget(cmd, *a, true);
    AddKeySettings(cmd, *s, true);
    cmd->callback([=] {
      Json body = SettingsBody(*s);
      auto c = MakeClient();
      auto [base, resource] = ResolveKey(c, *a);
      Print(Expect(c.Call("PATCH", KvUrl(base, VersionPath(*a)), resource, ToJson(body)), {200}));
    });
  }
  AddObjectCommands(
      key, "Key", "keys",
      {{"list", "List keys", "/keys"},
       {"list-versions", "List the versions of a key", "/keys/{name}/versions"},
       {"list-deleted", "List deleted keys", "/deletedkeys"}},
      {{"delete", "Delete a key (soft delete)", "DELETE", "/keys/", "", 200},
       {"show-deleted", "Show a deleted key", "GET", "/deletedkeys/", "", 200},
       {"recover", "Recover a deleted key", "POST", "/deletedkeys/", "/recover", 200},
       {"purge", "Permanently delete a deleted key", "DELETE", "/deletedkeys/", "", 204},
       {"rotate", "Make a new version of a key with new material", "POST", "/keys/", "/rotate",
        200}});
  AddBackupCommands(key, "Key", "keys");
}

// `key rotation-policy show|update`, as az: the policy's JSON in Key
// Vault's shape both ways.
void AddRotationPolicy(CLI::App* key) {
  auto* policy = key->add_subcommand("rotation-policy", "Show or set a key's rotation policy");
  policy->require_subcommand(1);
  {
    auto* cmd = policy->add_subcommand("show", "Show a key's rotation policy");
    auto a = std::make_shared<ObjectArgs>();
    AddKeyTarget(cmd, *a, false);
    cmd->callback([=] {
      auto c = MakeClient();
      auto [base, resource] = ResolveKey(c, *a);
      Print(Expect(c.Call("GET", KvUrl(base, "/keys/" + a->name + "/rotationpolicy"), resource),
                   {200}));
    });
  }
  {
    auto* cmd = policy->add_subcommand("update", "Replace a key's rotation policy");
    auto a = std::make_shared<ObjectArgs>();
    auto value = std::make_shared<std::string>();
    AddKeyTarget(cmd, *a, false);
    cmd->add_option("--value", *value,
                    "The policy as JSON, or a file holding it (a leading @ is allowed)")
        ->required();
    cmd->callback([=] {
      Json body = ReadJsonArg(*value, "--value");
      auto c = MakeClient();
      auto [base, resource] = ResolveKey(c, *a);
      Print(Expect(c.Call("PUT", KvUrl(base, "/keys/" + a->name + "/rotationpolicy"), resource,
                          ToJson(body)),
                   {200}));
    });
  }
}

}  // namespace

void AddKeyCommands(CLI::App& kv) {
  auto* key = kv.add_subcommand("key", "Manage keys and use them (as `az keyvault key`)");
  key->require_subcommand(1);
  AddCreateAndImport(key);
  AddReadAndLifecycle(key);
  AddRotationPolicy(key);
  AddKeyCryptoCommands(key);
}

}  // namespace coffer::cli
