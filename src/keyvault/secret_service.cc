#include "keyvault/secret_service.h"

#include "common/encoding.h"
#include "common/json.h"
#include "common/strings.h"
#include "crypto/primitives.h"
#include "keyvault/names.h"

namespace coffer::keyvault {
namespace {

constexpr storage::ObjectKind kKind = storage::ObjectKind::kSecret;

Status BadParameter(const std::string& message) {
  return InvalidArgumentError(message, "BadParameter");
}

Status ValidateSecretInput(const SecretInput& in) {
  if (in.value.size() > kMaxSecretValueBytes) {
    return BadParameter("Secret value is too large: the limit is " +
                        std::to_string(kMaxSecretValueBytes) + " bytes.");
  }
  if (in.content_type.size() > kMaxContentTypeChars) {
    return BadParameter("contentType is longer than 255 characters.");
  }
  return ValidateTagsJson(in.tags_json);
}

}  // namespace

Status ValidateTagsJson(const std::string& tags_json) {
  auto tags = ParseJson(tags_json, 2);
  if (!tags || !tags->is_object()) {
    return BadParameter("tags must be an object of string values.");
  }
  if (tags->size() > kMaxTags) {
    return BadParameter("Too many tags: the limit is 15.");
  }
  for (const auto& [k, v] : tags->items()) {
    if (!v.is_string()) {
      return BadParameter("Tag values must be strings.");
    }
    if (k.empty() || k.size() > kMaxTagChars || v.get<std::string>().size() > kMaxTagChars) {
      return BadParameter("Tag names must be 1-512 and values 0-512 characters.");
    }
  }
  return OkStatus();
}

namespace {
constexpr size_t kMaxCacheEntries = 100000;
// How long an expired entry still answers while one caller refreshes it.
constexpr int64_t kRefreshGraceSeconds = 2;
}  // namespace

SecretService::SecretService(storage::Store& store, const Envelope& envelope, const Clock& clock,
                             int64_t cache_ttl_seconds, int64_t stale_seconds)
    : store_(store),
      envelope_(envelope),
      clock_(clock),
      cache_ttl_seconds_(cache_ttl_seconds),
      stale_seconds_(stale_seconds) {}

std::string SecretService::CacheKey(const std::string& vault, const std::string& name,
                                    const std::string& version) {
  return AsciiLower(vault) + '\x1f' + AsciiLower(name) + '\x1f' + AsciiLower(version);
}

void SecretService::Invalidate(const std::string& vault, const std::string& name) {
  std::string prefix = CacheKey(vault, name, "");
  std::lock_guard<std::mutex> lock(cache_mu_);
  ++cache_generation_;
  auto it = cache_.lower_bound(prefix);
  while (it != cache_.end() && it->first.compare(0, prefix.size(), prefix) == 0) {
    it = cache_.erase(it);
  }
}

void SecretService::InvalidateAll() {
  std::lock_guard<std::mutex> lock(cache_mu_);
  ++cache_generation_;
  cache_.clear();
}

StatusOr<Secret> SecretService::Finish(const storage::SecretView& view,
                                       const OpenVault& vault) const {
  if (!view.version.enabled) {
    return PermissionDeniedError("Operation get is not allowed on a disabled secret.", "Forbidden");
  }
  ASSIGN_OR_RETURN(std::string value,
                   Envelope::OpenValue(vault.data_key, vault.record.name, view.version.name,
                                       view.version.version, view.version.sealed_value));
  Secret s = FromView(view, vault);
  s.value = std::move(value);
  return s;
}

std::optional<StatusOr<Secret>> SecretService::TryGetCached(const Vault& vault,
                                                            const std::string& name,
                                                            const std::string& version) {
  storage::SecretView view;
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(CacheKey(vault->record.name, name, version));
    if (it == cache_.end() || it->second.vault != vault) {
      return std::nullopt;
    }
    CacheEntry& entry = it->second;
    int64_t now = clock_.NowSeconds();
    if (now - entry.fetched >= cache_ttl_seconds_) {
      // Expired: the first caller refreshes it (Get); the others are
      // answered from the entry meanwhile, instead of all reading the
      // store at once.
      if (entry.refresh_claimed == 0 || now - entry.refresh_claimed >= kRefreshGraceSeconds) {
        entry.refresh_claimed = now;
        return std::nullopt;
      }
    }
    view = entry.view;
  }
  return Finish(view, *vault);
}

