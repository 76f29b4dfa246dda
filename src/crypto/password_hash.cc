#include "crypto/password_hash.h"

#include <sodium.h>

#include <mutex>

#include "common/strings.h"

namespace coffer::crypto {
namespace {

// libsodium is initialised once per process; it is thread-safe afterwards.
bool SodiumReady() {
  static const bool ready = sodium_init() >= 0;
  return ready;
}

}  // namespace

PasswordHashCost InteractiveCost() {
  return {crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE, crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE};
}

PasswordHashCost LeastCost() {
  return {crypto_pwhash_argon2id_OPSLIMIT_MIN, crypto_pwhash_argon2id_MEMLIMIT_MIN};
}

StatusOr<std::string> HashPassword(std::string_view password, const PasswordHashCost& cost) {
  if (password.empty() || password.size() > kMaxPasswordBytes) {
    return InvalidArgumentError("a password is 1 to " + std::to_string(kMaxPasswordBytes) +
                                " bytes");
  }
  if (!SodiumReady()) {
    return InternalError("libsodium could not be initialised");
  }
  char out[crypto_pwhash_argon2id_STRBYTES] = {};
  if (crypto_pwhash_argon2id_str(out, password.data(), password.size(), cost.passes,
                                 cost.memory_bytes) != 0) {
    return InternalError("hashing a password failed (out of memory)");
  }
  return std::string(out);
}

StatusOr<bool> VerifyPassword(std::string_view encoded, std::string_view password) {
  if (!StartsWith(encoded, "$argon2id$") || encoded.size() >= crypto_pwhash_argon2id_STRBYTES ||
      encoded.find('\0') != std::string_view::npos) {
    return InvalidArgumentError("not an Argon2id password hash");
  }
  if (password.size() > kMaxPasswordBytes) {
    return false;
  }
  if (!SodiumReady()) {
    return InternalError("libsodium could not be initialised");
  }
  // libsodium reads the hash up to its NUL.
  const std::string str(encoded);
  return crypto_pwhash_argon2id_str_verify(str.c_str(), password.data(), password.size()) == 0;
}

bool NeedsRehash(std::string_view encoded, const PasswordHashCost& cost) {
  if (encoded.size() >= crypto_pwhash_argon2id_STRBYTES || !SodiumReady()) {
    return true;
  }
  const std::string str(encoded);
  return crypto_pwhash_argon2id_str_needs_rehash(str.c_str(), cost.passes, cost.memory_bytes) != 0;
}

}  // namespace coffer::crypto
