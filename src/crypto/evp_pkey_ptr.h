#pragma once

#include <memory>

// OpenSSL's EVP_PKEY, declared without OpenSSL's headers so that crypto
// headers other layers include (rsa_key.h, ed25519.h) can own one while
// OpenSSL stays inside crypto/ (tools/check_layering.py).
struct evp_pkey_st;

namespace coffer::crypto {

// EvpPkeyFree frees an EVP_PKEY (EVP_PKEY_free; null is a no-op). Defined
// in openssl_ptr.cc, the one place that needs OpenSSL's declaration.
struct EvpPkeyFree {
  void operator()(evp_pkey_st* pkey) const;
};

// EvpPkeyPtr owns an EVP_PKEY. openssl_ptr.h includes this header, so code
// that sees OpenSSL and code that does not name the same type.
using EvpPkeyPtr = std::unique_ptr<evp_pkey_st, EvpPkeyFree>;

}  // namespace coffer::crypto
