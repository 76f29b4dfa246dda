#pragma once

#include <functional>
#include <string_view>
#include <vector>

#include "http/message.h"
#include "keyvault/certificate_service.h"
#include "keyvault/vault_api.h"

namespace coffer::keyvault {

// CertificatesApi maps Key Vault's certificates REST surface
// (docs/certificates.md; reference azure-sdk-compat.md §4.4) onto
// CertificateService: paths under /certificates and /deletedcertificates
// on a vault host, JSON bodies, ids built from the request's Host, status
// codes exactly as Key Vault's (create 202, purge 204, all else 200).
//
// Operations() is its route table; the server's vault plane matches,
// authenticates and authorizes each request before a handler runs.
// Thread-safe. `service` must outlive it.
class CertificatesApi {
 public:
  // `is_administrator` says whether an object id is an installation
  // administrator's (issuers of the Coffer provider are theirs to set).
  CertificatesApi(CertificateService& service, CertificateIssuers& issuers,
                  std::function<bool(std::string_view object_id)> is_administrator)
      : service_(service), issuers_(issuers), is_administrator_(std::move(is_administrator)) {}

  std::vector<VaultOperation> Operations();

 private:
  http::Response List(const VaultCall& call);
  http::Response ListDeleted(const VaultCall& call);
  http::Response ListVersions(const VaultCall& call);
  http::Response Create(const VaultCall& call);
  http::Response GetOperation(const VaultCall& call);
  http::Response CancelOperation(const VaultCall& call);
  http::Response DeleteOperation(const VaultCall& call);
  http::Response Merge(const VaultCall& call);
  http::Response GetContacts(const VaultCall& call);
  http::Response SetContacts(const VaultCall& call);
  http::Response DeleteContacts(const VaultCall& call);
  http::Response ListIssuers(const VaultCall& call);
  http::Response GetIssuer(const VaultCall& call);
  http::Response SetIssuer(const VaultCall& call);
  http::Response UpdateIssuer(const VaultCall& call);
  // PUT (`replace`) or PATCH of an issuer.
  http::Response WriteIssuer(const VaultCall& call, bool replace);
  http::Response DeleteIssuer(const VaultCall& call);
  http::Response Import(const VaultCall& call);
  http::Response Get(const VaultCall& call);
  http::Response Update(const VaultCall& call);
  http::Response GetPolicy(const VaultCall& call);
  http::Response UpdatePolicy(const VaultCall& call);
  http::Response Backup(const VaultCall& call);
  http::Response Restore(const VaultCall& call);
  http::Response Delete(const VaultCall& call);
  http::Response GetDeleted(const VaultCall& call);
  http::Response Recover(const VaultCall& call);
  http::Response Purge(const VaultCall& call);

  CertificateService& service_;
  CertificateIssuers& issuers_;
  std::function<bool(std::string_view object_id)> is_administrator_;
};

}  // namespace coffer::keyvault