std::optional<StatusOr<Secret>> SecretService::FromCache(const Vault& vault,
                                                         const std::string& name,
                                                         const std::string& version,
                                                         int64_t max_age_seconds) {
  storage::SecretView view;
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(CacheKey(vault->record.name, name, version));
    if (it == cache_.end() || it->second.vault != vault ||
        clock_.NowSeconds() - it->second.fetched >= max_age_seconds) {
      return std::nullopt;
    }
    view = it->second.view;
  }
  return Finish(view, *vault);
}

Secret SecretService::FromView(const storage::SecretView& view, const OpenVault& vault) const {
  Secret s;
  s.record = view.version;
  s.record.sealed_value.clear();
  s.deleted = view.deleted;
  s.deleted_date = view.deleted_date;
  s.scheduled_purge_date = view.scheduled_purge_date;
  s.managed = view.owner == storage::ObjectKind::kCertificate;
  s.recoverable_days = vault.settings.retention_days;
  s.recovery_level = RecoveryLevel(vault.settings);
  return s;
}

StatusOr<Secret> SecretService::Set(const Vault& vault, const std::string& name,
                                    SecretInput input) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  RETURN_IF_ERROR(ValidateSecretInput(input));
  storage::SecretVersionRecord rec;
  rec.name = name;
  rec.version = crypto::RandomHex(16);
  rec.sealed_value =
      Envelope::SealValue(vault->data_key, vault->record.name, name, rec.version, input.value);
  rec.content_type = std::move(input.content_type);
  rec.tags_json = std::move(input.tags_json);
  rec.enabled = input.enabled;
  rec.nbf = input.nbf;
  rec.exp = input.exp;
  rec.created = rec.updated = clock_.NowSeconds();
  auto added = store_.AddSecretVersion(vault->record.name, rec);
  Invalidate(vault->record.name, name);
  if (added.status().code() == StatusCode::kFailedPrecondition) {
    return FailedPreconditionError(
        "Secret " + name +
            " is currently in a deleted but recoverable state, and its name cannot be reused; "
            "in this state, the secret can only be recovered or purged.",
        "Conflict");
  }
  RETURN_IF_ERROR(added.status());
  // The stored name keeps the case of the secret's first version.
  rec.name = std::move(added).value();
  Secret s = FromView(storage::SecretView{std::move(rec), false, 0, 0, std::nullopt}, *vault);
  s.value = std::move(input.value);
  return s;
}

StatusOr<Secret> SecretService::Get(const Vault& vault, const std::string& name,
                                    const std::string& version) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  if (!version.empty()) {
    RETURN_IF_ERROR(ValidateVersion(version));
  }
  uint64_t generation = 0;
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    generation = cache_generation_;
  }
  auto view = store_.GetSecret(vault->record.name, name, AsciiLower(version), false);
  if (!view.ok()) {
    if (view.status().code() == StatusCode::kNotFound) {
      return ObjectNotFound(kKind, version.empty() ? name : name + "/" + version);
    }
    if (view.status().code() == StatusCode::kUnavailable) {
      // The database cannot be reached: what this server read before is
      // the best answer it has (SECURITY: docs/ha.md bounds how long).
      if (auto cached = FromCache(vault, name, version, stale_seconds_)) {
        return *std::move(cached);
      }
    }
    return view.status();
  }
  if (cache_ttl_seconds_ > 0) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (generation == cache_generation_) {
      if (cache_.size() >= kMaxCacheEntries) {
        cache_.clear();
      }
      cache_[CacheKey(vault->record.name, name, version)] =
          CacheEntry{*view, vault, clock_.NowSeconds(), 0};
    }
  }
  return Finish(*view, *vault);
}

