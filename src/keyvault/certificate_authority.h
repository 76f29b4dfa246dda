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
// valid for 20 years, made on first use, or a CA the operator imports (an
// intermediate of the company's, with its chain up to the root), kept in the
// store's metadata with the key sealed under the master key
// (Envelope::SealInstallationKey). Every server sharing the store uses the
// one stored. Issuers of the `Coffer` provider sign with it.
//
// SECURITY: the private key is opened only in memory, never logged or
// returned; the certificate is public (`coffer ca` exports it).
//
// Thread-safe. `store`, `envelope` and `clock` must outlive it.
class CertificateAuthority {
 public:
  CertificateAuthority(storage::Store& store, const Envelope& envelope, const Clock& clock);

  // The CA's certificate and the chain above it (an imported CA's), DER,
  // the CA's first.
  StatusOr<std::vector<std::string>> Chain();
  // Signs a certificate for the SubjectPublicKeyInfo `public_key_der` as
  // `profile` says, and returns the chain: the new certificate, then
  // Chain().
  StatusOr<std::vector<std::string>> Issue(const crypto::CertificateProfile& profile,
                                           std::string_view public_key_der);
  // Import makes the CA in `pem` (untrusted: its key, unencrypted, and its
  // certificate with the chain above it, as crypto::ReadPemBundle reads
  // them) the one that signs from now on, replacing the current one;
  // certificates it signed before keep their chain. The certificate that
  // carries the key must be a CA (basicConstraints CA:TRUE, keyCertSign when
  // it has a key usage) and valid now. kInvalidArgument ("BadParameter")
  // saying what is wrong.
  Status Import(std::string_view pem);
  // Forget drops what was read, so that the next use reads the store again
  // (another server imported a CA).
  void Forget();

  // The metadata key it is kept under.
  static constexpr char kMetaKey[] = "installation_ca";

 private:
  struct Loaded {
    std::vector<std::string> chain;  // DER, the CA first
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
