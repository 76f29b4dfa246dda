// The certificate readers on arbitrary bytes - ReadPkcs12 (no password),
// ReadPemBundle, ReadPemCertificates, ReadCertificateDer and ReadCsr: no
// crash, no OpenSSL error left behind, and what they accept holds together:
// - a certificate is the input itself, with a 20-byte thumbprint, reads the
//   same again and has a PEM form; its subject and issuer, where they
//   normalize, normalize to a fixed point;
// - a bundle has a key and a chain that WritePem writes and ReadPemBundle
//   reads back as the same key and chain;
// - certificates alone are what WriteCertificatesPem writes and
//   ReadPemCertificates reads back the same.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <openssl/err.h>

#include "crypto/certificate.h"

namespace {

using coffer::crypto::KeyAndChain;

void Check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

void CheckSubject(const std::string& subject) {
  auto normalized = coffer::crypto::NormalizeSubject(subject);
  if (normalized.ok()) {
    auto again = coffer::crypto::NormalizeSubject(*normalized);
    Check(again.ok() && *again == *normalized);
  }
}

void CheckBundle(const coffer::StatusOr<KeyAndChain>& bundle) {
  if (!bundle.ok()) {
    Check(bundle.status().code() == coffer::StatusCode::kInvalidArgument);
    return;
  }
  Check(bundle->key != nullptr && !bundle->chain_der.empty() && bundle->chain_der.size() <= 20);
  auto pem = coffer::crypto::WritePem(*bundle->key, bundle->chain_der);
  Check(pem.ok());
  auto again = coffer::crypto::ReadPemBundle(pem->view());
  Check(again.ok() && again->key->PublicKeyDer() == bundle->key->PublicKeyDer() &&
        again->chain_der == bundle->chain_der);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);

  auto cert = coffer::crypto::ReadCertificateDer(input);
  if (cert.ok()) {
    Check(cert->der == input && cert->sha1_thumbprint.size() == 20);
    auto again = coffer::crypto::ReadCertificateDer(cert->der);
    Check(again.ok() && again->subject == cert->subject && again->issuer == cert->issuer &&
          again->serial_hex == cert->serial_hex && again->public_key_der == cert->public_key_der);
    Check(coffer::crypto::CertificatePem(cert->der).ok());
    CheckSubject(cert->subject);
    CheckSubject(cert->issuer);
  }
  Check(ERR_peek_error() == 0);

  auto csr = coffer::crypto::ReadCsr(input);
  if (csr.ok()) {
    Check(!csr->public_key_der.empty());
    CheckSubject(csr->profile.subject);
  }
  Check(ERR_peek_error() == 0);

  CheckBundle(coffer::crypto::ReadPkcs12(input, ""));
  Check(ERR_peek_error() == 0);
  CheckBundle(coffer::crypto::ReadPemBundle(input));
  Check(ERR_peek_error() == 0);
  auto certs = coffer::crypto::ReadPemCertificates(input);
  if (certs.ok()) {
    Check(!certs->empty() && certs->size() <= 20);
    auto pem = coffer::crypto::WriteCertificatesPem(*certs);
    Check(pem.ok());
    auto again = coffer::crypto::ReadPemCertificates(pem->view());
    Check(again.ok() && *again == *certs);
  } else {
    Check(certs.status().code() == coffer::StatusCode::kInvalidArgument);
  }
  Check(ERR_peek_error() == 0);
  return 0;
}
