#pragma once

#include "http/message.h"
#include "keyvault/secret_service.h"

namespace coffer::keyvault {

// SecretsApi maps Key Vault's secrets REST surface (reference
// azure-sdk-compat.md §4.1) onto SecretService: paths under /secrets and
// /deletedsecrets on a vault host, JSON bodies, ids built from the request's
// Host, status codes exactly as Key Vault's (purge 204, all else 200).
//
// The caller has already authenticated and authorized the request.
// Thread-safe. `service` must outlive it.
class SecretsApi {
 public:
  explicit SecretsApi(SecretService& service) : service_(service) {}

  // Handles a data-plane request for `vault`. Paths it does not know get
  // 404; known paths with another method get 405.
  http::Response Handle(const std::string& vault, const http::Request& request);

  // TryFast answers a GET of a secret of the open `vault` from the
  // service's cache without blocking, or returns nullopt (then call Handle
  // on a worker thread).
  std::optional<http::Response> TryFast(const std::shared_ptr<const OpenVault>& vault,
                                        const http::Request& request);

 private:
  SecretService& service_;
};

}  // namespace coffer::keyvault