StatusOr<Secret> SecretService::Update(const Vault& vault, const std::string& name,
                                       const std::string& version, const SecretPatch& patch) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  if (!version.empty()) {
    RETURN_IF_ERROR(ValidateVersion(version));
  }
  if (patch.content_type && patch.content_type->size() > kMaxContentTypeChars) {
    return BadParameter("contentType is longer than 255 characters.");
  }
  if (patch.tags_json) {
    RETURN_IF_ERROR(ValidateTagsJson(*patch.tags_json));
  }
  const int64_t now = clock_.NowSeconds();
  auto view = store_.UpdateSecretVersion(vault->record.name, name, AsciiLower(version),
                                         [&](storage::SecretVersionRecord& rec) -> Status {
                                           if (patch.content_type) {
                                             rec.content_type = *patch.content_type;
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

StatusOr<SecretList> SecretService::ListPage(const Vault& vault, bool deleted,
                                             const std::string& cursor, int limit) {
  ASSIGN_OR_RETURN(storage::SecretPage page,
                   store_.ListSecrets(vault->record.name, deleted, cursor, limit));
  SecretList out;
  for (const auto& item : page.items) {
    out.items.push_back(FromView(item, *vault));
  }
  out.next_cursor = std::move(page.next_cursor);
  return out;
}

StatusOr<SecretList> SecretService::List(const Vault& vault, const std::string& cursor, int limit) {
  return ListPage(vault, false, cursor, limit);
}

StatusOr<SecretList> SecretService::ListVersions(const Vault& vault, const std::string& name,
                                                 const std::string& cursor, int limit) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  auto page = store_.ListSecretVersions(vault->record.name, name, cursor, limit);
  if (!page.ok()) {
    return InKeyVaultWords(page.status(), kKind, name, false);
  }
  SecretList out;
  for (const auto& rec : page->items) {
    out.items.push_back(FromView(storage::SecretView{rec, false, 0, 0, std::nullopt}, *vault));
  }
  out.next_cursor = std::move(page->next_cursor);
  return out;
}

StatusOr<Secret> SecretService::Delete(const Vault& vault, const std::string& name) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  int64_t now = clock_.NowSeconds();
  int64_t purge_at = now + int64_t{vault->settings.retention_days} * 86400;
  Status marked = store_.MarkSecretDeleted(vault->record.name, name, now, purge_at);
  Invalidate(vault->record.name, name);
  if (!marked.ok()) {
    return InKeyVaultWords(marked, kKind, name, false);
  }
  ASSIGN_OR_RETURN(storage::SecretView view, store_.GetSecret(vault->record.name, name, "", true));
  return FromView(view, *vault);
}

StatusOr<Secret> SecretService::GetDeleted(const Vault& vault, const std::string& name) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  ASSIGN_OR_RETURN(storage::SecretView view,
                   FindDeletedObject(store_, kKind, vault->record.name, name));
  return FromView(view, *vault);
}

StatusOr<SecretList> SecretService::ListDeleted(const Vault& vault, const std::string& cursor,
                                                int limit) {
  return ListPage(vault, true, cursor, limit);
}

StatusOr<Secret> SecretService::Recover(const Vault& vault, const std::string& name) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  Status recovered = store_.RecoverSecret(vault->record.name, name);
  Invalidate(vault->record.name, name);
  if (!recovered.ok()) {
    return InKeyVaultWords(recovered, kKind, name, true);
  }
  ASSIGN_OR_RETURN(storage::SecretView view, store_.GetSecret(vault->record.name, name, "", false));
  return FromView(view, *vault);
}

Status SecretService::Purge(const Vault& vault, const std::string& name) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  RETURN_IF_ERROR(FindDeletedObject(store_, kKind, vault->record.name, name).status());
  // SECURITY: purge protection is absolute until the retention period ends;
  // only the scheduled purge removes the secret earlier than that.
  if (vault->settings.purge_protection) {
    return PermissionDeniedError(
        "Operation \"purge\" is not allowed because purge protection is enabled for this "
        "vault. The secret will be purged automatically on its scheduled purge date.",
        "Forbidden");
  }
  Status purged = store_.PurgeSecret(vault->record.name, name);
  Invalidate(vault->record.name, name);
  return InKeyVaultWords(purged, kKind, name, true);
}

