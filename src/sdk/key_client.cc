#include "coffer/key_client.h"

#include "common/encoding.h"
#include "common/json.h"
#include "sdk/pipeline.h"
#include "sdk/wire.h"

namespace coffer {
namespace {

void ReadKeyProperties(const Json& item, const std::string& kid, KeyProperties* p) {
  p->id = kid;
  SplitObjectId(kid, "keys", &p->vault_url, &p->name, &p->version);
  ReadObjectProperties(item, p);
  if (item.contains("attributes") && item["attributes"].is_object()) {
    const Json& a = item["attributes"];
    p->exportable =
        a.contains("exportable") && a["exportable"].is_boolean() && a["exportable"].get<bool>();
  }
}

StatusOr<KeyVaultKey> ParseKey(const Json& body) {
  if (!body.contains("key") || !body["key"].is_object() || !body["key"].contains("kid") ||
      !body["key"]["kid"].is_string()) {
    return InvalidArgumentError("not a Key Vault key bundle");
  }
  const Json& k = body["key"];
  KeyVaultKey out;
  // SECURITY: only the public members are read; a private one (`d`, `p`,
  // ...) that a vault sent by mistake is never copied.
  out.key.kid = StringMember(k, "kid");
  out.key.kty = StringMember(k, "kty");
  out.key.n = StringMember(k, "n");
  out.key.e = StringMember(k, "e");
  out.key.crv = StringMember(k, "crv");
  out.key.x = StringMember(k, "x");
  out.key.y = StringMember(k, "y");
  if (k.contains("key_ops") && k["key_ops"].is_array()) {
    for (const Json& op : k["key_ops"]) {
      if (op.is_string()) {
        out.key.key_ops.push_back(op.get<std::string>());
      }
    }
  }
  ReadKeyProperties(body, out.key.kid, &out.properties);
  return out;
}

// A list item is a KeyItem: `kid` and the attributes, no JWK.
KeyProperties ParseKeyItem(const Json& item) {
  KeyProperties p;
  ReadKeyProperties(item, StringMember(item, "kid"), &p);
  return p;
}

DeletedKey ParseDeletedKey(const Json& item) {
  DeletedKey d;
  if (auto key = ParseKey(item); key.ok()) {
    d.key = *std::move(key);
  } else {
    d.key.properties = ParseKeyItem(item);
  }
  ReadDeletion(item, &d.recovery_id, &d.deleted_on, &d.scheduled_purge_date);
  return d;
}

KeyRotationPolicy ParseRotationPolicy(const Json& body) {
  KeyRotationPolicy p;
  p.id = StringMember(body, "id");
  if (body.contains("lifetimeActions") && body["lifetimeActions"].is_array()) {
    for (const Json& a : body["lifetimeActions"]) {
      if (!a.is_object()) {
        continue;
      }
      KeyRotationLifetimeAction action;
      if (a.contains("action") && a["action"].is_object()) {
        action.action = StringMember(a["action"], "type");
      }
      if (a.contains("trigger") && a["trigger"].is_object()) {
        action.time_after_create = StringMember(a["trigger"], "timeAfterCreate");
        action.time_before_expiry = StringMember(a["trigger"], "timeBeforeExpiry");
      }
      p.lifetime_actions.push_back(std::move(action));
    }
  }
  if (body.contains("attributes") && body["attributes"].is_object()) {
    const Json& a = body["attributes"];
    p.expires_in = StringMember(a, "expiryTime");
    if (a.contains("created") && a["created"].is_number_integer()) {
      p.created_on = a["created"].get<int64_t>();
    }
    if (a.contains("updated") && a["updated"].is_number_integer()) {
      p.updated_on = a["updated"].get<int64_t>();
    }
  }
  return p;
}

std::string KeyPath(const std::string& name) {
  return "/keys/" + PercentEncode(name);
}

}  // namespace

StatusOr<KeyVaultKey> ParseKeyBundle(const std::string& json) {
  auto body = ParseJson(json);
  if (!body || !body->is_object()) {
    return InvalidArgumentError("not a Key Vault key bundle");
  }
  return ParseKey(*body);
}

KeyClient::KeyClient(std::string vault_url, std::shared_ptr<TokenCredential> credential,
                     SecretClientOptions options)
    : channel_(std::make_shared<VaultChannel>(std::move(vault_url), std::move(credential),
                                              std::move(options), "/keys")) {}

const std::string& KeyClient::vault_url() const {
  return channel_->vault_url();
}

StatusOr<KeyVaultKey> KeyClient::CreateKey(const std::string& name,
                                           const CreateKeyOptions& options) {
  RETURN_IF_ERROR(CheckName(name));
  Json body = {{"kty", options.kty}};
  if (options.key_size) {
    body["key_size"] = *options.key_size;
  }
  if (!options.curve.empty()) {
    body["crv"] = options.curve;
  }
  if (!options.key_ops.empty()) {
    body["key_ops"] = options.key_ops;
  }
  Json attributes = AttributesJson(options.enabled, options.not_before, options.expires_on);
  if (!attributes.empty()) {
    body["attributes"] = attributes;
  }
  if (!options.tags.empty()) {
    body["tags"] = TagsJson(options.tags);
  }
  ASSIGN_OR_RETURN(Json json, channel_->CallJson("POST", KeyPath(name) + "/create", ToJson(body)));
  return ParseKey(json);
}

StatusOr<KeyVaultKey> KeyClient::ImportKey(const std::string& name, const std::string& jwk_json,
                                           const ImportKeyOptions& options) {
  RETURN_IF_ERROR(CheckName(name));
  auto jwk = ParseJson(jwk_json, 4);
  if (!jwk || !jwk->is_object()) {
    // SECURITY: the text may hold a private key; it is never quoted back.
    return InvalidArgumentError("the key to import is not a JSON Web Key object");
  }
  Json body = {{"key", *std::move(jwk)}};
  Json attributes = AttributesJson(options.enabled, options.not_before, options.expires_on);
  if (!attributes.empty()) {
    body["attributes"] = attributes;
  }
  if (!options.tags.empty()) {
    body["tags"] = TagsJson(options.tags);
  }
  ASSIGN_OR_RETURN(Json json, channel_->CallJson("PUT", KeyPath(name), ToJson(body)));
  return ParseKey(json);
}

StatusOr<KeyVaultKey> KeyClient::GetKey(const std::string& name, const std::string& version) {
  RETURN_IF_ERROR(CheckName(name));
  ASSIGN_OR_RETURN(Json json,
                   channel_->CallJson("GET", KeyPath(name) + "/" + PercentEncode(version)));
  return ParseKey(json);
}

StatusOr<KeyVaultKey> KeyClient::UpdateKeyProperties(
    const KeyProperties& p, const std::optional<std::vector<std::string>>& key_ops) {
  RETURN_IF_ERROR(CheckName(p.name));
  Json body = {{"attributes", AttributesJson(p.enabled, p.not_before, p.expires_on)},
               {"tags", TagsJson(p.tags)}};
  if (key_ops) {
    body["key_ops"] = *key_ops;
  }
  ASSIGN_OR_RETURN(
      Json json,
      channel_->CallJson("PATCH", KeyPath(p.name) + "/" + PercentEncode(p.version), ToJson(body)));
  return ParseKey(json);
}

StatusOr<std::vector<KeyProperties>> KeyClient::ListPropertiesOfKeys() {
  std::vector<KeyProperties> out;
  RETURN_IF_ERROR(channel_->ListPages(
      "/keys", "&maxresults=25", [&](const Json& item) { out.push_back(ParseKeyItem(item)); }));
  return out;
}

StatusOr<std::vector<KeyProperties>> KeyClient::ListPropertiesOfKeyVersions(
    const std::string& name) {
  RETURN_IF_ERROR(CheckName(name));
  std::vector<KeyProperties> out;
  RETURN_IF_ERROR(
      channel_->ListPages(KeyPath(name) + "/versions", "&maxresults=25",
                          [&](const Json& item) { out.push_back(ParseKeyItem(item)); }));
  return out;
}

StatusOr<DeletedKey> KeyClient::DeleteKey(const std::string& name) {
  RETURN_IF_ERROR(CheckName(name));
  ASSIGN_OR_RETURN(Json json, channel_->CallJson("DELETE", KeyPath(name)));
  return ParseDeletedKey(json);
}

StatusOr<DeletedKey> KeyClient::GetDeletedKey(const std::string& name) {
  RETURN_IF_ERROR(CheckName(name));
  ASSIGN_OR_RETURN(Json json, channel_->CallJson("GET", "/deletedkeys/" + PercentEncode(name)));
  return ParseDeletedKey(json);
}

StatusOr<std::vector<DeletedKey>> KeyClient::ListDeletedKeys() {
  std::vector<DeletedKey> out;
  RETURN_IF_ERROR(channel_->ListPages("/deletedkeys", "&maxresults=25", [&](const Json& item) {
    out.push_back(ParseDeletedKey(item));
  }));
  return out;
}

StatusOr<KeyVaultKey> KeyClient::RecoverDeletedKey(const std::string& name) {
  RETURN_IF_ERROR(CheckName(name));
  ASSIGN_OR_RETURN(Json json,
                   channel_->CallJson("POST", "/deletedkeys/" + PercentEncode(name) + "/recover"));
  return ParseKey(json);
}

Status KeyClient::PurgeDeletedKey(const std::string& name) {
  RETURN_IF_ERROR(CheckName(name));
  ASSIGN_OR_RETURN(HttpResponse res,
                   channel_->Call("DELETE", "/deletedkeys/" + PercentEncode(name)));
  if (res.status != 204 && res.status != 200) {
    return ErrorFromResponse(res);
  }
  return OkStatus();
}

StatusOr<std::string> KeyClient::BackupKey(const std::string& name) {
  RETURN_IF_ERROR(CheckName(name));
  ASSIGN_OR_RETURN(Json json, channel_->CallJson("POST", KeyPath(name) + "/backup"));
  return StringMember(json, "value");
}

StatusOr<KeyVaultKey> KeyClient::RestoreKeyBackup(const std::string& backup) {
  ASSIGN_OR_RETURN(Json json,
                   channel_->CallJson("POST", "/keys/restore", ToJson(Json{{"value", backup}})));
  return ParseKey(json);
}

StatusOr<KeyVaultKey> KeyClient::RotateKey(const std::string& name) {
  RETURN_IF_ERROR(CheckName(name));
  ASSIGN_OR_RETURN(Json json, channel_->CallJson("POST", KeyPath(name) + "/rotate"));
  return ParseKey(json);
}

StatusOr<KeyRotationPolicy> KeyClient::GetKeyRotationPolicy(const std::string& name) {
  RETURN_IF_ERROR(CheckName(name));
  ASSIGN_OR_RETURN(Json json, channel_->CallJson("GET", KeyPath(name) + "/rotationpolicy"));
  return ParseRotationPolicy(json);
}

StatusOr<KeyRotationPolicy> KeyClient::UpdateKeyRotationPolicy(const std::string& name,
                                                               const KeyRotationPolicy& policy) {
  RETURN_IF_ERROR(CheckName(name));
  Json actions = Json::array();
  for (const KeyRotationLifetimeAction& a : policy.lifetime_actions) {
    Json trigger = Json::object();
    if (!a.time_after_create.empty()) {
      trigger["timeAfterCreate"] = a.time_after_create;
    }
    if (!a.time_before_expiry.empty()) {
      trigger["timeBeforeExpiry"] = a.time_before_expiry;
    }
    actions.push_back(Json{{"trigger", trigger}, {"action", {{"type", a.action}}}});
  }
  Json body = {{"lifetimeActions", actions}, {"attributes", Json::object()}};
  if (!policy.expires_in.empty()) {
    body["attributes"]["expiryTime"] = policy.expires_in;
  }
  ASSIGN_OR_RETURN(Json json,
                   channel_->CallJson("PUT", KeyPath(name) + "/rotationpolicy", ToJson(body)));
  return ParseRotationPolicy(json);
}

StatusOr<std::vector<uint8_t>> KeyClient::GetRandomBytes(int count) {
  if (count < 1 || count > 128) {
    return InvalidArgumentError("the vault gives 1 to 128 random bytes at a time");
  }
  ASSIGN_OR_RETURN(Json json, channel_->CallJson("POST", "/rng", ToJson(Json{{"count", count}})));
  std::optional<std::string> bytes = Base64UrlDecode(StringMember(json, "value"));
  if (!bytes || bytes->size() != static_cast<size_t>(count)) {
    return InternalError("the vault's random bytes are not " + std::to_string(count) +
                         " bytes of base64url");
  }
  return std::vector<uint8_t>(bytes->begin(), bytes->end());
}

}  // namespace coffer
