#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "keyvault/envelope.h"
#include "keyvault/vault_registry.h"
#include "storage/store.h"

namespace coffer::keyvault {

// Key Vault's limits for secrets (anchors §1.2).
inline constexpr size_t kMaxSecretValueBytes = 25 * 1024;
inline constexpr size_t kMaxContentTypeChars = 255;
inline constexpr size_t kMaxTags = 15;
inline constexpr size_t kMaxTagChars = 512;
inline constexpr int kMaxBackupVersions = 500;

struct SecretInput {
  std::string value;
  std::string content_type;
  std::string tags_json = "{}";
  bool enabled = true;
  std::optional<int64_t> nbf;
  std::optional<int64_t> exp;
};

// SecretPatch: absent fields stay as they are. For nbf/exp an inner nullopt
// clears the attribute.
struct SecretPatch {
  std::optional<std::string> content_type;
  std::optional<std::string> tags_json;
  std::optional<bool> enabled;
  std::optional<std::optional<int64_t>> nbf;
  std::optional<std::optional<int64_t>> exp;
};

// Sets what a patch (SecretPatch, KeyPatch) gives of the attributes secrets
// and keys share (tags, enabled, nbf, exp), and `updated`.
template <typename Patch>
void ApplyCommonPatch(const Patch& patch, int64_t now, storage::SecretVersionRecord& rec) {
  if (patch.tags_json) {
    rec.tags_json = *patch.tags_json;
  }
  if (patch.enabled) {
    rec.enabled = *patch.enabled;
  }
  if (patch.nbf) {
    rec.nbf = *patch.nbf;
  }
  if (patch.exp) {
    rec.exp = *patch.exp;
  }
  rec.updated = now;
}

struct Secret {
  storage::SecretVersionRecord record;  // sealed_value is always empty here
  std::optional<std::string> value;     // set only by Set and Get
  bool deleted = false;
  int64_t deleted_date = 0;
  int64_t scheduled_purge_date = 0;
  int recoverable_days = 0;
  std::string recovery_level;
  // The secret of a certificate (Key Vault's managed secret): read-only
  // through the secrets API, and its bundle names the certificate's key.
  bool managed = false;
};

struct SecretList {
  std::vector<Secret> items;
  std::string next_cursor;  // empty on the last page
};

// SecretService implements the Key Vault secrets operations on top of a
// Store: validation, versioning, envelope encryption, soft delete with
// retention and purge protection, backup and restore. Authorization is the
// caller's job. Errors carry Key Vault's codes as reasons ("SecretNotFound",
// "BadParameter", "Conflict", "Forbidden").
//
// Reads are cached in memory (values stay sealed there) for at most
// `cache_ttl_seconds`; every write through this service invalidates the
// secret's entries at once, so the TTL only bounds how long a change made by
// another server replica can go unseen. While the store is unavailable
// (kUnavailable: the database cannot be reached), Get answers from an entry
// read at most `stale_seconds` ago rather than fail (0: never).
//
// Thread-safe. The referenced objects must outlive it.
class SecretService {
 public:
  SecretService(storage::Store& store, const Envelope& envelope, const Clock& clock,
                int64_t cache_ttl_seconds = 5, int64_t stale_seconds = 0);

  // `vault` is the open vault the request resolved once (VaultRegistry);
  // every call acts on it.
  using Vault = std::shared_ptr<const OpenVault>;

  StatusOr<Secret> Set(const Vault& vault, const std::string& name, SecretInput input);
  // `version` empty means the latest. A disabled version is kPermissionDenied.
  StatusOr<Secret> Get(const Vault& vault, const std::string& name, const std::string& version);
  // TryGetCached answers Get from memory without blocking, or returns
  // nullopt when the answer is not cached. Once an entry is older than the
  // TTL, the first caller gets nullopt and is to refresh it with Get; for
  // the next two seconds the others are answered from the expired entry, so
  // that an expiry under load sends one read to the store, not one per
  // request.
  std::optional<StatusOr<Secret>> TryGetCached(const Vault& vault, const std::string& name,
                                               const std::string& version);
  StatusOr<Secret> Update(const Vault& vault, const std::string& name, const std::string& version,
                          const SecretPatch& patch);
  StatusOr<SecretList> List(const Vault& vault, const std::string& cursor, int limit);
  StatusOr<SecretList> ListVersions(const Vault& vault, const std::string& name,
                                    const std::string& cursor, int limit);
  StatusOr<Secret> Delete(const Vault& vault, const std::string& name);
  StatusOr<Secret> GetDeleted(const Vault& vault, const std::string& name);
  StatusOr<SecretList> ListDeleted(const Vault& vault, const std::string& cursor, int limit);
  StatusOr<Secret> Recover(const Vault& vault, const std::string& name);
  // kPermissionDenied while purge protection holds the secret.
  Status Purge(const Vault& vault, const std::string& name);
  // Backup returns an encrypted, authenticated blob of every version.
  StatusOr<std::string> Backup(const Vault& vault, const std::string& name);
  // Restore recreates a secret from a blob made by Backup on this
  // installation. kAlreadyExists (reason "Conflict") if the name is in use.
  StatusOr<Secret> Restore(const Vault& vault, const std::string& blob);
  // PurgeExpired removes soft-deleted secrets whose retention has ended.
  StatusOr<int> PurgeExpired();

  // Invalidate drops the cached versions of one secret (any case), for a
  // change another server made; this service drops its own at once.
  void Invalidate(const std::string& vault, const std::string& name);
  void InvalidateAll();

 private:
  Secret FromView(const storage::SecretView& view, const OpenVault& vault) const;
  // FromCache answers Get from an entry read less than `max_age_seconds`
  // ago, or returns nullopt.
  std::optional<StatusOr<Secret>> FromCache(const Vault& vault, const std::string& name,
                                            const std::string& version, int64_t max_age_seconds);
  // ListPage lists live or soft-deleted secrets.
  StatusOr<SecretList> ListPage(const Vault& vault, bool deleted, const std::string& cursor,
                                int limit);
  // Finish turns a stored version into Get's answer: refuses disabled
  // versions and opens the value.
  StatusOr<Secret> Finish(const storage::SecretView& view, const OpenVault& vault) const;
  static std::string CacheKey(const std::string& vault, const std::string& name,
                              const std::string& version);
  struct CacheEntry {
    storage::SecretView view;
    // The vault as it was when read; a recreated vault never matches.
    std::shared_ptr<const OpenVault> vault;
    int64_t fetched = 0;
    // When a caller of TryGetCached took on refreshing the expired entry
    // (0: nobody has).
    int64_t refresh_claimed = 0;
  };

  storage::Store& store_;
  const Envelope& envelope_;
  const Clock& clock_;
  const int64_t cache_ttl_seconds_;
  const int64_t stale_seconds_;

  std::mutex cache_mu_;
  std::map<std::string, CacheEntry> cache_;  // guarded by cache_mu_
  // Bumped by every invalidation, so a read that started before a write
  // cannot put its stale result into the cache afterwards.
  uint64_t cache_generation_ = 0;  // guarded by cache_mu_
};

// ValidateTags checks a tags object (JSON text): at most 15 string values,
// names and values at most 512 characters. kInvalidArgument otherwise.
Status ValidateTagsJson(const std::string& tags_json);

}  // namespace coffer::keyvault
