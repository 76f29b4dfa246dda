#pragma once

// CertificateClient: reading the Key Vault certificates API (api-version
// 7.5) of one vault, named as the Azure SDKs name it: a certificate version
// (its DER and the ids of the key and the secret it owns) and the
// properties of the certificates and of their versions. Creating, importing
// and managing certificates are not in this client yet.
//
// A certificate's private key is not part of what this client reads: it is
// in the certificate's secret (SecretClient::GetSecret of the same name and
// version, `secret_id` below), as in Key Vault.
//
// Authentication, retries and errors are SecretClient's (secret_client.h):
// Key Vault's challenge names the token's resource, 429 and 5xx are retried
// with back-off, and a Status's reason() is Key Vault's error code
// ("CertificateNotFound", "Forbidden", ...). Thread-safe.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "coffer/credentials.h"
#include "coffer/http_transport.h"
#include "coffer/secret_client.h"
#include "coffer/status.h"

namespace coffer {

struct CertificateProperties {
  std::string id;  // https://<vault>/certificates/<name>/<version>
  std::string vault_url;
  std::string name;
  std::string version;
  // The certificate's SHA-1 thumbprint, raw 20 bytes (Key Vault's `x5t` is
  // its base64url); empty when the vault sent none.
  std::string x509_thumbprint;
  bool enabled = true;
  std::optional<int64_t> not_before;  // Unix seconds: the certificate's validity
  std::optional<int64_t> expires_on;
  int64_t created_on = 0;
  int64_t updated_on = 0;
  std::map<std::string, std::string> tags;
  std::string recovery_level;
};

struct KeyVaultCertificate {
  CertificateProperties properties;
  std::string key_id;     // https://<vault>/keys/<name>/<version>: the key it owns
  std::string secret_id;  // https://<vault>/secrets/<name>/<version>: key and chain
  std::string cer;        // the certificate, DER (Key Vault's `cer`, decoded)
};

class CertificateClient {
 public:
  // `vault_url` is https://<vault>.<suffix>[:port]; a trailing "/" is ignored.
  // The options are SecretClient's (transport, retry, api-version).
  CertificateClient(std::string vault_url, std::shared_ptr<TokenCredential> credential,
                    SecretClientOptions options = {});

  const std::string& vault_url() const;

  // GetCertificate reads a version ("" means the latest): its DER, ids and
  // properties. kNotFound reason "CertificateNotFound" when there is no such
  // certificate or version; kInvalidArgument when the answer is not a
  // certificate bundle (ParseCertificateBundle).
  StatusOr<KeyVaultCertificate> GetCertificate(const std::string& name,
                                               const std::string& version = "");
  // The properties of every certificate (the latest versions' ids carry no
  // version), and of every version of one, following nextLink pages.
  StatusOr<std::vector<CertificateProperties>> ListPropertiesOfCertificates();
  StatusOr<std::vector<CertificateProperties>> ListPropertiesOfCertificateVersions(
      const std::string& name);

 private:
  std::shared_ptr<VaultChannel> channel_;
};

// ParseCertificateBundle reads a Key Vault CertificateBundle JSON body (`id`,
// `kid`, `sid`, `x5t`, `cer`, `attributes`, `tags`; the policy is not read).
// kInvalidArgument when it has no `id`, or its `cer` is not standard base64.
StatusOr<KeyVaultCertificate> ParseCertificateBundle(const std::string& json);

}  // namespace coffer
