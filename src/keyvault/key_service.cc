#include "keyvault/key_service.h"

#include <algorithm>

#include "common/encoding.h"
#include "common/log.h"
#include "common/strings.h"
#include "crypto/primitives.h"
#include "keyvault/names.h"
#include "keyvault/rotation_policy.h"
#include "keyvault/secret_service.h"

namespace coffer::keyvault {
namespace {

// The most rotation policies one scheduled pass reads.
constexpr int kMaxPolicies = 10000;
// The largest RSA key whose private-key operations run on the I/O thread.
constexpr int kMaxFastRsaBits = 2048;

constexpr size_t kMaxCacheEntries = 10000;
constexpr char kBackupFormat[] = "coffer-key-backup";
constexpr storage::ObjectKind kKind = storage::ObjectKind::kKey;

Status BadParameter(const std::string& message) {
  return InvalidArgumentError(message, "BadParameter");
}

// key_ops in Key Vault's spelling (the JS SDK compares them exactly).
constexpr std::string_view kKeyOps[] = {"encrypt", "decrypt",   "sign",   "verify",
                                        "wrapKey", "unwrapKey", "import", "export"};

StatusOr<std::vector<std::string>> CanonicalKeyOps(const std::vector<std::string>& ops) {
  std::vector<std::string> out;
  for (const auto& op : ops) {
    auto it = std::find_if(std::begin(kKeyOps), std::end(kKeyOps),
                           [&](std::string_view k) { return EqualsIgnoreCase(k, op); });
    if (it == std::end(kKeyOps)) {
      return BadParameter(
          "Invalid key operation in key_ops; allowed are encrypt, decrypt, sign, "
          "verify, wrapKey, unwrapKey, import, export.");
    }
    if (std::find(out.begin(), out.end(), *it) == out.end()) {
      out.emplace_back(*it);
    }
  }
  return out;
}

std::vector<std::string> DefaultKeyOps(const crypto::AsymKey& key) {
  if (key.type() == crypto::AsymKeyType::kRsa) {
    return {"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"};
  }
  return {"sign", "verify"};
}

// What every new key is checked for, created or imported.
Status CheckSettings(const std::string& tags_json, bool exportable, bool has_release_policy) {
  if (has_release_policy) {
    return BadParameter("Key release policies need an attestation service; this vault has none.");
  }
  if (exportable) {
    return BadParameter("AKV.SKR.1004: Exportable keys must have release policy.");
  }
  return ValidateTagsJson(tags_json);
}

Status RefuseHsm(const OpenVault& vault) {
  if (vault.record.sku != "premium") {
    return BadParameter("Hardware key operation not allowed on standard vault.");
  }
  return BadParameter(
      "Hardware-protected keys need an HSM, which this premium vault does not "
      "have yet; create a software key (kty RSA or EC).");
}

bool IsHsm(std::string_view kty) {
  return kty.size() > 4 && kty.substr(kty.size() - 4) == "-HSM";
}

bool HasOp(const Json& jwk, std::string_view op) {
  auto ops = jwk.find("key_ops");
  if (ops == jwk.end() || !ops->is_array()) {
    return false;
  }
  for (const auto& o : *ops) {
    if (o.is_string() && o.get<std::string>() == op) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::string_view KeyOperationName(KeyOperation op) {
  switch (op) {
    case KeyOperation::kEncrypt:
      return "encrypt";
    case KeyOperation::kDecrypt:
      return "decrypt";
    case KeyOperation::kWrapKey:
      return "wrapKey";
    case KeyOperation::kUnwrapKey:
      return "unwrapKey";
    case KeyOperation::kSign:
      return "sign";
    case KeyOperation::kVerify:
      return "verify";
  }
  return "";
}

KeyService::KeyService(storage::Store& store, const Envelope& envelope, const Clock& clock,
                       int64_t cache_ttl_seconds)
    : store_(store), envelope_(envelope), clock_(clock), cache_ttl_seconds_(cache_ttl_seconds) {}

std::string KeyService::CacheKey(const std::string& vault, const std::string& name,
                                 const std::string& version) {
  return AsciiLower(vault) + '\x1f' + AsciiLower(name) + '\x1f' + AsciiLower(version);
}

void KeyService::Invalidate(const std::string& vault, const std::string& name) {
  std::string prefix = CacheKey(vault, name, "");
  std::lock_guard<std::mutex> lock(cache_mu_);
  ++cache_generation_;
  auto it = cache_.lower_bound(prefix);
  while (it != cache_.end() && it->first.compare(0, prefix.size(), prefix) == 0) {
    it = cache_.erase(it);
  }
}

void KeyService::InvalidateAll() {
  std::lock_guard<std::mutex> lock(cache_mu_);
  ++cache_generation_;
  cache_.clear();
}

Key KeyService::FromView(const storage::SecretView& view, const OpenVault& vault) const {
  Key k;
  k.record = view.version;
  k.record.sealed_value.clear();
  auto jwk = ParseJson(view.version.key_json, 4);
  k.jwk = jwk && jwk->is_object() ? *jwk : Json::object();
  k.deleted = view.deleted;
  k.deleted_date = view.deleted_date;
  k.scheduled_purge_date = view.scheduled_purge_date;
  k.managed = view.owner == storage::ObjectKind::kCertificate;
  k.recoverable_days = vault.settings.retention_days;
  k.recovery_level = RecoveryLevel(vault.settings);
  return k;
}

storage::SecretVersionRecord KeyService::SealedVersion(const OpenVault& vault,
                                                       const std::string& name,
                                                       const std::string& version,
                                                       const crypto::AsymKey& key,
                                                       std::vector<std::string> key_ops) {
  storage::SecretVersionRecord rec;
  rec.name = name;
  rec.version = version;
  crypto::SecureBytes der = key.ToPrivateDer();
  std::string plain(der.view());
  rec.sealed_value =
      Envelope::SealKeyMaterial(vault.data_key, vault.record.name, name, version, plain);
  crypto::SecureWipe(plain);
  Json jwk = key.PublicJwk();
  jwk["key_ops"] = std::move(key_ops);
  rec.key_json = ToJson(jwk);
  return rec;
}

StatusOr<Key> KeyService::Store(const Vault& vault, const std::string& name,
                                const crypto::AsymKey& key, const std::vector<std::string>& key_ops,
                                storage::SecretVersionRecord rec) {
  storage::SecretVersionRecord sealed =
      SealedVersion(*vault, name, crypto::RandomHex(16), key, key_ops);
  rec.name = sealed.name;
  rec.version = sealed.version;
  rec.sealed_value = std::move(sealed.sealed_value);
  rec.key_json = std::move(sealed.key_json);
  rec.content_type.clear();
  rec.created = rec.updated = clock_.NowSeconds();
  auto added = store_.AddObjectVersion(kKind, vault->record.name, rec);
  Invalidate(vault->record.name, name);
  if (added.status().code() == StatusCode::kFailedPrecondition) {
    return DeletedButRecoverable(kKind, name);
  }
  RETURN_IF_ERROR(added.status());
  rec.name = std::move(added).value();
  return FromView(storage::SecretView{std::move(rec), false, 0, 0, std::nullopt}, *vault);
}

StatusOr<Key> KeyService::Create(const Vault& vault, const std::string& name,
                                 const KeyCreateInput& in) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  if (IsHsm(in.kty)) {
    return RefuseHsm(*vault);
  }
  RETURN_IF_ERROR(CheckSettings(in.tags_json, in.exportable, in.has_release_policy));
  if (in.public_exponent && *in.public_exponent != 65537) {
    return BadParameter("The public exponent must be 65537.");
  }
  if (in.kty == "EC" && in.key_size != 0) {
    return BadParameter("key_size applies to RSA keys; EC keys take crv.");
  }
  ASSIGN_OR_RETURN(auto key, crypto::AsymKey::Generate(in.kty, in.key_size, in.crv));
  std::vector<std::string> ops = DefaultKeyOps(*key);
  if (in.key_ops) {
    ASSIGN_OR_RETURN(ops, CanonicalKeyOps(*in.key_ops));
  }
  storage::SecretVersionRecord rec;
  rec.tags_json = in.tags_json;
  rec.enabled = in.enabled;
  rec.nbf = in.nbf;
  rec.exp = in.exp;
  return Store(vault, name, *key, ops, std::move(rec));
}

StatusOr<Key> KeyService::Import(const Vault& vault, const std::string& name,
                                 const KeyImportInput& in) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  if (!in.jwk.is_object()) {
    return BadParameter("Property 'key' must be a JSON Web Key object.");
  }
  std::string kty = in.jwk.value("kty", Json()).is_string() ? in.jwk["kty"].get<std::string>() : "";
  if (in.hsm || IsHsm(kty)) {
    return RefuseHsm(*vault);
  }
  RETURN_IF_ERROR(CheckSettings(in.tags_json, in.exportable, in.has_release_policy));
  ASSIGN_OR_RETURN(auto key, crypto::AsymKey::FromJwk(in.jwk));
  std::vector<std::string> ops = DefaultKeyOps(*key);
  if (auto it = in.jwk.find("key_ops"); it != in.jwk.end() && !it->is_null()) {
    if (!it->is_array()) {
      return BadParameter("Property 'key.key_ops' must be an array of strings.");
    }
    std::vector<std::string> given;
    for (const auto& op : *it) {
      if (!op.is_string()) {
        return BadParameter("Property 'key.key_ops' must be an array of strings.");
      }
      given.push_back(op.get<std::string>());
    }
    ASSIGN_OR_RETURN(ops, CanonicalKeyOps(given));
  }
  storage::SecretVersionRecord rec;
  rec.tags_json = in.tags_json;
  rec.enabled = in.enabled;
  rec.nbf = in.nbf;
  rec.exp = in.exp;
  return Store(vault, name, *key, ops, std::move(rec));
}

StatusOr<Key> KeyService::Get(const Vault& vault, const std::string& name,
                              const std::string& version) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  if (!version.empty()) {
    RETURN_IF_ERROR(ValidateVersion(version));
  }
  auto view = store_.GetObject(kKind, vault->record.name, name, AsciiLower(version), false);
  if (!view.ok()) {
    return InKeyVaultWords(view.status(), kKind, name, false);
  }
  return FromView(*view, *vault);
}

StatusOr<Key> KeyService::Update(const Vault& vault, const std::string& name,
                                 const std::string& version, const KeyPatch& patch) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  if (!version.empty()) {
    RETURN_IF_ERROR(ValidateVersion(version));
  }
  if (patch.has_release_policy) {
    return BadParameter("Key release policies need an attestation service; this vault has none.");
  }
  if (patch.tags_json) {
    RETURN_IF_ERROR(ValidateTagsJson(*patch.tags_json));
  }
  std::optional<std::vector<std::string>> ops;
  if (patch.key_ops) {
    ASSIGN_OR_RETURN(ops, CanonicalKeyOps(*patch.key_ops));
  }
  const int64_t now = clock_.NowSeconds();
  auto view = store_.UpdateObjectVersion(
      kKind, vault->record.name, name, AsciiLower(version),
      [&](storage::SecretVersionRecord& rec) -> Status {
        if (ops) {
          auto jwk = ParseJson(rec.key_json, 4);
          if (!jwk || !jwk->is_object()) {
            return DataLossError("stored key '" + name + "' is not valid");
          }
          (*jwk)["key_ops"] = *ops;
          rec.key_json = ToJson(*jwk);
        }
        ApplyCommonPatch(patch, now, rec);
        return OkStatus();
      });
  Invalidate(vault->record.name, name);
  if (!view.ok()) {
    return InKeyVaultWords(view.status(), kKind, name, false);
  }
  return FromView(*view, *vault);
}

