#pragma once

// Shared by the files of AsymKey (asym_key.cc, asym_key_jwk.cc,
// asym_key_ops.cc) and the code that builds on it (certificate*.cc); not for
// use outside src/crypto.

#include <cstddef>
#include <memory>
#include <string>
#include <utility>

#include <openssl/bn.h>

#include "common/json.h"
#include "common/status.h"
#include "crypto/asym_key.h"
#include "crypto/openssl_ptr.h"

namespace coffer::crypto::asym_internal {

// KeyAccess opens an AsymKey's EVP_PKEY to crypto/'s own code (certificates
// sign with it and put it in PKCS#12 files) without making OpenSSL part of
// AsymKey's public interface.
struct KeyAccess {
  // The key pair, borrowed for as long as `key` lives. AsymKey is immutable
  // and shared between threads: callers only read and sign with it.
  static EVP_PKEY* Pkey(const AsymKey& key) { return key.pkey_.get(); }
  // AsymKey's own Wrap: the RSA sizes and EC curves it holds, and the object
  // around `pkey`. kInvalidArgument ("BadParameter") for any other key.
  // It does not run OpenSSL's key check (PassesKeyCheck): callers with keys
  // from outside do.
  static StatusOr<std::unique_ptr<AsymKey>> Wrap(EvpPkeyPtr pkey) {
    return AsymKey::Wrap(std::move(pkey));
  }
};

// BadParameter is a refusal of caller input, Key Vault's "BadParameter".
Status BadParameter(std::string message);

// A BIGNUM that may hold secret material: cleared when freed.
using SecretBignumPtr = std::unique_ptr<BIGNUM, OpenSslDeleter<BIGNUM, BN_clear_free>>;

struct CurveInfo {
  EcCurve curve;
  const char* jwk_name;
  const char* openssl_name;  // OpenSSL's group name
  int bits;
  size_t coordinate_bytes;
};
const CurveInfo& CurveInfoOf(EcCurve curve);

// The RSA sizes Key Vault creates, and the only ones Coffer holds.
bool IsAllowedRsaSize(int bits);

// `bn` big-endian, left-padded with zeros to `length` bytes.
std::string BnToPadded(const BIGNUM* bn, size_t length);

// PassesKeyCheck runs OpenSSL's full key check: for RSA the primality of
// the factors and the key's arithmetic, for EC the point on the curve and
// Q = d*G. Slow for large RSA keys (primality tests): for keys that come
// from outside, not for every load of a sealed one.
bool PassesKeyCheck(EVP_PKEY* pkey);

// RsaFromJwk and EcFromJwk build the key pair a private JWK describes, with
// every check AsymKey::FromJwk lists. kInvalidArgument ("BadParameter").
StatusOr<EvpPkeyPtr> RsaFromJwk(const Json& jwk);
StatusOr<EvpPkeyPtr> EcFromJwk(const Json& jwk);
// PublicFromJwk builds the public key of a JWK (RSA n, e; EC crv, x, y);
// see PublicKeyDerFromJwk.
StatusOr<EvpPkeyPtr> PublicFromJwk(const Json& jwk);

}  // namespace coffer::crypto::asym_internal
