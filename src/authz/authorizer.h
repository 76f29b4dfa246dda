#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "authz/permissions.h"
#include "authz/roles.h"
#include "common/status.h"
#include "storage/store.h"

namespace coffer::authz {

enum class Model { kAccessPolicy, kRbac };
std::string_view ModelName(Model model);  // "access policies" | "Azure RBAC"

// Why a decision went the way it did. The names are stable: audit records,
// denials and `coffer authz explain` carry them.
enum class Reason {
  kAccessPolicyMatch,            // an entry for the principal grants the permission
  kNoAccessPolicy,               // no entry names the principal
  kAccessPolicyLacksPermission,  // entries name it, none grants the permission
  kRoleAssignmentMatch,          // an assignment covering the resource grants the action
  kNoRoleAssignment,             // no assignment of the principal covers the resource
  kRoleLacksAction,              // assignments cover it, none grants the action
  kConditionNotMet,              // only a conditional grant covers it, and its condition fails
};
std::string_view ReasonName(Reason reason);

// The authenticated caller, as its token names it.
struct Principal {
  std::string_view object_id;
  std::string_view app_id;
  std::string_view tenant_id;
};

// One policy entry or role assignment looked at while deciding.
struct Considered {
  std::string source;   // "accessPolicy" or "roleAssignment"
  std::string id;       // "accessPolicies[3]" or the assignment's id
  std::string role;     // role name (assignments)
  std::string scope;    // assignment scope (assignments)
  bool covers = false;  // names the principal and covers the resource
  bool grants = false;  // and grants what was asked
  std::string note;     // what it grants, or why it does not apply
};

struct Decision {
  bool allowed = false;
  Model model = Model::kRbac;
  Reason reason = Reason::kNoRoleAssignment;
  // The entry that granted: "accessPolicies[i]" or an assignment id.
  std::string applied;
  // Filled only when explaining: every entry that names the principal.
  std::vector<Considered> considered;
};

// The vault side of a data-plane check.
struct VaultContext {
  bool rbac = false;
  const AccessPolicySet* policies = nullptr;
  std::string_view resource_id;  // the vault's ARM id, any case
};

// Authorizer decides every data-plane and management-plane request
// (docs/authorization.md). Role definitions and assignments are held in an
// immutable snapshot, replaced whole by Reload, so a decision never blocks
// and never touches storage; access policies come with the vault.
//
// Thread-safe. `store` must outlive it.
class Authorizer {
 public:
  explicit Authorizer(storage::Store& store);

  // Reload re-reads custom roles and assignments. Call after every change.
  Status Reload();

  // Data plane: may `who` perform `op` on the vault (and on the object
  // `object_name`, when the operation names one)? A name holding '/' is
  // decided at the vault's scope.
  Decision CheckData(const Principal& who, const VaultContext& vault, const DataOperation& op,
                     std::string_view object_name, bool explain = false) const;

  // CheckDataInVault: may `who` perform `op` on the vault or on at least
  // one object in it? Access policies are vault-wide, so this is CheckData
  // at the vault's scope; under RBAC an assignment on one of the vault's
  // objects also counts, besides those at or above the vault. For deciding
  // whether a caller may ask at all (the watch stream), never for an object.
  Decision CheckDataInVault(const Principal& who, const VaultContext& vault,
                            const DataOperation& op) const;

  // Management plane: may `who` perform `action` on the resource `scope`?
  // For role-assignment writes and deletes, `assigned_role_id` is the role
  // being assigned or removed (delegation conditions look at it).
  Decision CheckAction(const Principal& who, std::string_view action, std::string_view scope,
                       std::string_view assigned_role_id = {}, bool explain = false) const;

  // HoldsRoleWithin: does `who` hold any role assignment at, above or below
  // `scope`? What makes ARM list a subscription to a caller (az login's
  // GET /subscriptions), whatever the roles grant.
  bool HoldsRoleWithin(const Principal& who, std::string_view scope) const;

  // The role with this id (built-in or custom), or nullptr.
  std::shared_ptr<const RoleDefinition> FindRole(std::string_view id) const;
  // Every role, built-in first.
  std::vector<std::shared_ptr<const RoleDefinition>> Roles() const;

 private:
  struct Assignment {
    std::string id;
    std::string scope;      // as given
    std::string scope_key;  // lower-case
    std::shared_ptr<const RoleDefinition> role;
  };
  struct Snapshot {
    uint64_t generation = 0;  // unique among all snapshots of all Authorizers
    std::vector<std::shared_ptr<const RoleDefinition>> roles;
    std::unordered_map<std::string, std::shared_ptr<const RoleDefinition>> roles_by_id;
    // key: lower-case oid
    std::unordered_map<std::string, std::vector<Assignment>, StringHash, std::equal_to<>>
        by_principal;
  };
  // Current is the latest snapshot, kept per thread until a newer one is
  // published, so a decision touches no shared reference count.
  const Snapshot& Current() const;
  void Publish(std::shared_ptr<Snapshot> snapshot);
  // `resource_key` is lower-case (storage::RoleScopeKey).
  // With `or_below`, an assignment at a scope below the resource covers it
  // too.
  Decision CheckRbac(const Principal& who, std::string_view action, bool data,
                     std::string_view resource_key, std::string_view assigned_role_id, bool explain,
                     bool or_below = false) const;

  storage::Store& store_;
  std::atomic<std::shared_ptr<const Snapshot>> snapshot_;
  std::atomic<uint64_t> generation_{0};  // snapshot_->generation
};

// Covers reports whether an assignment at `scope_key` applies to the
// resource `resource_key`: the same resource or one below it. Both are
// lower-case (storage::RoleScopeKey).
bool Covers(std::string_view scope_key, std::string_view resource_key);

// AssignableAt reports whether `role` may be assigned at `scope_key` (lower-case,
// storage::RoleScopeKey): one of its assignable scopes covers it. Built-in
// roles are assignable everywhere.
bool AssignableAt(const RoleDefinition& role, std::string_view scope_key);

}  // namespace coffer::authz
