#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "crypto/certificate.h"

namespace coffer::keyvault {

// A certificate's policy (docs/certificates.md): how each version's key is
// made, what the certificate says, how the secret holds it, who issues it
// and when it is renewed. Key Vault's wire format is snake_case JSON
// (reference azure-sdk-compat.md §4.4); the stored form is the same JSON.
struct CertificatePolicy {
  // key_props
  std::string kty = "RSA";  // "RSA" or "EC"
  int key_size = 2048;      // RSA: 2048, 3072, 4096; 0 for EC
  std::string crv;          // EC: P-256, P-384, P-521, P-256K; "" for RSA
  bool exportable = true;
  bool reuse_key = false;
  // secret_props
  std::string content_type = "application/x-pkcs12";  // or application/x-pem-file
  // x509_props
  std::string subject;
  std::vector<std::string> dns_names;
  std::vector<std::string> emails;
  std::vector<std::string> upns;
  std::vector<std::string> uris;
  std::vector<std::string> ip_addresses;
  std::vector<std::string> key_usage;  // Key Vault's names
  std::vector<std::string> ekus;       // dotted OIDs
  int validity_months = 12;
  // lifetime_actions: each fires at a percentage of the lifetime or a
  // number of days before expiry (exactly one of the two).
  struct LifetimeAction {
    std::optional<int> lifetime_percentage;
    std::optional<int> days_before_expiry;
    std::string action_type;  // "AutoRenew" or "EmailContacts"
  };
  std::vector<LifetimeAction> lifetime_actions;
  // issuer
  std::string issuer = "Self";   // "Self", "Unknown" or an issuer's name
  std::string certificate_type;  // `cty`, "" when unset
  std::optional<bool> cert_transparency;
  // attributes
  bool enabled = true;
  int64_t created = 0;
  int64_t updated = 0;
};

// ParseCertificatePolicy reads a policy from a request (create, import,
// PATCH /policy), untrusted. Members absent from `json` keep the value in
// `base` (the current policy for a PATCH; a default-constructed one
// otherwise), and what is still unset gets Key Vault's defaults: RSA 2048,
// exportable, PKCS#12, 12 months, digitalSignature and keyEncipherment (EC:
// digitalSignature), server and client authentication, and one AutoRenew
// action at 80% of the lifetime. JS sends empty objects for parts it does
// not set; they change nothing. Checks types, the key type with its size or
// curve, the content type, validity 1-1200 months, each lifetime action (a
// percentage 1-99 or 1-days within the validity, one of the two; AutoRenew
// refused for the Unknown issuer), the issuer name, and the subject and
// subject alternative names, key usages and EKUs as crypto::CheckProfile
// does. kInvalidArgument ("BadParameter") naming the member at fault.
StatusOr<CertificatePolicy> ParseCertificatePolicy(const Json& json, const CertificatePolicy& base);

// RenderCertificatePolicy is the policy in Key Vault's wire format, with
// `id` when not empty. ParseCertificatePolicy reads it back unchanged, so
// it is also the stored form.
Json RenderCertificatePolicy(const CertificatePolicy& policy, const std::string& id);

// ProfileOf is what a certificate made under `policy` says, valid from
// `not_before` to `not_after` (Unix seconds).
crypto::CertificateProfile ProfileOf(const CertificatePolicy& policy, int64_t not_before,
                                     int64_t not_after);

// LoadCertificatePolicy reads a stored policy. kDataLoss if it does not
// parse.
StatusOr<CertificatePolicy> LoadCertificatePolicy(const std::string& stored);

}  // namespace coffer::keyvault
