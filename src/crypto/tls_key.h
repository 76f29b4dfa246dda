#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "crypto/evp_pkey_ptr.h"

namespace coffer::crypto {

// TlsKey is the private key of a TLS server or of the CA that issues its
// certificates. New keys are ECDSA P-256 (a handshake signs with it, far
// cheaper than RSA-2048); any PEM private key loads, so RSA keys of earlier
// releases keep working.
class TlsKey {
 public:
  // GenerateP256 makes a new ECDSA P-256 key. kInternal if OpenSSL fails.
  static StatusOr<std::unique_ptr<TlsKey>> GenerateP256();
  // FromPrivatePem parses a PKCS#8 or traditional PEM private key (RSA or
  // EC). kInvalidArgument otherwise.
  static StatusOr<std::unique_ptr<TlsKey>> FromPrivatePem(std::string_view pem);

  // PKCS#8 PEM.
  std::string PrivatePem() const;
  bool is_ec() const;

  // For crypto/x509.cc.
  evp_pkey_st* native() const { return pkey_.get(); }

 private:
  explicit TlsKey(EvpPkeyPtr pkey) : pkey_(std::move(pkey)) {}
  EvpPkeyPtr pkey_;
};

}  // namespace coffer::crypto