StatusOr<KeyList> KeyService::ListPage(const Vault& vault, bool deleted, const std::string& cursor,
                                       int limit) {
  ASSIGN_OR_RETURN(storage::SecretPage page,
                   store_.ListObjects(kKind, vault->record.name, deleted, cursor, limit));
  KeyList out;
  for (const auto& item : page.items) {
    out.items.push_back(FromView(item, *vault));
  }
  out.next_cursor = std::move(page.next_cursor);
  return out;
}

StatusOr<KeyList> KeyService::List(const Vault& vault, const std::string& cursor, int limit) {
  return ListPage(vault, false, cursor, limit);
}

StatusOr<KeyList> KeyService::ListDeleted(const Vault& vault, const std::string& cursor,
                                          int limit) {
  return ListPage(vault, true, cursor, limit);
}

StatusOr<KeyList> KeyService::ListVersions(const Vault& vault, const std::string& name,
                                           const std::string& cursor, int limit) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  auto page = store_.ListObjectVersions(kKind, vault->record.name, name, cursor, limit);
  if (!page.ok()) {
    return InKeyVaultWords(page.status(), kKind, name, false);
  }
  KeyList out;
  for (const auto& rec : page->items) {
    out.items.push_back(FromView(storage::SecretView{rec, false, 0, 0, std::nullopt}, *vault));
  }
  out.next_cursor = std::move(page->next_cursor);
  return out;
}

