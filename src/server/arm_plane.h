#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "authz/authorizer.h"
#include "http/router.h"
#include "mgmt/arm_routes.h"
#include "mgmt/event_subscription_manager.h"
#include "mgmt/identity_manager.h"
#include "mgmt/role_manager.h"
#include "mgmt/tags_api.h"
#include "mgmt/vault_manager.h"
#include "mgmt/workload_manager.h"
#include "server/arm_limits.h"
#include "server/authenticator.h"
#include "server/pipeline.h"

namespace coffer::server {

// ArmPlane serves the ARM-shaped management plane on the authority host
// (/subscriptions/... and /providers/Microsoft.Authorization/...). It owns
// the managers (vaults, identities, workloads, role assignments and
// definitions, event subscriptions, tags) and serves from one route table
// assembled from their routes. Every request goes through the same stages:
//
//   authenticate -> match the route (404/405: nothing runs) -> api-version
//   and subscription -> authorize the route's action at the request's scope
//   (a collection the caller may not read whole is filtered to what it may
//   read) -> handle, with the request's linked checks -> audit note
//
// Thread-safe. The referenced objects must outlive it.
class ArmPlane {
 public:
  struct Config {
    std::string subscription_id;
    std::vector<std::string> audiences;
    std::string authority_host;  // https://localhost:<port>, for the 401 challenge
    std::string tenant_id;
  };
  // Every manager is required.
  struct Managers {
    std::unique_ptr<mgmt::VaultManager> vaults;
    std::unique_ptr<mgmt::IdentityManager> identities;
    std::unique_ptr<mgmt::WorkloadManager> workloads;
    std::unique_ptr<mgmt::RoleManager> roles;
    std::unique_ptr<mgmt::EventSubscriptionManager> event_subscriptions;
    std::unique_ptr<mgmt::TagsApi> tags;
  };

  // `limits` (Resource Manager's throttling; may be null) must outlive
  // the plane.
  ArmPlane(Config config, Authenticator& authenticator, const authz::Authorizer& authorizer,
           Managers managers, ArmLimits* limits = nullptr);
  ArmPlane(const ArmPlane&) = delete;
  ArmPlane& operator=(const ArmPlane&) = delete;

  http::Response Handle(const http::Request& request, AuditNote& note) const;

  const std::vector<mgmt::ArmRoute>& routes() const { return routes_; }

  // What the server does with the managers outside a request: the dev
  // vault and the administrators' grants at bootstrap, purging expired
  // vaults, and the event subscriptions' validation URL.
  mgmt::VaultManager& vaults() const { return *managers_.vaults; }
  mgmt::RoleManager& roles() const { return *managers_.roles; }
  mgmt::EventSubscriptionManager& event_subscriptions() const {
    return *managers_.event_subscriptions;
  }

 private:
  // The linked checks of one request by `caller` (mgmt::LinkedCheck); a
  // refusal sets *denied, which must outlive the request's handler.
  mgmt::LinkedCheck LinkedFor(const Caller& caller, std::string action, std::string scope,
                              bool* denied) const;
  void FilterList(const authz::Principal& who, http::Response& response) const;
  // Route answers a request whose caller, route and subscription are
  // known, from authorization on.
  http::Response Route(const http::Request& request, AuditNote& note, const Caller& caller,
                       const http::RouteTable::Match& match) const;
  // 401 InvalidAuthenticationToken with ARM's challenge, or the failure
  // itself when it is not the token's (storage unavailable: 503).
  http::Response InvalidToken(const Status& why) const;

  const Config config_;
  Authenticator& authenticator_;
  const authz::Authorizer& authorizer_;
  const Managers managers_;
  const std::vector<mgmt::ArmRoute> routes_;
  const http::RouteTable table_;
  ArmLimits* const limits_;
};

// The audit operationName of an ARM request: Key Vault's names for vault
// operations (VaultGet, VaultPut, ...), else the action itself.
std::string ArmOperationName(std::string_view method, std::string_view action, bool collection);

}  // namespace coffer::server
