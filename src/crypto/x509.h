#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "crypto/rsa_key.h"
#include "crypto/tls_key.h"

namespace coffer::crypto {

// CreateCaCertificate makes a self-signed CA certificate for `key`, valid for
// `days`, and returns it as PEM.
StatusOr<std::string> CreateCaCertificate(const TlsKey& key, const std::string& common_name,
                                          int days);

// CreateServerCertificate issues a TLS server certificate for `server_key`,
// signed by the CA, with the given DNS and IP subject alternative names.
// Returns kInvalidArgument if the CA certificate cannot be parsed.
StatusOr<std::string> CreateServerCertificate(const TlsKey& server_key,
                                              const std::string& ca_cert_pem, const TlsKey& ca_key,
                                              const std::vector<std::string>& dns_names,
                                              const std::vector<std::string>& ip_addresses,
                                              int days);

// A parsed X.509 certificate with an RSA key.
struct CertificateInfo {
  std::string der;
  std::string sha1_thumbprint;    // raw 20 bytes (JWS x5t)
  std::string sha256_thumbprint;  // raw 32 bytes (JWS x5t#S256)
  int64_t not_before = 0;
  int64_t not_after = 0;
  std::unique_ptr<RsaKey> public_key;
};

// ParseCertificate reads one certificate from PEM text, base64 DER or raw
// DER. kInvalidArgument if it is none of these or its key is not RSA.
StatusOr<CertificateInfo> ParseCertificate(const std::string& text);

// CreateSelfSignedCertificate makes a certificate for `key` with the given
// common name, valid for `days`; PEM.
StatusOr<std::string> CreateSelfSignedCertificate(const RsaKey& key, const std::string& common_name,
                                                  int days);

// CertificateDnsNames lists the DNS SANs of a PEM certificate (empty on error).
std::vector<std::string> CertificateDnsNames(const std::string& cert_pem);

// CertificateNotAfter is the end of a PEM certificate's validity (Unix
// seconds; the first certificate of a chain), whatever its key type; 0 on
// error.
int64_t CertificateNotAfter(const std::string& cert_pem);

}  // namespace coffer::crypto
