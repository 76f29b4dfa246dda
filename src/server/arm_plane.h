#pragma once

#include <functional>
#include <string>
#include <vector>

#include "authz/authorizer.h"
#include "http/router.h"
#include "mgmt/arm_routes.h"
#include "server/authenticator.h"
#include "server/pipeline.h"

namespace coffer::server {

// ArmPlane serves the ARM-shaped management plane on the authority host
// (/subscriptions/... and /providers/Microsoft.Authorization/...): one route
// table assembled from the managers' routes (vaults, identities, workloads,
// role assignments and definitions, event subscriptions, tags). Every
// request goes through the same stages:
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
  struct Hooks {
    // The role a roleAssignments write or delete assigns or removes, for
    // delegation conditions ("" when none).
    std::function<std::string(const http::Request&, const http::PathParams&)> assigned_role;
  };

  ArmPlane(Config config, Authenticator& authenticator, const authz::Authorizer& authorizer,
           std::vector<mgmt::ArmRoute> routes, Hooks hooks);
  ArmPlane(const ArmPlane&) = delete;
  ArmPlane& operator=(const ArmPlane&) = delete;

  http::Response Handle(const http::Request& request, AuditNote& note) const;

  const std::vector<mgmt::ArmRoute>& routes() const { return routes_; }

 private:
  // The linked checks of one request by `caller` (mgmt::LinkedCheck).
  mgmt::LinkedCheck LinkedFor(const Caller& caller, std::string action, std::string scope) const;
  void FilterList(const authz::Principal& who, http::Response& response) const;
  // 401 InvalidAuthenticationToken with ARM's challenge, or the failure
  // itself when it is not the token's (storage unavailable: 503).
  http::Response InvalidToken(const Status& why) const;

  const Config config_;
  Authenticator& authenticator_;
  const authz::Authorizer& authorizer_;
  const std::vector<mgmt::ArmRoute> routes_;
  const Hooks hooks_;
  const http::RouteTable table_;
};

// The audit operationName of an ARM request: Key Vault's names for vault
// operations (VaultGet, VaultPut, ...), else the action itself.
std::string ArmOperationName(std::string_view method, std::string_view action, bool collection);

}  // namespace coffer::server