StatusOr<Key> KeyService::Delete(const Vault& vault, const std::string& name) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  int64_t now = clock_.NowSeconds();
  int64_t purge_at = now + int64_t{vault->settings.retention_days} * 86400;
  Status marked = store_.MarkObjectDeleted(kKind, vault->record.name, name, now, purge_at);
  Invalidate(vault->record.name, name);
  if (!marked.ok()) {
    return InKeyVaultWords(marked, kKind, name, false);
  }
  ASSIGN_OR_RETURN(storage::SecretView view,
                   store_.GetObject(kKind, vault->record.name, name, "", true));
  return FromView(view, *vault);
}

StatusOr<Key> KeyService::GetDeleted(const Vault& vault, const std::string& name) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  ASSIGN_OR_RETURN(storage::SecretView view,
                   FindDeletedObject(store_, kKind, vault->record.name, name));
  return FromView(view, *vault);
}

StatusOr<Key> KeyService::Recover(const Vault& vault, const std::string& name) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  Status recovered = store_.RecoverObject(kKind, vault->record.name, name);
  Invalidate(vault->record.name, name);
  if (!recovered.ok()) {
    return InKeyVaultWords(recovered, kKind, name, true);
  }
  ASSIGN_OR_RETURN(storage::SecretView view,
                   store_.GetObject(kKind, vault->record.name, name, "", false));
  return FromView(view, *vault);
}

