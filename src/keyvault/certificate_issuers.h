#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/json.h"
#include "common/status.h"
#include "crypto/certificate.h"
#include "keyvault/certificate_authority.h"
#include "keyvault/vault_registry.h"
#include "storage/store.h"

namespace coffer::keyvault {

// A certificate contact of a vault (/certificates/contacts).
struct CertificateContact {
  std::string email;
  std::string name;
  std::string phone;
};

// A certificate issuer of a vault (/certificates/issuers/{name}).
struct CertificateIssuer {
  std::string name;      // as first set
  std::string provider;  // "Coffer", or a CA Key Vault knows ("DigiCert", ...)
  std::string account_id;
  bool has_password = false;          // the password itself is never read back
  Json org_details = Json::object();  // {"id"?, "admin_details"?: [...]}, checked
  bool enabled = true;
  int64_t created = 0;
  int64_t updated = 0;
  // The rules of a `Coffer` issuer: the DNS names it signs must end in one
  // of these suffixes (none: any), and a policy's validity may not exceed
  // this many months (0: any).
  std::vector<std::string> allowed_dns_suffixes;
  int max_validity_months = 0;
};

// CertificateIssuers keeps each vault's certificate contacts and issuers
// (docs/certificates.md) as documents in the store's metadata
// (VaultDocumentKey), each read and written in one transaction, and signs
// certificates for issuers of the `Coffer` provider with the installation's
// CA. Inputs are untrusted request JSON; errors are kInvalidArgument
// ("BadParameter") naming the member at fault, or kNotFound
// ("ContactsNotFound", "IssuerNotFound").
//
// SECURITY: an issuer's password is sealed with the vault's data key and
// never returned.
//
// Thread-safe. The referenced objects must outlive it.
class CertificateIssuers {
 public:
  using Vault = std::shared_ptr<const OpenVault>;

  CertificateIssuers(storage::Store& store, const Clock& clock, CertificateAuthority& ca);

  // PUT replaces the contact list; at most 64 contacts, each with an email,
  // a name or a phone number.
  StatusOr<std::vector<CertificateContact>> SetContacts(const Vault& vault, const Json& body);
  StatusOr<std::vector<CertificateContact>> GetContacts(const Vault& vault);
  // Returns the contacts it removed.
  StatusOr<std::vector<CertificateContact>> DeleteContacts(const Vault& vault);

  // `replace`: PUT (create or replace; `provider` required); otherwise
  // PATCH (members absent from `body` stay). SECURITY: an issuer of the
  // `Coffer` provider signs with the installation's CA, which every vault's
  // clients may trust, so only an installation administrator
  // (`by_administrator`) creates one, changes one, or makes another issuer
  // one; anyone else gets kPermissionDenied ("Forbidden"), nothing written.
  // The vault's own issuer permissions still decide who may delete it.
  StatusOr<CertificateIssuer> SetIssuer(const Vault& vault, const std::string& name,
                                        const Json& body, bool replace, bool by_administrator);
  StatusOr<CertificateIssuer> GetIssuer(const Vault& vault, const std::string& name);
  // At most 64 per vault, ordered by name.
  StatusOr<std::vector<CertificateIssuer>> ListIssuers(const Vault& vault);
  // Returns the issuer it removed.
  StatusOr<CertificateIssuer> DeleteIssuer(const Vault& vault, const std::string& name);

  // Issue signs a certificate for `public_key_der` through the issuer
  // `name`, made under a policy of `validity_months`: the issuer must exist,
  // be enabled, be of the `Coffer` provider, and its rules must allow the
  // profile. Returns the chain, leaf first.
  StatusOr<std::vector<std::string>> Issue(const Vault& vault, const std::string& name,
                                           int validity_months,
                                           const crypto::CertificateProfile& profile,
                                           std::string_view public_key_der);

 private:
  storage::Store& store_;
  const Clock& clock_;
  CertificateAuthority& ca_;
};

}  // namespace coffer::keyvault
