#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace coffer::crypto {

// RandomBytes returns `n` bytes from the OS-seeded CSPRNG. Aborts if the
// generator fails, which only happens when the system is unusable.
std::string RandomBytes(size_t n);
// RandomHex returns 2*n lowercase hex characters of randomness.
std::string RandomHex(size_t n);
// RandomUuid returns a version-4 UUID in canonical lowercase form.
std::string RandomUuid();

std::string Sha256(std::string_view data);
std::string Sha1(std::string_view data);
std::string HmacSha256(std::string_view key, std::string_view data);
// HkdfSha256 derives `length` bytes (RFC 5869).
std::string HkdfSha256(std::string_view key, std::string_view salt, std::string_view info,
                       size_t length);
// Pbkdf2Sha256 is the slow salted hash for client secrets.
std::string Pbkdf2Sha256(std::string_view password, std::string_view salt, int iterations,
                         size_t length);

// SecureWipe overwrites the bytes of `s` in a way the compiler keeps.
void SecureWipe(std::string& s);

// ConstantTimeEquals compares without data-dependent timing.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// Aes256Gcm seals and opens with a random 96-bit nonce. The sealed form is
// nonce(12) || ciphertext || tag(16).
constexpr size_t kAes256KeySize = 32;
constexpr size_t kGcmNonceSize = 12;
constexpr size_t kGcmTagSize = 16;

// REQUIRES: key.size() == kAes256KeySize.
std::string AesGcmSeal(std::string_view key, std::string_view plaintext, std::string_view aad);
// Returns kDataLoss when authentication fails (wrong key, wrong associated
// data, or altered bytes) and kInvalidArgument when `sealed` is too short.
StatusOr<std::string> AesGcmOpen(std::string_view key, std::string_view sealed,
                                 std::string_view aad);

}  // namespace coffer::crypto