Status KeyService::Purge(const Vault& vault, const std::string& name) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  RETURN_IF_ERROR(FindDeletedObject(store_, kKind, vault->record.name, name).status());
  // SECURITY: purge protection is absolute until the retention period ends.
  if (vault->settings.purge_protection) {
    return PermissionDeniedError(
        "Operation \"purge\" is not allowed because purge protection is enabled for this "
        "vault. The key will be purged automatically on its scheduled purge date.",
        "Forbidden");
  }
  Status purged = store_.PurgeObject(kKind, vault->record.name, name);
  Invalidate(vault->record.name, name);
  return InKeyVaultWords(purged, kKind, name, true);
}

StatusOr<std::string> KeyService::Backup(const Vault& vault, const std::string& name) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  auto versions = store_.GetAllObjectVersions(kKind, vault->record.name, name);
  if (!versions.ok()) {
    return InKeyVaultWords(versions.status(), kKind, name, false);
  }
  if (versions->size() > static_cast<size_t>(kMaxBackupVersions)) {
    return BadParameter("Backup is not allowed for a key with more than 500 versions.");
  }
  Json doc = {{"format", kBackupFormat}, {"v", 1}, {"versions", Json::array()}};
  for (const auto& rec : *versions) {
    ASSIGN_OR_RETURN(std::string der,
                     Envelope::OpenKeyMaterial(vault->data_key, vault->record.name, rec.name,
                                               rec.version, rec.sealed_value));
    Json v = {{"name", rec.name},       {"version", rec.version}, {"key", Base64Encode(der)},
              {"jwk", rec.key_json},    {"tags", rec.tags_json},  {"enabled", rec.enabled},
              {"created", rec.created}, {"updated", rec.updated}};
    crypto::SecureWipe(der);
    if (rec.nbf)
      v["nbf"] = *rec.nbf;
    if (rec.exp)
      v["exp"] = *rec.exp;
    doc["versions"].push_back(std::move(v));
  }
  std::string plain = ToJson(doc);
  // SECURITY: the blob holds private keys; it is sealed under the
  // installation's backup key, and the plaintext is wiped.
  for (auto& v : doc["versions"]) {
    std::string& key = v["key"].get_ref<std::string&>();
    crypto::SecureWipe(key);
  }
  std::string blob = envelope_.SealBackup(plain);
  crypto::SecureWipe(plain);
  return blob;
}

