#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/json.h"
#include "common/status.h"
#include "crypto/asym_key.h"
#include "keyvault/envelope.h"
#include "keyvault/vault_registry.h"
#include "storage/store.h"

namespace coffer::keyvault {

// What a new key is made of (POST /keys/{name}/create).
struct KeyCreateInput {
  std::string kty;                         // "RSA", "EC" (the "-HSM" forms are refused)
  int key_size = 0;                        // RSA: 2048 (default), 3072, 4096
  std::optional<int64_t> public_exponent;  // RSA: 65537 only
  std::string crv;                         // EC: P-256 (default), P-384, P-521, P-256K
  std::optional<std::vector<std::string>> key_ops;
  std::string tags_json = "{}";
  bool enabled = true;
  std::optional<int64_t> nbf;
  std::optional<int64_t> exp;
  bool exportable = false;          // refused: no key release here
  bool has_release_policy = false;  // refused: no attestation service
};

// An imported key (PUT /keys/{name}): a private JWK and the same settings.
struct KeyImportInput {
  Json jwk;
  bool hsm = false;
  std::string tags_json = "{}";
  bool enabled = true;
  std::optional<int64_t> nbf;
  std::optional<int64_t> exp;
  bool exportable = false;
  bool has_release_policy = false;
};

// KeyPatch: absent fields stay as they are; for nbf/exp an inner nullopt
// clears the attribute.
struct KeyPatch {
  std::optional<std::vector<std::string>> key_ops;
  std::optional<std::string> tags_json;
  std::optional<bool> enabled;
  std::optional<std::optional<int64_t>> nbf;
  std::optional<std::optional<int64_t>> exp;
  bool has_release_policy = false;
};

// A key as reads and lists show it: never its private half.
struct Key {
  storage::SecretVersionRecord record;  // sealed_value is always empty here
  Json jwk;                             // the public JWK with key_ops, without kid
  bool deleted = false;
  int64_t deleted_date = 0;
  int64_t scheduled_purge_date = 0;
  int recoverable_days = 0;
  std::string recovery_level;
  bool managed = false;  // a certificate's key: read-only through the keys API
};

struct KeyList {
  std::vector<Key> items;
  std::string next_cursor;  // empty on the last page
};

// The cryptographic operations on a key version.
enum class KeyOperation { kEncrypt, kDecrypt, kWrapKey, kUnwrapKey, kSign, kVerify };

// The key_ops name of an operation ("wrapKey").
std::string_view KeyOperationName(KeyOperation op);

struct KeyOperationResult {
  std::string kid_version;  // the version that did it
  std::string value;        // ciphertext, plaintext or signature (raw bytes)
  bool verified = false;    // kVerify only
};

// KeyService implements the Key Vault keys operations (docs/keys.md) on top
// of a Store: creation and import of RSA and EC keys, versions, attributes,
// soft delete with the vault's retention and purge protection, backup and
// restore, rotation, and the cryptographic operations, each checked against
// the key's enabled flag, its key_ops and its nbf/exp window as Key Vault
// checks them. Authorization is the caller's job. Errors carry Key Vault's
// codes as reasons ("KeyNotFound", "BadParameter", "Conflict", "Forbidden").
//
// SECURITY: the private half is sealed under the vault's data key at rest
// (Envelope::SealKeyMaterial); in memory it lives only inside the opened
// keys of the operation cache (bounded, dropped on every change), and
// temporary copies are wiped. Nothing here logs or returns it.
//
// Thread-safe. The referenced objects must outlive it.
class KeyService {
 public:
  using Vault = std::shared_ptr<const OpenVault>;

  KeyService(storage::Store& store, const Envelope& envelope, const Clock& clock,
             int64_t cache_ttl_seconds = 5);

  StatusOr<Key> Create(const Vault& vault, const std::string& name, const KeyCreateInput& input);
  StatusOr<Key> Import(const Vault& vault, const std::string& name, const KeyImportInput& input);
  // `version` empty means the latest. A disabled key is returned (Key
  // Vault answers 200 with enabled:false); its operations are refused.
  StatusOr<Key> Get(const Vault& vault, const std::string& name, const std::string& version);
  StatusOr<Key> Update(const Vault& vault, const std::string& name, const std::string& version,
                       const KeyPatch& patch);
  StatusOr<KeyList> List(const Vault& vault, const std::string& cursor, int limit);
  StatusOr<KeyList> ListVersions(const Vault& vault, const std::string& name,
                                 const std::string& cursor, int limit);
  StatusOr<Key> Delete(const Vault& vault, const std::string& name);
  StatusOr<Key> GetDeleted(const Vault& vault, const std::string& name);
  StatusOr<KeyList> ListDeleted(const Vault& vault, const std::string& cursor, int limit);
  StatusOr<Key> Recover(const Vault& vault, const std::string& name);
  // kPermissionDenied while purge protection holds the key.
  Status Purge(const Vault& vault, const std::string& name);
  // Backup returns an encrypted, authenticated blob of every version.
  StatusOr<std::string> Backup(const Vault& vault, const std::string& name);
  // Restore recreates a key from a blob made by Backup on this
  // installation, with its versions, attributes and timestamps.
  StatusOr<Key> Restore(const Vault& vault, const std::string& blob);
  // Rotate makes a new version with new material of the same type, size
  // or curve, and the latest version's key_ops, tags and enabled flag.
  // The new version's exp is set by the rotation policy's expiryTime.
  StatusOr<Key> Rotate(const Vault& vault, const std::string& name);

