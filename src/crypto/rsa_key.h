#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "common/status.h"
#include "crypto/evp_pkey_ptr.h"

namespace coffer::crypto {

// RsaKey is an RSA key pair (or public key) used for RS256 signatures.
// Immutable after creation; thread-safe.
class RsaKey {
 public:
  RsaKey(const RsaKey&) = delete;
  RsaKey& operator=(const RsaKey&) = delete;

  // Generate makes a new key pair. kInternal if OpenSSL fails.
  static StatusOr<std::unique_ptr<RsaKey>> Generate(int bits);
  // FromPrivatePem parses a PKCS#8 or traditional PEM private key.
  // kInvalidArgument if it is not an RSA private key.
  static StatusOr<std::unique_ptr<RsaKey>> FromPrivatePem(std::string_view pem);
  // FromPublicComponents builds a public key from big-endian modulus and
  // exponent bytes (JWK `n` and `e` after base64url decoding).
  static StatusOr<std::unique_ptr<RsaKey>> FromPublicComponents(std::string_view n,
                                                                std::string_view e);

  bool has_private() const { return has_private_; }
  int bits() const;
  // REQUIRES: has_private().
  std::string PrivatePem() const;
  std::string Modulus() const;   // big-endian bytes
  std::string Exponent() const;  // big-endian bytes

  // SignRs256 signs with RSASSA-PKCS1-v1_5 over SHA-256. REQUIRES: has_private().
  std::string SignRs256(std::string_view data) const;
  // VerifyRs256 reports whether `signature` is valid for `data`.
  bool VerifyRs256(std::string_view data, std::string_view signature) const;
  // VerifyPs256 checks an RSASSA-PSS signature over SHA-256 (MGF1-SHA-256,
  // salt length 32), as JWS PS256.
  bool VerifyPs256(std::string_view data, std::string_view signature) const;
  // SignPs256 makes such a signature. REQUIRES: has_private().
  std::string SignPs256(std::string_view data) const;

  // The key as OpenSSL's EVP_PKEY, for crypto/x509.cc. Borrowed: valid while
  // this RsaKey lives; never null.
  evp_pkey_st* native() const { return pkey_.get(); }
  // FromNative takes ownership of `pkey`. REQUIRES: `pkey` is a non-null RSA
  // key, holding the private half if `has_private`.
  static std::unique_ptr<RsaKey> FromNative(EvpPkeyPtr pkey, bool has_private);

 private:
  RsaKey(EvpPkeyPtr pkey, bool has_private) : pkey_(std::move(pkey)), has_private_(has_private) {}
  const EvpPkeyPtr pkey_;
  const bool has_private_;
};

}  // namespace coffer::crypto