StatusOr<Key> KeyService::Restore(const Vault& vault, const std::string& blob) {
  ASSIGN_OR_RETURN(std::string plain, envelope_.OpenBackup(blob));
  auto doc = ParseJson(plain, 8);
  crypto::SecureWipe(plain);
  Status unknown = BadParameter("The backup blob is not a key backup of this installation.");
  if (!doc || !doc->is_object() || doc->value("format", "") != kBackupFormat ||
      !doc->contains("versions") || !(*doc)["versions"].is_array() || (*doc)["versions"].empty()) {
    return unknown;
  }
  std::vector<storage::SecretVersionRecord> records;
  Status bad;
  for (auto& v : (*doc)["versions"]) {
    if (!v.is_object() || !v.value("name", Json()).is_string() ||
        !v.value("version", Json()).is_string() || !v.value("key", Json()).is_string() ||
        !v.value("jwk", Json()).is_string()) {
      bad = unknown;
      break;
    }
    storage::SecretVersionRecord rec;
    rec.name = v["name"].get<std::string>();
    rec.version = v["version"].get<std::string>();
    if (Status s = ValidateObjectName(rec.name); !s.ok()) {
      bad = s;
      break;
    }
    if (Status s = ValidateVersion(rec.version); !s.ok()) {
      bad = s;
      break;
    }
    auto der = Base64Decode(v["key"].get<std::string>());
    crypto::SecureWipe(v["key"].get_ref<std::string&>());
    if (!der || !crypto::AsymKey::FromPrivateDer(*der).ok()) {
      if (der) {
        crypto::SecureWipe(*der);
      }
      bad = unknown;
      break;
    }
    rec.sealed_value =
        Envelope::SealKeyMaterial(vault->data_key, vault->record.name, rec.name, rec.version, *der);
    crypto::SecureWipe(*der);
    rec.key_json = v["jwk"].get<std::string>();
    rec.tags_json = v.value("tags", "{}");
    rec.enabled = v.value("enabled", true);
    rec.created = v.value("created", int64_t{0});
    rec.updated = v.value("updated", int64_t{0});
    if (v.contains("nbf") && v["nbf"].is_number_integer())
      rec.nbf = v["nbf"].get<int64_t>();
    if (v.contains("exp") && v["exp"].is_number_integer())
      rec.exp = v["exp"].get<int64_t>();
    records.push_back(std::move(rec));
  }
  if (!bad.ok()) {
    for (auto& v : (*doc)["versions"]) {
      if (v.is_object() && v.value("key", Json()).is_string()) {
        crypto::SecureWipe(v["key"].get_ref<std::string&>());
      }
    }
    return bad;
  }
  const std::string name = records.back().name;
  Status restored = store_.RestoreObject(kKind, vault->record.name, records);
  Invalidate(vault->record.name, name);
  if (restored.code() == StatusCode::kAlreadyExists) {
    return AlreadyExistsError(
        "There was a conflict restoring the key '" + name +
            "'. This can happen if either: a second key with the same name was created after the "
            "first key was deleted; thus trying to restore a key whose name is already in use.",
        "Conflict");
  }
  RETURN_IF_ERROR(restored);
  ASSIGN_OR_RETURN(storage::SecretView view,
                   store_.GetObject(kKind, vault->record.name, name, "", false));
  return FromView(view, *vault);
}