StatusOr<std::string> SecretService::Backup(const Vault& vault, const std::string& name) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  auto versions = store_.GetAllSecretVersions(vault->record.name, name);
  if (!versions.ok()) {
    return InKeyVaultWords(versions.status(), kKind, name, false);
  }
  if (versions->size() > static_cast<size_t>(kMaxBackupVersions)) {
    return BadParameter("Backup is not allowed for a secret with more than 500 versions.");
  }
  Json doc = {{"format", "coffer-secret-backup"}, {"v", 1}, {"versions", Json::array()}};
  for (const auto& rec : *versions) {
    ASSIGN_OR_RETURN(std::string value,
                     Envelope::OpenValue(vault->data_key, vault->record.name, rec.name, rec.version,
                                         rec.sealed_value));
    Json v = {{"name", rec.name},
              {"version", rec.version},
              {"value", Base64Encode(value)},
              {"contentType", rec.content_type},
              {"tags", rec.tags_json},
              {"enabled", rec.enabled},
              {"created", rec.created},
              {"updated", rec.updated}};
    if (rec.nbf)
      v["nbf"] = *rec.nbf;
    if (rec.exp)
      v["exp"] = *rec.exp;
    crypto::SecureWipe(value);
    doc["versions"].push_back(std::move(v));
  }
  std::string plain = ToJson(doc);
  std::string blob = envelope_.SealBackup(plain);
  crypto::SecureWipe(plain);
  return blob;
}

StatusOr<Secret> SecretService::Restore(const Vault& vault, const std::string& blob) {
  ASSIGN_OR_RETURN(std::string plain, envelope_.OpenBackup(blob));
  auto doc = ParseJson(plain, 8);
  crypto::SecureWipe(plain);
  if (!doc || !doc->is_object() || doc->value("format", "") != "coffer-secret-backup" ||
      !doc->contains("versions") || !(*doc)["versions"].is_array() || (*doc)["versions"].empty()) {
    return BadParameter("backup blob has an unknown format");
  }
  std::vector<storage::SecretVersionRecord> records;
  for (const auto& v : (*doc)["versions"]) {
    storage::SecretVersionRecord rec;
    if (!v.is_object() || !v.value("name", Json()).is_string() ||
        !v.value("version", Json()).is_string() || !v.value("value", Json()).is_string()) {
      return BadParameter("backup blob has an unknown format");
    }
    rec.name = v["name"].get<std::string>();
    rec.version = v["version"].get<std::string>();
    RETURN_IF_ERROR(ValidateObjectName(rec.name));
    RETURN_IF_ERROR(ValidateVersion(rec.version));
    auto value = Base64Decode(v["value"].get<std::string>());
    if (!value) {
      return BadParameter("backup blob has an unknown format");
    }
    rec.sealed_value =
        Envelope::SealValue(vault->data_key, vault->record.name, rec.name, rec.version, *value);
    crypto::SecureWipe(*value);
    rec.content_type = v.value("contentType", "");
    rec.tags_json = v.value("tags", "{}");
    RETURN_IF_ERROR(ValidateTagsJson(rec.tags_json));
    rec.enabled = v.value("enabled", true);
    rec.created = v.value("created", int64_t{0});
    rec.updated = v.value("updated", int64_t{0});
    if (v.contains("nbf") && v["nbf"].is_number_integer())
      rec.nbf = v["nbf"].get<int64_t>();
    if (v.contains("exp") && v["exp"].is_number_integer())
      rec.exp = v["exp"].get<int64_t>();
    records.push_back(std::move(rec));
  }
  const std::string name = records.back().name;
  Status restored = store_.RestoreSecret(vault->record.name, records);
  Invalidate(vault->record.name, name);
  if (restored.code() == StatusCode::kAlreadyExists) {
    return AlreadyExistsError("Secret " + name + " already exists.", "Conflict");
  }
  RETURN_IF_ERROR(restored);
  ASSIGN_OR_RETURN(storage::SecretView view, store_.GetSecret(vault->record.name, name, "", false));
  return FromView(view, *vault);
}

StatusOr<int> SecretService::PurgeExpired() {
  auto purged = store_.PurgeExpiredObjects(clock_.NowSeconds());
  InvalidateAll();
  return purged;
}

}  // namespace coffer::keyvault
