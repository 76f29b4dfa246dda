#include "authz/authorizer.h"

#include "common/strings.h"

namespace coffer::authz {
namespace {

std::atomic<uint64_t> next_generation{1};

// Azure's built-in roles, shared by every snapshot.
const std::vector<std::shared_ptr<const RoleDefinition>>& SharedBuiltIns() {
  static const auto* roles = [] {
    auto* out = new std::vector<std::shared_ptr<const RoleDefinition>>;
    for (const auto& role : BuiltInRoles()) {
      out->push_back(std::make_shared<const RoleDefinition>(role));
    }
    return out;
  }();
  return *roles;
}

bool HasUpper(std::string_view s) {
  for (char c : s) {
    if (c >= 'A' && c <= 'Z') {
      return true;
    }
  }
  return false;
}

bool IsRoleAssignmentWrite(std::string_view action) {
  return EqualsIgnoreCase(action, "Microsoft.Authorization/roleAssignments/write") ||
         EqualsIgnoreCase(action, "Microsoft.Authorization/roleAssignments/delete");
}

std::string PermissionList(ObjectType type, PermissionSet set) {
  std::string out;
  auto names = PermissionNames(type);
  for (size_t i = 0; i < names.size(); ++i) {
    if (set & (PermissionSet{1} << i)) {
      out += (out.empty() ? "" : ", ") + std::string(names[i]);
    }
  }
  return out.empty() ? "nothing" : out;
}

}  // namespace

bool AssignableAt(const RoleDefinition& role, std::string_view scope_key) {
  for (const auto& s : role.assignable_scopes) {
    if (Covers(storage::RoleScopeKey(s), scope_key)) {
      return true;
    }
  }
  return false;
}

std::string_view ModelName(Model model) {
  return model == Model::kRbac ? "Azure RBAC" : "access policies";
}

std::string_view ReasonName(Reason reason) {
  switch (reason) {
    case Reason::kAccessPolicyMatch:
      return "AccessPolicyMatch";
    case Reason::kNoAccessPolicy:
      return "NoAccessPolicy";
    case Reason::kAccessPolicyLacksPermission:
      return "AccessPolicyLacksPermission";
    case Reason::kRoleAssignmentMatch:
      return "RoleAssignmentMatch";
    case Reason::kNoRoleAssignment:
      return "NoRoleAssignment";
    case Reason::kRoleLacksAction:
      return "RoleLacksAction";
    case Reason::kConditionNotMet:
      return "ConditionNotMet";
  }
  return "";
}

bool Covers(std::string_view scope_key, std::string_view resource_key) {
  if (scope_key == "/") {
    return true;
  }
  if (!resource_key.starts_with(scope_key)) {
    return false;
  }
  return resource_key.size() == scope_key.size() || resource_key[scope_key.size()] == '/';
}

Authorizer::Authorizer(storage::Store& store) : store_(store) {
  auto builtins = std::make_shared<Snapshot>();
  for (const auto& role : SharedBuiltIns()) {
    builtins->roles.push_back(role);
    builtins->roles_by_id[role->id] = role;
  }
  Publish(std::move(builtins));
}

void Authorizer::Publish(std::shared_ptr<Snapshot> snapshot) {
  snapshot->generation = next_generation.fetch_add(1);
  uint64_t generation = snapshot->generation;
  snapshot_.store(std::move(snapshot));
  generation_.store(generation, std::memory_order_release);
}

const Authorizer::Snapshot& Authorizer::Current() const {
  struct Cached {
    uint64_t generation = 0;
    std::shared_ptr<const Snapshot> snapshot;
  };
  thread_local Cached cached;
  if (cached.generation != generation_.load(std::memory_order_acquire)) {
    cached.snapshot = snapshot_.load();
    cached.generation = cached.snapshot->generation;
  }
  return *cached.snapshot;
}

Status Authorizer::Reload() {
  auto next = std::make_shared<Snapshot>();
  for (const auto& role : SharedBuiltIns()) {
    next->roles.push_back(role);
    next->roles_by_id[role->id] = role;
  }
  ASSIGN_OR_RETURN(auto customs, store_.ListRoleDefinitions());
  for (const auto& rec : customs) {
    ASSIGN_OR_RETURN(RoleDefinition role,
                     CustomRoleFromJson(rec.id, rec.definition_json, rec.created, rec.updated));
    auto shared = std::make_shared<const RoleDefinition>(std::move(role));
    next->roles.push_back(shared);
    next->roles_by_id[rec.id] = shared;
  }
  ASSIGN_OR_RETURN(auto assignments, store_.ListRoleAssignments());
  for (const auto& a : assignments) {
    auto role = next->roles_by_id.find(a.role_definition_id);
    if (role == next->roles_by_id.end()) {
      continue;  // a role deleted under it cannot grant anything
    }
    std::string scope_key = storage::RoleScopeKey(a.scope);
    if (!AssignableAt(*role->second, scope_key)) {
      // SECURITY: a role narrowed (or an assignment made in a race with the
      // narrowing) never grants outside its assignable scopes.
      continue;
    }
    next->by_principal[AsciiLower(a.principal_id)].push_back(
        {a.id, a.scope, std::move(scope_key), role->second});
  }
  Publish(std::move(next));
  return OkStatus();
}

std::shared_ptr<const RoleDefinition> Authorizer::FindRole(std::string_view id) const {
  auto snap = snapshot_.load();
  auto it = snap->roles_by_id.find(AsciiLower(id));
  return it == snap->roles_by_id.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<const RoleDefinition>> Authorizer::Roles() const {
  return snapshot_.load()->roles;
}

Decision Authorizer::CheckData(const Principal& who, const VaultContext& vault,
                               const DataOperation& op, std::string_view object_name,
                               bool explain) const {
  if (vault.rbac) {
    std::string resource(vault.resource_id);
    // SECURITY: a name holding '/' is no object's name (the API refuses
    // it); it must not reach below an object-scope assignment of another
    // name ("s/../t" under ".../secrets/s"), so it is decided vault-wide.
    if (op.on_object && !object_name.empty() && object_name.find('/') == std::string_view::npos) {
      resource += "/";
      resource += ObjectTypeName(op.type);
      resource += "/";
      resource += object_name;
    }
    for (char& ch : resource) {
      ch = AsciiToLower(ch);  // scopes compare lower-case: one pass, then memcmp
    }
    return CheckRbac(who, op.data_action, true, resource, {}, explain);
  }
  Decision d;
  d.model = Model::kAccessPolicy;
  d.reason = Reason::kNoAccessPolicy;
  if (vault.policies == nullptr) {
    return d;
  }
  const int type = static_cast<int>(op.type);
  const auto& index = vault.policies->by_object;
  auto mine =
      HasUpper(who.object_id) ? index.find(AsciiLower(who.object_id)) : index.find(who.object_id);
  if (mine == vault.policies->by_object.end()) {
    return d;
  }
  for (uint32_t i : mine->second) {
    const AccessPolicy& p = vault.policies->entries[i];
    Considered c;
    c.source = "accessPolicy";
    c.id = "accessPolicies[" + std::to_string(i) + "]";
    if (!EqualsIgnoreCase(p.tenant_id, who.tenant_id)) {
      c.note = "names the principal in another tenant";
    } else if (!p.application_id.empty() && !EqualsIgnoreCase(p.application_id, who.app_id)) {
      c.note = "compound identity: applies only through application " + p.application_id;
    } else {
      c.covers = true;
      c.grants = (p.granted[type] & op.bit) != 0;
      if (!d.allowed && d.reason == Reason::kNoAccessPolicy) {
        d.reason = Reason::kAccessPolicyLacksPermission;
      }
      if (c.grants && !d.allowed) {
        d.allowed = true;
        d.reason = Reason::kAccessPolicyMatch;
        d.applied = c.id;
      }
      if (explain) {
        c.note =
            std::string(ObjectTypeName(op.type)) + ": " + PermissionList(op.type, p.granted[type]);
      }
    }
    if (explain) {
      d.considered.push_back(std::move(c));
    } else if (d.allowed) {
      return d;
    }
  }
  return d;
}

Decision Authorizer::CheckDataInVault(const Principal& who, const VaultContext& vault,
                                      const DataOperation& op) const {
  if (!vault.rbac) {
    return CheckData(who, vault, op, "");
  }
  return CheckRbac(who, op.data_action, true, AsciiLower(vault.resource_id), {}, false, true);
}

Decision Authorizer::CheckAction(const Principal& who, std::string_view action,
                                 std::string_view scope, std::string_view assigned_role_id,
                                 bool explain) const {
  return CheckRbac(who, action, false, storage::RoleScopeKey(scope), assigned_role_id, explain);
}

bool Authorizer::HoldsRoleWithin(const Principal& who, std::string_view scope) const {
  const Snapshot& snap = Current();
  auto it = snap.by_principal.find(AsciiLower(who.object_id));
  if (it == snap.by_principal.end()) {
    return false;
  }
  const std::string key = storage::RoleScopeKey(scope);
  for (const auto& a : it->second) {
    if (Covers(a.scope_key, key) || Covers(key, a.scope_key)) {
      return true;
    }
  }
  return false;
}

Decision Authorizer::CheckRbac(const Principal& who, std::string_view action, bool data,
                               std::string_view resource_key, std::string_view assigned_role_id,
                               bool explain, bool or_below) const {
  Decision d;
  d.model = Model::kRbac;
  d.reason = Reason::kNoRoleAssignment;
  const Snapshot& snap = Current();
  auto it = HasUpper(who.object_id) ? snap.by_principal.find(AsciiLower(who.object_id))
                                    : snap.by_principal.find(who.object_id);
  if (it == snap.by_principal.end()) {
    return d;
  }
  for (const Assignment& a : it->second) {
    bool covers =
        Covers(a.scope_key, resource_key) || (or_below && Covers(resource_key, a.scope_key));
    bool grants = covers && Grants(*a.role, action, data);
    bool condition_ok = true;
    if (grants && !data && !a.role->delegable_role_ids.empty() && IsRoleAssignmentWrite(action)) {
      condition_ok = false;
      for (const auto& id : a.role->delegable_role_ids) {
        condition_ok = condition_ok || EqualsIgnoreCase(id, assigned_role_id);
      }
    }
    if (covers && !d.allowed) {
      if (grants && condition_ok) {
        d.allowed = true;
        d.reason = Reason::kRoleAssignmentMatch;
        d.applied = a.id;
      } else if (grants) {
        d.reason = Reason::kConditionNotMet;
      } else if (d.reason == Reason::kNoRoleAssignment) {
        d.reason = Reason::kRoleLacksAction;
      }
    }
    if (explain) {
      Considered c;
      c.source = "roleAssignment";
      c.id = a.id;
      c.role = a.role->role_name;
      c.scope = a.scope;
      c.covers = covers;
      c.grants = grants && condition_ok;
      c.note = !covers         ? "scope does not cover the resource"
               : !grants       ? "role does not grant the action"
               : !condition_ok ? "role's condition allows assigning only Key Vault data roles"
                               : "grants the action";
      d.considered.push_back(std::move(c));
    } else if (d.allowed) {
      return d;
    }
  }
  return d;
}

}  // namespace coffer::authz
