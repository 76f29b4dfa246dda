#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "crypto/rsa_key.h"

namespace coffer::auth {

// SigningKeySet holds the token service's RS256 keys: the current key, which
// signs, and the previous one, which still verifies tokens issued before a
// rotation. Both are published in the JWKS.
//
// Keys live as PEM files (mode 0600) in one directory.
// Thread-safe.
class SigningKeySet {
 public:
  // LoadOrCreate reads the keys in `dir`, creating a current key on first
  // use. kUnavailable if the directory cannot be read or written,
  // kDataLoss if a key file is corrupt.
  static StatusOr<std::unique_ptr<SigningKeySet>> LoadOrCreate(const std::string& dir);
  // ForTest makes an in-memory set with a fresh key (no files).
  static std::unique_ptr<SigningKeySet> ForTest();

  // Sign makes a compact JWS (header {"alg":"RS256","typ":"JWT","kid"}) over
  // `payload` with the current key.
  std::string Sign(const Json& payload) const;
  // Find returns the key for `kid`, or nullptr. The returned key stays valid
  // for the lifetime of this set.
  std::shared_ptr<const crypto::RsaKey> Find(const std::string& kid) const;
  // Jwks returns {"keys":[...]} with every verifying key.
  Json Jwks() const;
  std::string current_kid() const;

  // Rotate makes a new current key; the current one becomes previous and the
  // old previous is dropped. Persisted before returning.
  Status Rotate();

 private:
  struct Entry {
    std::string kid;
    std::shared_ptr<const crypto::RsaKey> key;
  };
  SigningKeySet() = default;
  static std::string KidFor(const crypto::RsaKey& key);
  Status Persist() const;

  std::string dir_;  // empty: not persisted
  mutable std::mutex mu_;
  Entry current_;                // guarded by mu_
  std::vector<Entry> previous_;  // guarded by mu_
};

}  // namespace coffer::auth
