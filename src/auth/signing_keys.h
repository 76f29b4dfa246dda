#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/json.h"
#include "common/status.h"
#include "crypto/rsa_key.h"
#include "storage/store.h"

namespace coffer::auth {

// SigningKeySet holds the token service's RS256 keys: the current key, which
// signs, and the previous one, which still verifies tokens issued before a
// rotation. Both are published in the JWKS.
//
// The set lives in the store's metadata under kMetaKey, sealed with
// AES-256-GCM under a key derived from the master key (docs/encryption.md),
// so every server sharing the store signs and verifies with the same keys.
// A server learns of another's rotation through Reload (called on the
// store's change notification and periodically) and, for a token naming a
// key it does not know yet, through FindOrReload.
//
// Thread-safe. The store and the clock must outlive the set.
class SigningKeySet {
 public:
  // The metadata key of the sealed set (docs/storage.md).
  static constexpr char kMetaKey[] = "signing_keys";
  // FindOrReload reads the store at most once per this interval.
  static constexpr int64_t kReloadIntervalMicros = 1000000;

  // SealingKeyFor derives the set's 32-byte sealing key from the master key.
  static std::string SealingKeyFor(std::string_view master_key);

  // Open loads the set the store holds. When it holds none, the set is the
  // PEM files of `legacy_dir` (signing-current.pem, signing-previous.pem:
  // where servers kept their keys before, so an installation keeps its kid
  // and its tokens stay valid) when they exist, else a fresh key; it is
  // stored with a compare-and-set (Store::UpdateMeta), so servers starting
  // together agree on one set: the first stored wins. The files are only
  // read, and only then; they are never written.
  // `sealing_key` is SealingKeyFor(master key).
  // kDataLoss if the stored set does not open (another master key, altered
  // or garbled bytes) or a key file is corrupt; kUnavailable if the
  // directory cannot be read; the store's errors otherwise.
  static StatusOr<std::unique_ptr<SigningKeySet>> Open(storage::Store& store,
                                                       std::string sealing_key,
                                                       const std::string& legacy_dir,
                                                       const Clock& clock);
  // ForTest makes an in-memory set with a fresh key (no store).
  static std::unique_ptr<SigningKeySet> ForTest();

  ~SigningKeySet();

  // Sign makes a compact JWS (header {"alg":"RS256","typ":"JWT","kid"}) over
  // `payload` with the current key.
  std::string Sign(const Json& payload) const;
  // Find returns the key for `kid`, or nullptr. The returned key stays valid
  // as long as the caller holds it.
  std::shared_ptr<const crypto::RsaKey> Find(const std::string& kid) const;
  // FindOrReload is Find, but when no key has `kid` it first reloads the set
  // from the store (another server may have rotated) and looks again.
  // SECURITY: at most one such reload per kReloadIntervalMicros for the
  // whole set, whatever kids are asked for, so that tokens naming made-up
  // kids cannot turn into a database read each. A reload that fails leaves
  // the set as it was (logged); the caller sees nullptr.
  std::shared_ptr<const crypto::RsaKey> FindOrReload(const std::string& kid);
  // Jwks returns {"keys":[...]} with every verifying key.
  Json Jwks() const;
  std::string current_kid() const;

  // Reload makes the store's set this one's. OK and nothing changes when the
  // stored set is the one held. kDataLoss if it does not open (the held set
  // is kept); the store's errors.
  Status Reload();
  // Rotate makes a new current key; the store's current one becomes
  // previous and the old previous is dropped. Stored (compare-and-set on the
  // store's set, so a rotation elsewhere is never lost) before returning.
  Status Rotate();

  // OnRetired registers `fn`, called after Reload or Rotate dropped a key
  // this set held, so that what was verified with it can be forgotten.
  // Called on the thread that reloaded; set it before the set is shared.
  void OnRetired(std::function<void()> fn) { on_retired_ = std::move(fn); }

 private:
  struct Entry {
    std::string kid;
    std::shared_ptr<const crypto::RsaKey> key;
  };
  SigningKeySet() = default;
  static std::string KidFor(const crypto::RsaKey& key);
  // Opens `sealed` and makes it the held set; REQUIRES update_mu_ held.
  Status InstallLocked(const std::string& sealed);
  Status ReloadLocked();

  storage::Store* store_ = nullptr;  // null: in memory only (ForTest)
  const Clock* clock_ = nullptr;
  std::string sealing_key_;
  std::function<void()> on_retired_;

  // Serializes reloads and rotations, so that an older set read from the
  // store is never installed over a newer one.
  std::mutex update_mu_;
  std::string installed_;              // the sealed value held; guarded by update_mu_
  int64_t last_lookup_reload_us_ = 0;  // FindOrReload's last read; guarded by update_mu_
  bool looked_up_ = false;             // guarded by update_mu_

  mutable std::mutex mu_;
  Entry current_;                // guarded by mu_
  std::vector<Entry> previous_;  // guarded by mu_
};

}  // namespace coffer::auth