  // The key's rotation policy (rotation_policy.h), or the default one when
  // it has none. kNotFound (KeyNotFound) without a live key.
  StatusOr<Json> GetRotationPolicy(const Vault& vault, const std::string& name);
  // Replaces the policy with `body`, validated; returns the stored policy.
  StatusOr<Json> SetRotationPolicy(const Vault& vault, const std::string& name, const Json& body);
  // RotateDue rotates every key whose policy's Rotate action is due now
  // (the leader's scheduled work); returns how many it rotated. One key's
  // failure is logged and does not stop the others.
  StatusOr<int> RotateDue(VaultRegistry& registry);
  // How long before expiry each key with a rotation policy is near expiry
  // (its Notify action's timeBeforeExpiry), in seconds, by
  // "<vault>/<name>" in lower case (events::ExpiryScheduler).
  StatusOr<std::map<std::string, int64_t>> NoticeLeads();

  // Operate runs one cryptographic operation with a version of the key
  // (`version` empty: the latest). `value` is the plaintext, ciphertext or
  // digest; `signature` is for kVerify. kPermissionDenied (Forbidden) when
  // the key is disabled, its key_ops lack the operation, or (encrypt, wrap,
  // sign) the time is outside its nbf/exp; kInvalidArgument (BadParameter)
  // for an algorithm or input the key cannot take.
  StatusOr<KeyOperationResult> Operate(const Vault& vault, const std::string& name,
                                       const std::string& version, KeyOperation op,
                                       const std::string& alg, const std::string& value,
                                       const std::string& signature = "");

  // OperateCached is Operate for the I/O thread's fast path: it answers only
  // from a key version already opened and cached, and only the operations
  // that cost no more than a TLS handshake (EC keys; RSA public-key
  // operations; private-key ones up to 2048 bits), so that it never blocks
  // nor holds the thread for long.
  // nullopt: not answered here; call Operate.
  std::optional<StatusOr<KeyOperationResult>> OperateCached(
      const Vault& vault, const std::string& name, const std::string& version, KeyOperation op,
      const std::string& alg, const std::string& value, const std::string& signature = "");

  // SealedVersion is the stored form of version `version` of key `name`
  // holding `key`: the private half sealed, the public JWK with `key_ops`.
  // The caller sets the attributes and writes it (a certificate's key).
  static storage::SecretVersionRecord SealedVersion(const OpenVault& vault, const std::string& name,
                                                    const std::string& version,
                                                    const crypto::AsymKey& key,
                                                    std::vector<std::string> key_ops);

  // KeySize is the RSA modulus size of key `name` (`version`; "" for the
  // latest), 0 for an EC key, for the weight of an operation against the
  // service limits: from the cache, or with `may_open` by opening the
  // version as the operation is about to (the operation then finds it
  // cached); nullopt when it cannot tell without opening, or the key cannot
  // be opened (the operation reports why).
  std::optional<int> KeySize(const Vault& vault, const std::string& name,
                             const std::string& version, bool may_open);

  // Invalidate drops what is cached of one key (any case), for a change
  // another server made; this service drops its own at once.
  void Invalidate(const std::string& vault, const std::string& name);
  void InvalidateAll();

 private:
  Key FromView(const storage::SecretView& view, const OpenVault& vault) const;
  // Store adds a new version holding `key`, with `key_ops` and the rest of
  // `rec` as given.
  StatusOr<Key> Store(const Vault& vault, const std::string& name, const crypto::AsymKey& key,
                      const std::vector<std::string>& key_ops, storage::SecretVersionRecord rec);
  StatusOr<KeyList> ListPage(const Vault& vault, bool deleted, const std::string& cursor,
                             int limit);
  // The version an operation uses, and the key opened from it.
  struct Opened {
    storage::SecretView view;
    std::shared_ptr<const crypto::AsymKey> key;
    uint32_t permitted = 0;  // bit (1 << KeyOperation) per operation in key_ops
  };
  StatusOr<Opened> Open(const Vault& vault, const std::string& name, const std::string& version);
  // The opened version in the cache, fresh and of this vault snapshot; nullopt
  // when there is none. `generation` (when set) receives the cache's
  // generation as it was read.
  std::optional<Opened> Cached(const Vault& vault, const std::string& cache_key,
                               uint64_t* generation = nullptr);
  // Checks the operation against the version (enabled, key_ops, nbf/exp) and
  // runs it.
  StatusOr<KeyOperationResult> Run(const Opened& opened, KeyOperation op, const std::string& alg,
                                   const std::string& value, const std::string& signature) const;
  static std::string CacheKey(const std::string& vault, const std::string& name,
                              const std::string& version);
  struct CacheEntry {
    Opened opened;
    std::shared_ptr<const OpenVault> vault;
    int64_t fetched = 0;
  };

  storage::Store& store_;
  const Envelope& envelope_;
  const Clock& clock_;
  const int64_t cache_ttl_seconds_;

  std::mutex cache_mu_;
  std::map<std::string, CacheEntry> cache_;  // guarded by cache_mu_
  // Bumped by every invalidation, so that an open that started before a
  // change cannot cache its stale result afterwards.
  uint64_t cache_generation_ = 0;  // guarded by cache_mu_
};

}  // namespace coffer::keyvault
