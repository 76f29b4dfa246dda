#pragma once

#include <functional>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/json.h"
#include "http/message.h"
#include "mgmt/arm_routes.h"
#include "storage/store.h"

namespace coffer::mgmt {

// IdentityManager is the ARM-shaped management plane for user-assigned
// managed identities (Microsoft.ManagedIdentity):
//   PUT|PATCH|GET|DELETE /subscriptions/{s}/resourceGroups/{rg}/providers/
//                        Microsoft.ManagedIdentity/userAssignedIdentities/{name}
//   GET .../resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities
//   GET /subscriptions/{s}/providers/Microsoft.ManagedIdentity/userAssignedIdentities
//   PUT|GET|DELETE .../userAssignedIdentities/{name}/federatedIdentityCredentials/{fic}
//   GET .../userAssignedIdentities/{name}/federatedIdentityCredentials
// Each identity is a principal of the directory (kind "UserAssignedIdentity")
// with its own principalId (object id) and clientId, and it lives until it
// is deleted explicitly (docs/identities.md). Authorization is the caller's
// job.
//
// Thread-safe. The referenced objects must outlive it.
class IdentityManager {
 public:
  IdentityManager(std::string subscription_id, std::string tenant_id, storage::Store& store,
                  const Clock& clock, std::function<void(const std::string&)> on_deleted);

  // The identity operations of the management plane's route table.
  std::vector<ArmRoute> Routes();

  Json ToArm(const storage::PrincipalRecord& identity) const;

 private:
  http::Response List(const ArmCall& call);
  http::Response Get(const ArmCall& call);
  http::Response Put(const ArmCall& call);  // and PATCH
  // `attempt` 1 is the retry of a create that lost a race with another.
  http::Response Put(const ArmCall& call, int attempt);
  http::Response Delete(const ArmCall& call);
  http::Response ListFederated(const ArmCall& call);
  http::Response Federated(const ArmCall& call);  // GET, PUT, DELETE of one
  // The identity {rg}/{name} (nullopt when absent); kInvalidArgument for a
  // malformed group or name.
  StatusOr<std::optional<storage::PrincipalRecord>> FindNamed(const ArmCall& call);
  Status NotFound(const ArmCall& call) const;
  Json FederatedToArm(const storage::PrincipalRecord& identity,
                      const storage::FederatedCredentialRecord& credential) const;
  StatusOr<std::optional<storage::PrincipalRecord>> Find(const std::string& resource_group,
                                                         const std::string& name);

  const std::string subscription_id_;
  const std::string tenant_id_;
  storage::Store& store_;
  const Clock& clock_;
  std::function<void(const std::string&)> on_deleted_;
};

}  // namespace coffer::mgmt
