#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "crypto/rsa_key.h"

namespace coffer::crypto {

// CreateCaCertificate makes a self-signed CA certificate for `key`, valid for
// `days`, and returns it as PEM.
StatusOr<std::string> CreateCaCertificate(const RsaKey& key, const std::string& common_name,
                                          int days);

// CreateServerCertificate issues a TLS server certificate for `server_key`,
// signed by the CA, with the given DNS and IP subject alternative names.
// Returns kInvalidArgument if the CA certificate cannot be parsed.
StatusOr<std::string> CreateServerCertificate(const RsaKey& server_key,
                                              const std::string& ca_cert_pem, const RsaKey& ca_key,
                                              const std::vector<std::string>& dns_names,
                                              const std::vector<std::string>& ip_addresses,
                                              int days);

// CertificateDnsNames lists the DNS SANs of a PEM certificate (empty on error).
std::vector<std::string> CertificateDnsNames(const std::string& cert_pem);

}  // namespace coffer::crypto
