#pragma once

#include <optional>
#include <string>

#include "authz/authorizer.h"
#include "common/clock.h"
#include "http/message.h"
#include "mgmt/arm.h"
#include "mgmt/arm_routes.h"
#include "storage/store.h"

namespace coffer::mgmt {

// RoleManager is the ARM-shaped Microsoft.Authorization provider:
//   {scope}/providers/Microsoft.Authorization/roleDefinitions[/{id}]  GET PUT DELETE
//   {scope}/providers/Microsoft.Authorization/roleAssignments[/{id}]  GET PUT DELETE
// where {scope} is the subscription, a resource group, a resource or a
// secret (`.../vaults/{v}/secrets/{name}`), with Azure's shapes, $filter
// values and error codes (docs/authorization.md). Every change reloads the
// Authorizer. Authorization of the request itself is the caller's job,
// except that writing a custom role also needs roleDefinitions/write (and
// deleting it roleDefinitions/delete) on each of its assignable scopes, old
// and new, which it asks the request's linked checks.
//
// Thread-safe. The referenced objects must outlive it.
class RoleManager {
 public:
  RoleManager(std::string subscription_id, std::string tenant_id, storage::Store& store,
              authz::Authorizer& authorizer, const Clock& clock);

  // The Microsoft.Authorization operations of the management plane's route
  // table.
  std::vector<ArmRoute> Routes();

  // AssignedRole returns the role id a roleAssignments PUT assigns or a
  // DELETE removes (the route's {id}), for delegation conditions; "" when
  // there is none.
  std::string AssignedRole(const http::Request& request, const http::PathParams& params);

  // ScopeExists checks that a scope names something that exists: this
  // subscription, a resource group holding a resource, a vault, a secret,
  // an identity or a workload. kNotFound / kInvalidArgument otherwise.
  Status ScopeExists(const std::string& scope);

  // Assign creates an assignment as an ARM PUT would (used at bootstrap).
  StatusOr<storage::RoleAssignmentRecord> Assign(const std::string& scope,
                                                 const std::string& role_id,
                                                 const std::string& principal_id,
                                                 const std::string& created_by);

 private:
  struct Target {
    std::string scope;  // "/subscriptions/..." as requested, or "" for the root
    bool definitions = false;
    std::string name;  // "" for the collection
  };
  http::Response Assignments(const http::Request& request, const Target& target,
                             const authz::Principal& caller);
  http::Response Definitions(const http::Request& request, const Target& target,
                             const LinkedCheck& linked);
  // Changed reloads the Authorizer after a committed change and returns
  // `answer`, or the error if the reload failed.
  http::Response Changed(http::Response answer);
  Json AssignmentToArm(const storage::RoleAssignmentRecord& a) const;
  std::string RoleDefinitionPath(const std::string& id) const;
  StatusOr<storage::RoleAssignmentRecord> Validate(const Target& target, const Json& body,
                                                   const std::string& created_by);

  const std::string subscription_id_;
  const std::string tenant_id_;
  storage::Store& store_;
  authz::Authorizer& authorizer_;
  const Clock& clock_;
};

// IsGuid: 8-4-4-4-12 hexadecimal digits.
bool IsGuid(std::string_view s);

}  // namespace coffer::mgmt