StatusOr<Key> KeyService::Rotate(const Vault& vault, const std::string& name) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  auto view = store_.GetObject(kKind, vault->record.name, name, "", false);
  if (!view.ok()) {
    return InKeyVaultWords(view.status(), kKind, name, false);
  }
  Key current = FromView(*view, *vault);
  std::string kty = current.jwk.value("kty", "");
  int bits = 0;
  if (kty == "RSA") {
    auto n = Base64UrlDecode(current.jwk.value("n", ""));
    bits = n ? static_cast<int>(n->size()) * 8 : 0;
  }
  ASSIGN_OR_RETURN(auto key, crypto::AsymKey::Generate(kty, bits, current.jwk.value("crv", "")));
  std::vector<std::string> ops;
  if (auto it = current.jwk.find("key_ops"); it != current.jwk.end() && it->is_array()) {
    for (const auto& op : *it) {
      if (op.is_string()) {
        ops.push_back(op.get<std::string>());
      }
    }
  }
  storage::SecretVersionRecord rec;
  rec.tags_json = view->version.tags_json;
  rec.enabled = view->version.enabled;
  ASSIGN_OR_RETURN(std::string policy, store_.GetObjectPolicy(kKind, vault->record.name, name));
  if (!policy.empty()) {
    if (auto parsed = ParseJson(policy, 8)) {
      rec.exp = RotatedExpiry(*parsed, clock_.NowSeconds());
    }
  }
  return Store(vault, current.record.name, *key, ops, std::move(rec));
}

StatusOr<Json> KeyService::GetRotationPolicy(const Vault& vault, const std::string& name) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  auto policy = store_.GetObjectPolicy(kKind, vault->record.name, name);
  if (!policy.ok()) {
    return InKeyVaultWords(policy.status(), kKind, name, false);
  }
  if (policy->empty()) {
    return DefaultRotationPolicy();
  }
  auto parsed = ParseJson(*policy, 8);
  if (!parsed || !parsed->is_object()) {
    return DataLossError("stored rotation policy of key '" + name + "' is not valid");
  }
  return *parsed;
}

StatusOr<Json> KeyService::SetRotationPolicy(const Vault& vault, const std::string& name,
                                             const Json& body) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  // Validated against the stored policy inside the store's write, so that
  // `created` survives concurrent updates.
  auto stored = store_.UpdateObjectPolicy(
      kKind, vault->record.name, name,
      [&](const std::optional<std::string>& current) -> StatusOr<std::string> {
        std::optional<Json> before;
        if (current) {
          if (auto parsed = ParseJson(*current, 8); parsed && parsed->is_object()) {
            before = *parsed;
          }
        }
        ASSIGN_OR_RETURN(Json policy, ValidateRotationPolicy(body, before, clock_.NowSeconds()));
        return ToJson(policy);
      });
  if (!stored.ok()) {
    return InKeyVaultWords(stored.status(), kKind, name, false);
  }
  return *ParseJson(*stored, 8);
}

