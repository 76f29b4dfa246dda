#include "mgmt/role_manager.h"

#include "common/strings.h"
#include "common/time_format.h"
#include "crypto/primitives.h"
#include "mgmt/arm.h"

namespace coffer::mgmt {
namespace {

constexpr char kProvider[] = "/providers/Microsoft.Authorization/";
constexpr std::string_view kPrincipalTypes[] = {"User", "Group", "ServicePrincipal", "ForeignGroup",
                                                "Device"};

http::Response Error(int status, const std::string& code, const std::string& message) {
  return http::ErrorResponse(status, code, message);
}

// The lower-case GUID at the end of a role definition id, or "".
std::string RoleIdOf(const std::string& role_definition_id) {
  std::string id = NameOf(role_definition_id);
  if (!IsGuid(id)) {
    return "";
  }
  std::string prefix = role_definition_id.substr(0, role_definition_id.size() - id.size());
  if (!EndsWith(AsciiLower(prefix), "/providers/microsoft.authorization/roledefinitions/")) {
    return "";
  }
  return AsciiLower(id);
}

// Splits an OData $filter into its and-ed clauses.
std::vector<std::string> Clauses(std::string_view filter) {
  std::vector<std::string> out;
  std::string lower = AsciiLower(filter);
  size_t start = 0;
  while (true) {
    size_t at = lower.find(" and ", start);
    std::string_view part = TrimWhitespace(
        filter.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (!part.empty()) {
      out.emplace_back(part);
    }
    if (at == std::string::npos) {
      return out;
    }
    start = at + 5;
  }
}

// The quoted value of `<name> eq '<value>'` or `<name>('<value>')`, or
// nullopt when `clause` is not that form.
std::optional<std::string> ClauseValue(std::string_view clause, std::string_view name) {
  std::string lower = AsciiLower(clause);
  std::string n = AsciiLower(name);
  std::string_view rest;
  if (StartsWith(lower, n + " eq ")) {
    rest = clause.substr(n.size() + 4);
  } else if (StartsWith(lower, n + "(") && EndsWith(clause, ")")) {
    rest = clause.substr(n.size() + 1, clause.size() - n.size() - 2);
  } else {
    return std::nullopt;
  }
  rest = TrimWhitespace(rest);
  if (rest.size() >= 2 && rest.front() == '\'' && rest.back() == '\'') {
    rest = rest.substr(1, rest.size() - 2);
  }
  return std::string(rest);
}

}  // namespace

bool IsGuid(std::string_view s) {
  if (s.size() != 36) {
    return false;
  }
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') {
        return false;
      }
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

RoleManager::RoleManager(std::string subscription_id, std::string tenant_id, storage::Store& store,
                         authz::Authorizer& authorizer, const Clock& clock)
    : subscription_id_(std::move(subscription_id)),
      tenant_id_(std::move(tenant_id)),
      store_(store),
      authorizer_(authorizer),
      clock_(clock) {}

std::string RoleManager::RoleDefinitionPath(const std::string& id) const {
  return "/subscriptions/" + subscription_id_ + kProvider + "roleDefinitions/" + id;
}

Json RoleManager::AssignmentToArm(const storage::RoleAssignmentRecord& a) const {
  return Json{{"id", a.scope + kProvider + "roleAssignments/" + a.id},
              {"name", a.id},
              {"type", "Microsoft.Authorization/roleAssignments"},
              {"properties",
               {{"roleDefinitionId", RoleDefinitionPath(a.role_definition_id)},
                {"principalId", a.principal_id},
                {"principalType", a.principal_type},
                {"scope", a.scope},
                {"description", a.description.empty() ? Json() : Json(a.description)},
                {"condition", Json()},
                {"conditionVersion", Json()},
                {"createdOn", FormatIsoTime(a.created)},
                {"updatedOn", FormatIsoTime(a.updated)},
                {"createdBy", a.created_by.empty() ? Json() : Json(a.created_by)},
                {"updatedBy", a.created_by.empty() ? Json() : Json(a.created_by)},
                {"delegatedManagedIdentityResourceId", Json()}}}};
}

Status RoleManager::ScopeExists(const std::string& scope) {
  auto parts = Split(scope, '/');
  // parts[0] is "" (the leading '/').
  if (parts.size() < 3 || !parts[0].empty() || !EqualsIgnoreCase(parts[1], "subscriptions")) {
    return InvalidArgumentError("The scope '" + scope.substr(0, 300) +
                                    "' is not valid: use the subscription, a resource group, a "
                                    "resource or a secret.",
                                "InvalidScope");
  }
  if (!EqualsIgnoreCase(parts[2], subscription_id_)) {
    return NotFoundError(
        "The subscription '" + std::string(parts[2]).substr(0, 64) + "' could not be found.",
        "SubscriptionNotFound");
  }
  if (parts.size() == 3) {
    return OkStatus();
  }
  if (parts.size() < 5 || !EqualsIgnoreCase(parts[3], "resourceGroups") ||
      !ValidResourceGroup(std::string(parts[4]))) {
    return InvalidArgumentError("The scope '" + scope.substr(0, 300) + "' is not valid.",
                                "InvalidScope");
  }
  std::string rg(parts[4]);
  std::string key = storage::RoleScopeKey(scope);
  ASSIGN_OR_RETURN(auto vaults, store_.ListVaults());
  ASSIGN_OR_RETURN(auto principals, store_.ListPrincipals());
  ASSIGN_OR_RETURN(auto workloads, store_.ListWorkloads());
  bool rg_used = false;
  std::vector<std::string> resources;
  for (const auto& v : vaults) {
    if (!v.deleted()) {
      resources.push_back(v.ResourceId());
    }
  }
  for (const auto& p : principals) {
    if (p.kind == "UserAssignedIdentity") {
      resources.push_back(p.resource_id);
    }
  }
  for (const auto& w : workloads) {
    resources.push_back(w.resource_id);
  }
  for (const auto& r : resources) {
    rg_used = rg_used || EqualsIgnoreCase(ResourceGroupOf(r), rg);
    if (storage::RoleScopeKey(r) == key) {
      return OkStatus();
    }
  }
  if (parts.size() == 5) {
    if (rg_used) {
      return OkStatus();
    }
    return NotFoundError("Resource group '" + rg + "' could not be found.",
                         "ResourceGroupNotFound");
  }
  // A secret: .../providers/Microsoft.KeyVault/vaults/{v}/secrets/{name}
  if (parts.size() == 11 && EqualsIgnoreCase(parts[5], "providers") &&
      EqualsIgnoreCase(parts[6], "Microsoft.KeyVault") && EqualsIgnoreCase(parts[7], "vaults") &&
      EqualsIgnoreCase(parts[9], "secrets")) {
    auto v = store_.GetVault(std::string(parts[8]));
    if (v.ok() && !v->deleted() && EqualsIgnoreCase(v->resource_group, rg)) {
      auto secret = store_.GetSecret(v->name, std::string(parts[10]), "", false);
      if (secret.ok()) {
        return OkStatus();
      }
      if (secret.status().code() != StatusCode::kNotFound) {
        return secret.status();
      }
    } else if (!v.ok() && v.status().code() != StatusCode::kNotFound) {
      return v.status();
    }
  }
  return NotFoundError("The resource '" + scope.substr(0, 300) + "' could not be found.",
                       "ResourceNotFound");
}

StatusOr<storage::RoleAssignmentRecord> RoleManager::Validate(const Target& target,
                                                              const Json& body,
                                                              const std::string& created_by) {
  if (!IsGuid(target.name)) {
    return InvalidArgumentError("The role assignment ID '" + target.name.substr(0, 100) +
                                    "' is not valid. The role assignment ID must be a GUID.",
                                "InvalidRoleAssignmentId");
  }
  if (!body.is_object() || !body.contains("properties") || !body["properties"].is_object()) {
    return InvalidArgumentError("The request body must be an object with 'properties'.",
                                "InvalidRequestContent");
  }
  const Json& in = body["properties"];
  std::string role_path = StringMember(in, "roleDefinitionId");
  std::string role_id = RoleIdOf(role_path);
  if (role_id.empty()) {
    return InvalidArgumentError(
        "properties.roleDefinitionId must be a role definition id, e.g. "
        "/subscriptions/<id>/providers/Microsoft.Authorization/roleDefinitions/<guid>.",
        "InvalidRoleDefinitionId");
  }
  auto role = authorizer_.FindRole(role_id);
  if (role == nullptr) {
    return InvalidArgumentError(
        "The specified role definition with ID '" + role_id + "' does not exist.",
        "RoleDefinitionDoesNotExist");
  }
  std::string principal_id = StringMember(in, "principalId");
  if (principal_id.empty() || principal_id.size() > 64) {
    return InvalidArgumentError("properties.principalId is required.", "InvalidPrincipalId");
  }
  auto principal = store_.GetPrincipal(principal_id);
  if (!principal.ok()) {
    if (principal.status().code() != StatusCode::kNotFound) {
      return principal.status();
    }
    return InvalidArgumentError("Principal " + principal_id.substr(0, 64) +
                                    " does not exist in the directory " + tenant_id_ +
                                    ". Check that you have the correct principal ID.",
                                "PrincipalNotFound");
  }
  // A person is a User to ARM; every other principal (apps and managed
  // identities) a ServicePrincipal, as in Entra.
  const std::string type = principal->kind == "User" ? "User" : "ServicePrincipal";
  if (auto it = in.find("principalType"); it != in.end() && !it->is_null()) {
    bool known = false;
    for (auto t : kPrincipalTypes) {
      known = known || (it->is_string() && EqualsIgnoreCase(it->get<std::string>(), t));
    }
    if (!known) {
      return InvalidArgumentError(
          "properties.principalType must be User, Group, ServicePrincipal, ForeignGroup or Device.",
          "InvalidPrincipalType");
    }
    if (!EqualsIgnoreCase(it->get<std::string>(), type)) {
      return InvalidArgumentError("The PrincipalId '" + principal_id + "' has type '" + type +
                                      "', which is different from "
                                      "specified PrincipalType '" +
                                      it->get<std::string>() + "'.",
                                  "UnmatchedPrincipalType");
    }
  }
  for (const char* f : {"condition", "conditionVersion"}) {
    if (auto it = in.find(f);
        it != in.end() && !it->is_null() && !(it->is_string() && it->get<std::string>().empty())) {
      return InvalidArgumentError("Conditions on role assignments are not supported.",
                                  "InvalidCondition");
    }
  }
  std::string description;
  if (auto it = in.find("description"); it != in.end() && !it->is_null()) {
    if (!it->is_string() || it->get<std::string>().size() > 2048) {
      return InvalidArgumentError(
          "properties.description must be a string of at most 2048 "
          "characters.",
          "InvalidRequestContent");
    }
    description = it->get<std::string>();
  }
  if (target.scope.empty()) {
    return InvalidArgumentError("Role assignments need a scope below /subscriptions.",
                                "InvalidScope");
  }
  RETURN_IF_ERROR(ScopeExists(target.scope));
  if (auto it = in.find("scope"); it != in.end() && !it->is_null()) {
    if (!it->is_string() ||
        storage::RoleScopeKey(it->get<std::string>()) != storage::RoleScopeKey(target.scope)) {
      return InvalidArgumentError("properties.scope must be the scope in the request path.",
                                  "InvalidScope");
    }
  }
  if (!authz::AssignableAt(*role, storage::RoleScopeKey(target.scope))) {
    return InvalidArgumentError("The role '" + role->role_name +
                                    "' is not available for assignment at scope '" + target.scope +
                                    "'.",
                                "RoleNotAssignableAtScope");
  }
  int64_t now = clock_.NowSeconds();
  storage::RoleAssignmentRecord a;
  a.id = AsciiLower(target.name);
  a.scope = target.scope;
  a.role_definition_id = role_id;
  a.principal_id = principal->object_id;
  a.principal_type = type;
  a.description = description;
  a.created_by = created_by;
  a.created = a.updated = now;
  return a;
}

StatusOr<storage::RoleAssignmentRecord> RoleManager::Assign(const std::string& scope,
                                                            const std::string& role_id,
                                                            const std::string& principal_id,
                                                            const std::string& created_by) {
  Target t{scope, false, crypto::RandomUuid()};
  Json body = {
      {"properties",
       {{"roleDefinitionId", RoleDefinitionPath(role_id)}, {"principalId", principal_id}}}};
  ASSIGN_OR_RETURN(auto a, Validate(t, body, created_by));
  RETURN_IF_ERROR(store_.CreateRoleAssignment(a));
  RETURN_IF_ERROR(authorizer_.Reload());
  return a;
}

http::Response RoleManager::Changed(http::Response answer) {
  // The change is committed; decisions must see it before the caller does.
  Status reloaded = authorizer_.Reload();
  return reloaded.ok() ? answer : ArmError(reloaded);
}

std::string RoleManager::AssignedRole(const http::Request& req, const http::PathParams& params) {
  std::string_view id = params.Get("id");
  if (id.empty()) {
    return "";
  }
  if (req.method == "PUT") {
    auto body = ParseJson(req.body);
    if (!body || !body->is_object() || !body->contains("properties") ||
        !(*body)["properties"].is_object()) {
      return "";
    }
    return RoleIdOf(StringMember((*body)["properties"], "roleDefinitionId"));
  }
  if (req.method == "DELETE") {
    auto all = store_.ListRoleAssignments();
    if (all.ok()) {
      for (const auto& a : *all) {
        if (EqualsIgnoreCase(a.id, id)) {
          return a.role_definition_id;
        }
      }
    }
  }
  return "";
}

std::vector<ArmRoute> RoleManager::Routes() {
  auto assignments = [this](const ArmCall& call) {
    Target t{std::string(call.params.Get("scope")), false, std::string(call.params.Get("id"))};
    return Assignments(call.request, t, call.caller);
  };
  auto definitions = [this](const ArmCall& call) {
    Target t{std::string(call.params.Get("scope")), true, std::string(call.params.Get("id"))};
    return Definitions(call.request, t, call.linked);
  };
  constexpr std::string_view kAssignments =
      "/{scope...}/providers/Microsoft.Authorization/roleAssignments";
  constexpr std::string_view kAssignment =
      "/{scope...}/providers/Microsoft.Authorization/roleAssignments/{id}";
  constexpr std::string_view kDefinitions =
      "/{scope...}/providers/Microsoft.Authorization/roleDefinitions";
  constexpr std::string_view kDefinition =
      "/{scope...}/providers/Microsoft.Authorization/roleDefinitions/{id}";
  return {
      {"GET", kAssignments, "Microsoft.Authorization/roleAssignments/read", true, assignments},
      {"GET", kAssignment, "Microsoft.Authorization/roleAssignments/read", false, assignments},
      {"PUT", kAssignment, "Microsoft.Authorization/roleAssignments/write", false, assignments},
      {"DELETE", kAssignment, "Microsoft.Authorization/roleAssignments/delete", false, assignments},
      {"GET", kDefinitions, "Microsoft.Authorization/roleDefinitions/read", true, definitions},
      {"GET", kDefinition, "Microsoft.Authorization/roleDefinitions/read", false, definitions},
      {"PUT", kDefinition, "Microsoft.Authorization/roleDefinitions/write", false, definitions},
      {"DELETE", kDefinition, "Microsoft.Authorization/roleDefinitions/delete", false, definitions},
      // The tenant's role definitions, readable by every principal (an
      // empty action: no right needed beyond a valid token).
      {"GET", "/providers/Microsoft.Authorization/roleDefinitions", "", true, definitions},
      {"GET", "/providers/Microsoft.Authorization/roleDefinitions/{id}", "", false, definitions},
  };
}

http::Response RoleManager::Assignments(const http::Request& req, const Target& t,
                                        const authz::Principal& caller) {
  const std::string& m = req.method;
  auto all = store_.ListRoleAssignments();
  if (!all.ok()) {
    return ArmError(all.status());
  }
  std::string scope_key = storage::RoleScopeKey(t.scope.empty() ? "/" : t.scope);
  if (t.name.empty()) {
    if (m != "GET") {
      return Error(405, "MethodNotAllowed", "Only GET is allowed on a role assignment collection.");
    }
    bool at_scope = false;
    std::string principal;
    for (const auto& clause : Clauses(req.Query("$filter"))) {
      if (EqualsIgnoreCase(clause, "atScope()")) {
        at_scope = true;
      } else if (auto v = ClauseValue(clause, "principalId")) {
        principal = *v;
      } else if (auto w = ClauseValue(clause, "assignedTo")) {
        principal = *w;
      } else {
        return Error(400, "UnsupportedQuery",
                     "The $filter clause '" + clause.substr(0, 100) +
                         "' is not supported. Use atScope(), principalId eq '{id}' or "
                         "assignedTo('{id}').");
      }
    }
    Json items = Json::array();
    for (const auto& a : *all) {
      std::string key = storage::RoleScopeKey(a.scope);
      bool above = authz::Covers(key, scope_key);
      bool below = authz::Covers(scope_key, key);
      if (!(above || (below && !at_scope))) {
        continue;
      }
      if (!principal.empty() && !EqualsIgnoreCase(principal, a.principal_id)) {
        continue;
      }
      items.push_back(AssignmentToArm(a));
    }
    return http::JsonResponse(200, ToJson(Json{{"value", items}}));
  }
  const storage::RoleAssignmentRecord* found = nullptr;
  for (const auto& a : *all) {
    if (EqualsIgnoreCase(a.id, t.name)) {
      found = &a;
    }
  }
  bool here = found != nullptr && storage::RoleScopeKey(found->scope) == scope_key;
  if (m == "GET") {
    if (!here) {
      return Error(404, "RoleAssignmentNotFound",
                   "The role assignment '" + t.name.substr(0, 100) + "' is not found.");
    }
    return http::JsonResponse(200, ToJson(AssignmentToArm(*found)));
  }
  if (m == "DELETE") {
    if (!here) {
      return http::EmptyResponse(204);
    }
    storage::RoleAssignmentRecord gone = *found;
    Status deleted = store_.DeleteRoleAssignment(gone.id);
    if (!deleted.ok() && deleted.code() != StatusCode::kNotFound) {
      return ArmError(deleted);
    }
    return Changed(http::JsonResponse(200, ToJson(AssignmentToArm(gone))));
  }
  if (m != "PUT") {
    return Error(405, "MethodNotAllowed", "Method " + m + " is not allowed on a role assignment.");
  }
  auto body = ParseJson(req.body);
  if (!body) {
    return Error(400, "InvalidRequestContent", "The request content is not valid JSON.");
  }
  auto a = Validate(t, *body, std::string(caller.object_id));
  if (!a.ok()) {
    return ArmError(a.status());
  }
  if (found != nullptr) {
    if (here && found->principal_id == a->principal_id &&
        found->role_definition_id == a->role_definition_id) {
      return http::JsonResponse(200, ToJson(AssignmentToArm(*found)));
    }
    return Error(400, "RoleAssignmentUpdateNotPermitted",
                 "Tenant ID, application ID, principal ID, and scope are not allowed to be "
                 "updated.");
  }
  Status created = store_.CreateRoleAssignment(*a);
  if (!created.ok()) {
    if (created.code() == StatusCode::kAlreadyExists) {
      std::string existing;
      for (const auto& other : *all) {
        if (other.principal_id == a->principal_id &&
            other.role_definition_id == a->role_definition_id &&
            storage::RoleScopeKey(other.scope) == scope_key) {
          existing = other.id;
        }
      }
      return Error(
          409, "RoleAssignmentExists",
          "The role assignment already exists." +
              (existing.empty() ? ""
                                : " The ID of the existing role assignment is " + existing + "."));
    }
    return ArmError(created);
  }
  return Changed(http::JsonResponse(201, ToJson(AssignmentToArm(*a))));
}

http::Response RoleManager::Definitions(const http::Request& req, const Target& t,
                                        const LinkedCheck& linked) {
  const std::string& m = req.method;
  std::string prefix = t.scope.empty() ? "" : "/subscriptions/" + subscription_id_;
  if (t.name.empty()) {
    if (m != "GET") {
      return Error(405, "MethodNotAllowed", "Only GET is allowed on a role definition collection.");
    }
    std::string name, type;
    for (const auto& clause : Clauses(req.Query("$filter"))) {
      if (auto v = ClauseValue(clause, "roleName")) {
        name = *v;
      } else if (auto w = ClauseValue(clause, "type")) {
        type = *w;
      } else {
        return Error(400, "UnsupportedQuery",
                     "The $filter clause '" + clause.substr(0, 100) +
                         "' is not supported. Use roleName eq '{name}' or type eq "
                         "'BuiltInRole'|'CustomRole'.");
      }
    }
    Json items = Json::array();
    for (const auto& role : authorizer_.Roles()) {
      if (!name.empty() && !EqualsIgnoreCase(name, role->role_name)) {
        continue;
      }
      if (!type.empty() && !EqualsIgnoreCase(type, role->built_in ? "BuiltInRole" : "CustomRole")) {
        continue;
      }
      items.push_back(authz::RoleDefinitionToArm(*role, prefix));
    }
    return http::JsonResponse(200, ToJson(Json{{"value", items}}));
  }
  std::string id = AsciiLower(t.name);
  auto existing = authorizer_.FindRole(id);
  if (m == "GET") {
    if (existing == nullptr) {
      return Error(
          404, "RoleDefinitionDoesNotExist",
          "The specified role definition with ID '" + t.name.substr(0, 100) + "' does not exist.");
    }
    return http::JsonResponse(200, ToJson(authz::RoleDefinitionToArm(*existing, prefix)));
  }
  if (existing != nullptr && existing->built_in && (m == "PUT" || m == "DELETE")) {
    return Error(400, "BuiltInRoleCannotBeModified",
                 "The role '" + existing->role_name + "' is built in and cannot be changed.");
  }
  if (m == "DELETE") {
    if (existing == nullptr) {
      return http::EmptyResponse(204);
    }
    Status deleted = store_.DeleteRoleDefinition(id, [&](const storage::RoleDefinitionRecord& rec) {
      ASSIGN_OR_RETURN(
          authz::RoleDefinition stored,
          authz::CustomRoleFromJson(rec.id, rec.definition_json, rec.created, rec.updated));
      RETURN_IF_ERROR(CheckPreconditions(req, rec.version));
      // SECURITY: a role is deleted wherever it can be assigned, so deleting
      // it needs the right at each of those scopes, not only where it is
      // named. The stored definition is the one checked.
      for (const auto& scope : stored.assignable_scopes) {
        RETURN_IF_ERROR(linked("Microsoft.Authorization/roleDefinitions/delete", scope));
      }
      return OkStatus();
    });
    if (!deleted.ok()) {
      if (deleted.code() == StatusCode::kFailedPrecondition &&
          deleted.reason() != "PreconditionFailed") {
        return Error(409, "RoleDefinitionHasAssignments", std::string(deleted.message()));
      }
      if (deleted.code() != StatusCode::kNotFound || !deleted.reason().empty()) {
        return ArmError(deleted);
      }
    }
    return Changed(http::JsonResponse(200, ToJson(authz::RoleDefinitionToArm(*existing, prefix))));
  }
  if (m != "PUT") {
    return Error(405, "MethodNotAllowed", "Method " + m + " is not allowed on a role definition.");
  }
  if (!IsGuid(t.name)) {
    return Error(400, "InvalidRoleDefinitionId",
                 "The role definition ID '" + t.name.substr(0, 100) + "' must be a GUID.");
  }
  auto body = ParseJson(req.body);
  if (!body) {
    return Error(400, "InvalidRequestContent", "The request content is not valid JSON.");
  }
  auto role = authz::CustomRoleFromArm(id, *body);
  if (!role.ok()) {
    return ArmError(role.status());
  }
  for (const auto& scope : role->assignable_scopes) {
    Status exists = ScopeExists(scope);
    if (!exists.ok()) {
      return ArmError(Status(exists.code(),
                             "Assignable scope '" + scope.substr(0, 300) +
                                 "' is not valid: " + std::string(exists.message()),
                             "InvalidAssignableScopes"));
    }
  }
  for (const auto& other : authorizer_.Roles()) {
    if (other->built_in && EqualsIgnoreCase(other->role_name, role->role_name)) {
      return Error(409, "RoleDefinitionWithSameNameExists",
                   "A role named '" + role->role_name + "' already exists. Use a different name.");
    }
  }
  // Assignments are read first; one made in a race with a narrowing never
  // grants outside the role's assignable scopes (authz::AssignableAt).
  auto assignments = store_.ListRoleAssignments();
  if (!assignments.ok()) {
    return ArmError(assignments.status());
  }
  int64_t now = clock_.NowSeconds();
  auto put = store_.PutRoleDefinition(
      id,
      [&](const std::optional<storage::RoleDefinitionRecord>& current)
          -> StatusOr<storage::RoleDefinitionRecord> {
        RETURN_IF_ERROR(CheckPreconditions(
            req, current ? std::optional<int64_t>(current->version) : std::nullopt));
        // SECURITY: a role definition applies at every scope it can be
        // assigned at, before and after the change. Writing it needs the
        // right at each of them, so a narrow scope cannot rewrite a role
        // that is assigned wider. The stored definition is the one checked.
        std::vector<std::string> scopes = role->assignable_scopes;
        std::optional<authz::RoleDefinition> old;
        if (current) {
          ASSIGN_OR_RETURN(old, authz::CustomRoleFromJson(current->id, current->definition_json,
                                                          current->created, current->updated));
          scopes.insert(scopes.end(), old->assignable_scopes.begin(), old->assignable_scopes.end());
        }
        for (const auto& scope : scopes) {
          RETURN_IF_ERROR(linked("Microsoft.Authorization/roleDefinitions/write", scope));
        }
        if (old) {
          // A role cannot be narrowed away from where it is assigned.
          for (const auto& a : *assignments) {
            if (a.role_definition_id == id &&
                !authz::AssignableAt(*role, storage::RoleScopeKey(a.scope))) {
              return FailedPreconditionError(
                  "The role '" + old->role_name + "' is assigned at scope '" + a.scope +
                      "' (assignment " + a.id +
                      "), outside the new assignable scopes. Remove the assignment first.",
                  "RoleDefinitionHasAssignments");
            }
          }
        }
        return storage::RoleDefinitionRecord{id, role->role_name, authz::CustomRoleToJson(*role),
                                             current ? current->created : now, now};
      });
  if (!put.ok()) {
    return ArmError(put.status());
  }
  role->created = put->created;
  role->updated = put->updated;
  http::Response r = http::JsonResponse(201, ToJson(authz::RoleDefinitionToArm(*role, prefix)));
  r.SetHeader("ETag", ETag(put->version));
  return Changed(std::move(r));
}

}  // namespace coffer::mgmt
