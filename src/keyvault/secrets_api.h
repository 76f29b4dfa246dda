#pragma once

#include <vector>

#include "http/message.h"
#include "keyvault/secret_service.h"
#include "keyvault/vault_api.h"

namespace coffer::keyvault {

// SecretsApi maps Key Vault's secrets REST surface (reference
// azure-sdk-compat.md §4.1) onto SecretService: paths under /secrets and
// /deletedsecrets on a vault host, JSON bodies, ids built from the request's
// Host, status codes exactly as Key Vault's (purge 204, all else 200).
//
// Beyond Key Vault's surface, POST /secrets/{name}[/{version}]/hash answers
// an HMAC-SHA256 of a version's value under a key the caller sends, never
// the value (docs/secrets.md).
//
// Operations() is its route table; the server's vault plane matches,
// authenticates and authorizes each request before a handler runs.
// Thread-safe. `service` must outlive it.
class SecretsApi {
 public:
  explicit SecretsApi(SecretService& service) : service_(service) {}

  // The operations, one per method and path (GET of a secret has a fast
  // handler that answers from the service's cache).
  std::vector<VaultOperation> Operations();

 private:
  http::Response ListLive(const VaultCall& call);
  http::Response ListDeleted(const VaultCall& call);
  http::Response List(const VaultCall& call, bool deleted);
  http::Response Restore(const VaultCall& call);
  http::Response Set(const VaultCall& call);
  http::Response Get(const VaultCall& call);
  std::optional<http::Response> GetCached(const VaultCall& call);
  http::Response Update(const VaultCall& call);
  http::Response ListVersions(const VaultCall& call);
  http::Response Backup(const VaultCall& call);
  http::Response Hash(const VaultCall& call);
  http::Response Delete(const VaultCall& call);
  http::Response GetDeleted(const VaultCall& call);
  http::Response Purge(const VaultCall& call);
  http::Response Recover(const VaultCall& call);

  SecretService& service_;
};

}  // namespace coffer::keyvault