StatusOr<int> KeyService::RotateDue(VaultRegistry& registry) {
  ASSIGN_OR_RETURN(auto policies, store_.ListObjectPolicies(kKind, kMaxPolicies));
  int rotated = 0;
  int64_t now = clock_.NowSeconds();
  for (const auto& p : policies) {
    auto policy = ParseJson(p.policy_json, 8);
    if (!policy || !policy->is_object()) {
      continue;
    }
    auto due = RotationDue(*policy, p.latest_created, p.latest_exp);
    if (!due || *due > now) {
      continue;
    }
    auto vault = registry.Get(p.vault);
    Status done = vault.ok() ? Rotate(*vault, p.name).status() : vault.status();
    if (!done.ok()) {
      COFFER_LOG(kWarning) << "scheduled rotation of key '" << p.name << "' in vault '" << p.vault
                           << "' failed: " << done.ToString();
      continue;
    }
    ++rotated;
  }
  return rotated;
}

StatusOr<std::map<std::string, int64_t>> KeyService::NoticeLeads() {
  ASSIGN_OR_RETURN(auto policies, store_.ListObjectPolicies(kKind, kMaxPolicies));
  std::map<std::string, int64_t> out;
  for (const auto& p : policies) {
    auto policy = ParseJson(p.policy_json, 8);
    if (!policy || !policy->is_object()) {
      continue;
    }
    if (auto lead = NotifyLead(*policy)) {
      out[AsciiLower(p.vault) + "/" + AsciiLower(p.name)] = *lead;
    }
  }
  return out;
}

StatusOr<KeyService::Opened> KeyService::Open(const Vault& vault, const std::string& name,
                                              const std::string& version) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  if (!version.empty()) {
    RETURN_IF_ERROR(ValidateVersion(version));
  }
  std::string cache_key = CacheKey(vault->record.name, name, version);
  uint64_t generation = 0;
  if (std::optional<Opened> cached = Cached(vault, cache_key, &generation)) {
    return *std::move(cached);
  }
  auto view = store_.GetObject(kKind, vault->record.name, name, AsciiLower(version), false);
  if (!view.ok()) {
    return InKeyVaultWords(view.status(), kKind, name, false);
  }
  ASSIGN_OR_RETURN(std::string der, Envelope::OpenKeyMaterial(
                                        vault->data_key, vault->record.name, view->version.name,
                                        view->version.version, view->version.sealed_value));
  auto key = crypto::AsymKey::FromPrivateDer(der);
  crypto::SecureWipe(der);
  RETURN_IF_ERROR(key.status());
  Opened opened{*std::move(view), std::shared_ptr<const crypto::AsymKey>(std::move(key).value())};
  opened.view.version.sealed_value.clear();
  if (auto jwk = ParseJson(opened.view.version.key_json, 4); jwk && jwk->is_object()) {
    for (KeyOperation op : {KeyOperation::kEncrypt, KeyOperation::kDecrypt, KeyOperation::kWrapKey,
                            KeyOperation::kUnwrapKey, KeyOperation::kSign, KeyOperation::kVerify}) {
      if (HasOp(*jwk, KeyOperationName(op))) {
        opened.permitted |= 1u << static_cast<int>(op);
      }
    }
  }
  if (cache_ttl_seconds_ > 0) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (generation == cache_generation_) {
      if (cache_.size() >= kMaxCacheEntries) {
        cache_.clear();
      }
      cache_[cache_key] = CacheEntry{opened, vault, clock_.NowSeconds()};
    }
  }
  return opened;
}

std::optional<KeyService::Opened> KeyService::Cached(const Vault& vault,
                                                     const std::string& cache_key,
                                                     uint64_t* generation) {
  std::lock_guard<std::mutex> lock(cache_mu_);
  if (generation != nullptr) {
    *generation = cache_generation_;
  }
  auto it = cache_.find(cache_key);
  if (it == cache_.end() || it->second.vault != vault ||
      clock_.NowSeconds() - it->second.fetched >= cache_ttl_seconds_) {
    return std::nullopt;
  }
  return it->second.opened;
}

std::optional<int> KeyService::KeySize(const Vault& vault, const std::string& name,
                                       const std::string& version, bool may_open) {
  if (auto cached = Cached(vault, CacheKey(vault->record.name, name, version))) {
    return cached->key->key_size();
  }
  if (!may_open) {
    return std::nullopt;
  }
  auto opened = Open(vault, name, version);
  if (!opened.ok()) {
    return std::nullopt;
  }
  return opened->key->key_size();
}

