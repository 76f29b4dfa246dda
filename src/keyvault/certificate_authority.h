#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "crypto/asym_key.h"
#include "crypto/certificate.h"
#include "keyvault/envelope.h"
#include "storage/store.h"

namespace coffer::keyvault {

// CertificateAuthority is the installation's own CA (docs/certificates.md,
// "Coffer's own issuer"): an EC P-384 key and a self-signed CA certificate
// valid for 20 years, made on first use and kept in the store's metadata
// with the key sealed under the master key (Envelope::SealInstallationKey).
// Every server sharing the store uses the one that was stored first. Issuers
// of the `Coffer` provider sign with it unless they carry a CA of their own.
//
// SECURITY: the private key is opened only in memory, never logged or
// returned; the certificate is public (`coffer ca` exports it).
//
// Thread-safe. `store`, `envelope` and `clock` must outlive it.
class CertificateAuthority {
 public:
  CertificateAuthority(storage::Store& store, const Envelope& envelope, const Clock& clock);

  // The CA's certificate, DER.
  StatusOr<std::string> CertificateDer();
  // Signs a certificate for the SubjectPublicKeyInfo `public_key_der` as
  // `profile` says, and returns the chain: the new certificate, then the
  // CA's.
  StatusOr<std::vector<std::string>> Issue(const crypto::CertificateProfile& profile,
                                           std::string_view public_key_der);

 private:
  struct Loaded {
    std::string der;
    std::unique_ptr<crypto::AsymKey> key;
  };
  StatusOr<std::shared_ptr<const Loaded>> Load();

  storage::Store& store_;
  const Envelope& envelope_;
  const Clock& clock_;
  std::mutex mu_;
  std::shared_ptr<const Loaded> loaded_;  // guarded by mu_
};

}  // namespace coffer::keyvault
