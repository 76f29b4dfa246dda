#pragma once

// Argon2id password hashes (RFC 9106), as libsodium encodes them:
// "$argon2id$v=19$m=<KiB>,t=<passes>,p=1$<salt>$<hash>". The passwords of
// the directory's users are kept only this way (docs/users.md).

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace coffer::crypto {

// The longest password hashed or checked, in bytes.
inline constexpr size_t kMaxPasswordBytes = 256;

// What one hash costs: passes over memory, and memory in bytes.
struct PasswordHashCost {
  uint64_t passes;
  size_t memory_bytes;
};
// libsodium's interactive limits (2 passes over 64 MiB): what users'
// passwords are hashed with.
PasswordHashCost InteractiveCost();
// The least Argon2id allows (1 pass, 8 KiB): for tests only.
PasswordHashCost LeastCost();

// HashPassword hashes `password` under a new random salt. kInvalidArgument
// for an empty password or one longer than kMaxPasswordBytes; kInternal if
// libsodium fails (out of memory).
StatusOr<std::string> HashPassword(std::string_view password,
                                   const PasswordHashCost& cost = InteractiveCost());

// VerifyPassword is whether `password` is the one `encoded` was made from,
// in time that does not depend on where they differ. kInvalidArgument when
// `encoded` is not an Argon2id hash (a password never matches it).
StatusOr<bool> VerifyPassword(std::string_view encoded, std::string_view password);

// NeedsRehash: `encoded` was made with another cost than `cost` (or is not
// a hash): hash the password again at its next successful check.
bool NeedsRehash(std::string_view encoded, const PasswordHashCost& cost = InteractiveCost());

}  // namespace coffer::crypto