StatusOr<KeyOperationResult> KeyService::Operate(const Vault& vault, const std::string& name,
                                                 const std::string& version, KeyOperation op,
                                                 const std::string& alg, const std::string& value,
                                                 const std::string& signature) {
  ASSIGN_OR_RETURN(Opened opened, Open(vault, name, version));
  return Run(opened, op, alg, value, signature);
}

std::optional<StatusOr<KeyOperationResult>> KeyService::OperateCached(
    const Vault& vault, const std::string& name, const std::string& version, KeyOperation op,
    const std::string& alg, const std::string& value, const std::string& signature) {
  if (!ValidateObjectName(name).ok() || (!version.empty() && !ValidateVersion(version).ok())) {
    return std::nullopt;  // the worker answers with the error
  }
  std::optional<Opened> opened = Cached(vault, CacheKey(vault->record.name, name, version));
  if (!opened) {
    return std::nullopt;
  }
  // A private-key operation with an RSA key above 2048 bits takes a
  // millisecond or more (4096 bits: several): it runs on a worker, not on
  // the thread serving connections. RSA-2048's (about 0.3 ms) costs less
  // than the TLS handshake those threads already do.
  bool rsa_private =
      opened->key->key_size() > kMaxFastRsaBits &&
      (op == KeyOperation::kDecrypt || op == KeyOperation::kUnwrapKey || op == KeyOperation::kSign);
  if (rsa_private) {
    return std::nullopt;
  }
  return Run(*opened, op, alg, value, signature);
}

StatusOr<KeyOperationResult> KeyService::Run(const Opened& opened, KeyOperation op,
                                             const std::string& alg, const std::string& value,
                                             const std::string& signature) const {
  const storage::SecretVersionRecord& rec = opened.view.version;
  const std::string op_name(KeyOperationName(op));
  if (!rec.enabled) {
    return PermissionDeniedError("Operation " + op_name + " is not allowed on a disabled key.",
                                 "Forbidden");
  }
  if ((opened.permitted & (1u << static_cast<int>(op))) == 0) {
    return PermissionDeniedError("Operation " + op_name + " is not permitted on this key.",
                                 "Forbidden/KeyOperationForbidden");
  }
  // Key Vault's date-time controls bind the operations that make
  // something new; decrypt, unwrap and verify stay allowed so that what
  // was protected while the key was valid can still be opened and checked.
  bool timed =
      op == KeyOperation::kEncrypt || op == KeyOperation::kWrapKey || op == KeyOperation::kSign;
  int64_t now = clock_.NowSeconds();
  if (timed && rec.nbf && now < *rec.nbf) {
    return PermissionDeniedError("Operation " + op_name + " is not allowed before the key's nbf.",
                                 "Forbidden");
  }
  if (timed && rec.exp && now >= *rec.exp) {
    return PermissionDeniedError("Operation " + op_name + " is not allowed on an expired key.",
                                 "Forbidden");
  }
  KeyOperationResult out;
  out.kid_version = rec.version;
  const crypto::AsymKey& key = *opened.key;
  switch (op) {
    case KeyOperation::kEncrypt:
    case KeyOperation::kWrapKey: {
      ASSIGN_OR_RETURN(out.value, key.Encrypt(alg, value));
      break;
    }
    case KeyOperation::kDecrypt:
    case KeyOperation::kUnwrapKey: {
      ASSIGN_OR_RETURN(crypto::SecureBytes plain, key.Decrypt(alg, value));
      out.value.assign(plain.view());
      break;
    }
    case KeyOperation::kSign: {
      ASSIGN_OR_RETURN(out.value, key.Sign(alg, value));
      break;
    }
    case KeyOperation::kVerify: {
      ASSIGN_OR_RETURN(out.verified, key.Verify(alg, value, signature));
      break;
    }
  }
  return out;
}

}  // namespace coffer::keyvault
