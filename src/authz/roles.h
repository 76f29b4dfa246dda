#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace coffer::authz {

// One permissions block of a role: effective actions are those matching
// `actions` and no `not_actions` (the same for data actions). Patterns are
// Azure's: case-insensitive, '*' matches any run of characters.
struct RolePermission {
  std::vector<std::string> actions;
  std::vector<std::string> not_actions;
  std::vector<std::string> data_actions;
  std::vector<std::string> not_data_actions;
};

// A role definition: one of Azure's built-in roles, or a custom role.
struct RoleDefinition {
  std::string id;  // GUID, lower-case
  std::string role_name;
  std::string description;
  bool built_in = false;
  std::vector<RolePermission> permissions;
  std::vector<std::string> assignable_scopes;  // "/" for built-in roles
  // Built-in roles with a delegation condition (Key Vault Data Access
  // Administrator) may write and delete only assignments of these roles.
  // Empty when the role has no condition.
  std::vector<std::string> delegable_role_ids;
  int64_t created = 0;
  int64_t updated = 0;
};

// Azure's built-in roles Coffer knows, with Azure's names, GUIDs, actions
// and data actions (docs/authorization.md).
std::span<const RoleDefinition> BuiltInRoles();

// ActionMatches applies an Azure action pattern to an action.
bool ActionMatches(std::string_view pattern, std::string_view action);

// Grants reports whether `role` grants `action` (a control-plane action, or
// a data action when `data`).
bool Grants(const RoleDefinition& role, std::string_view action, bool data);

// The condition Azure attaches to a delegating role's permissions, spelled
// as Azure spells it, built from delegable_role_ids.
std::string DelegationCondition(const RoleDefinition& role);

// RoleDefinitionToArm renders the ARM resource. `scope` prefixes the id
// ("/subscriptions/<s>"); "" gives "/providers/Microsoft.Authorization/...".
Json RoleDefinitionToArm(const RoleDefinition& role, std::string_view scope);

// CustomRoleFromArm validates an ARM roleDefinitions PUT body (properties:
// roleName, description, type, permissions, assignableScopes). Actions are
// checked for shape; data actions must name Key Vault data actions
// (wildcards must match at least one). kInvalidArgument names the fault.
StatusOr<RoleDefinition> CustomRoleFromArm(const std::string& id, const Json& body);

// The stored form of a custom role's definition, and back.
std::string CustomRoleToJson(const RoleDefinition& role);
StatusOr<RoleDefinition> CustomRoleFromJson(const std::string& id, const std::string& json,
                                            int64_t created, int64_t updated);

}  // namespace coffer::authz
