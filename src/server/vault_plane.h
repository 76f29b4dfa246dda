#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "authz/authorizer.h"
#include "keyvault/vault_api.h"
#include "keyvault/vault_registry.h"
#include "server/authenticator.h"
#include "server/pipeline.h"
#include "server/service_limits.h"

namespace coffer::server {

// VaultPlane serves the Key Vault data plane on vault hosts
// (https://<vault>.<suffix>): one route table assembled from the vault APIs'
// operations (secrets; keys and certificates join the same way) and the
// watch stream. Every request goes through the same stages, on the I/O
// thread's fast path or on a worker:
//
//   match the route (404/405: nothing runs) -> authenticate -> resolve the
//   vault once -> authorize the route's operation on that snapshot ->
//   count it against the vault's service limits (429) -> handle with the
//   same snapshot
//
// and fills the request's AuditNote. The fast path runs the same stages
// from caches only and answers only what they can answer; anything else
// returns nullopt and the worker path runs.
//
// Thread-safe. The referenced objects must outlive it.
class VaultPlane {
 public:
  struct Config {
    std::string authority_host;  // https://localhost:<port>
    std::string tenant_id;
    std::string vault_resource;  // the challenge's resource, https://vault.localhost:<port>
    std::vector<std::string> audiences;
    std::string issuer;  // for denial messages
    std::string subscription_id;
  };

  // `limits` (nullable) counts each authorized request against the vault's
  // service limits before it is handled.
  VaultPlane(Config config, Authenticator& authenticator, keyvault::VaultRegistry& registry,
             const authz::Authorizer& authorizer, std::vector<keyvault::VaultOperation> operations,
             ServiceLimits* limits = nullptr);
  VaultPlane(const VaultPlane&) = delete;
  VaultPlane& operator=(const VaultPlane&) = delete;

  // Head answers a request without an Authorization header with the 401
  // challenge, before its body is read; nullopt otherwise.
  std::optional<http::Response> Head(const std::string& vault, const http::Request& request,
                                     AuditNote& note) const;
  // Fast answers from memory without blocking, or returns nullopt.
  std::optional<http::Response> Fast(const std::string& vault, const http::Request& request,
                                     AuditNote& note) const;
  // Handle runs every stage; may block.
  http::Response Handle(const std::string& vault, const http::Request& request,
                        AuditNote& note) const;

  // What a request weighs against the service limits (Key Vault weighs
  // key operations by key size; ServiceLimits::KeyWeight); 1 when unset.
  // Called after authorization. `may_block`: it may read storage.
  using Weigher = std::function<int64_t(const std::shared_ptr<const keyvault::OpenVault>& vault,
                                        const keyvault::VaultOperation& route,
                                        const http::PathParams& params, bool may_block)>;
  void SetWeigher(Weigher weigher) { weigher_ = std::move(weigher); }

  // The routes, for the route listing and the tests that walk them.
  const keyvault::VaultRoutes& routes() const { return routes_; }

 private:
  // Authorizes `route` for `caller` on the snapshot; a denial, or nullopt.
  std::optional<http::Response> Authorize(const Caller& caller, const keyvault::OpenVault& vault,
                                          const keyvault::VaultOperation& route,
                                          const http::PathParams& params, AuditNote& note) const;
  // A 429 when the request is over the vault's service limits, else nullopt
  // (and it is counted, with the weight `weigher_` gives it; `may_block`:
  // the weigher may read storage).
  std::optional<http::Response> Throttle(const std::string& vault,
                                         const std::shared_ptr<const keyvault::OpenVault>& open,
                                         const keyvault::VaultOperation& route,
                                         const http::PathParams& params, bool may_block) const;
  http::Response Challenge(const Status& why) const;
  // The vault's ARM id for the audit record: from the registry (reading the
  // store when it is not cached), or for a vault that does not exist its
  // name under the subscription.
  std::string ResourceId(const std::string& vault) const;
  // From the registry's cache only, without blocking.
  std::optional<std::string> CachedResourceId(const std::string& vault) const;

  const Config config_;
  Authenticator& authenticator_;
  keyvault::VaultRegistry& registry_;
  const authz::Authorizer& authorizer_;
  const keyvault::VaultRoutes routes_;
  ServiceLimits* const limits_;
  Weigher weigher_;  // set before the first request
  // The operations each route names (and its alternatives), resolved once.
  std::vector<const authz::DataOperation*> permissions_;
  std::vector<std::vector<const authz::DataOperation*>> alternatives_;
};

}  // namespace coffer::server
