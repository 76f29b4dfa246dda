#include "authz/roles.h"

#include "authz/permissions.h"
#include "common/strings.h"
#include "common/time_format.h"

namespace coffer::authz {
namespace {

constexpr char kBuiltInJson[] =
#include "authz/builtin_roles.inc"
    ;

// The control-plane actions Azure gives most Key Vault data roles ("KVCP"
// in builtin_roles.inc).
constexpr std::string_view kKeyVaultDataRoleActions[] = {
    "Microsoft.Authorization/*/read",
    "Microsoft.Insights/alertRules/*",
    "Microsoft.Resources/deployments/*",
    "Microsoft.Resources/subscriptions/resourceGroups/read",
    "Microsoft.Support/*",
    "Microsoft.KeyVault/checkNameAvailability/read",
    "Microsoft.KeyVault/deletedVaults/read",
    "Microsoft.KeyVault/locations/*/read",
    "Microsoft.KeyVault/vaults/*/read",
    "Microsoft.KeyVault/operations/read"};

constexpr size_t kMaxPatterns = 1000;
constexpr size_t kMaxPatternLength = 512;
constexpr size_t kMaxScopes = 100;

Status Invalid(const std::string& message, const std::string& code = "InvalidRoleDefinition") {
  return InvalidArgumentError(message, code);
}

StatusOr<std::vector<std::string>> Patterns(const Json& block, const char* field, bool data) {
  std::vector<std::string> out;
  auto it = block.find(field);
  if (it == block.end() || it->is_null()) {
    return out;
  }
  if (it->is_string() && it->get<std::string>() == "KVCP") {
    for (auto a : kKeyVaultDataRoleActions) {
      out.emplace_back(a);
    }
    return out;
  }
  if (!it->is_array() || it->size() > kMaxPatterns) {
    return Invalid(std::string("permissions.") + field + " must be an array of strings.");
  }
  for (const auto& p : *it) {
    if (!p.is_string() || p.get<std::string>().empty() ||
        p.get<std::string>().size() > kMaxPatternLength) {
      return Invalid(std::string("permissions.") + field +
                     " must hold non-empty strings of at most 512 characters.");
    }
    const std::string& s = p.get<std::string>();
    for (char c : s) {
      if (static_cast<unsigned char>(c) < 0x21 || c == '"' || c == '\\') {
        return Invalid(std::string("permissions.") + field + " holds an invalid action '" +
                           s.substr(0, 100) + "'.",
                       "InvalidActionOrNotAction");
      }
    }
    // Actions are "<Provider namespace>/<type>[/...]/<operation>" or '*'.
    if (s != "*" && s.find('/') == std::string::npos) {
      return Invalid("The action '" + s.substr(0, 100) + "' is not a valid action.",
                     "InvalidActionOrNotAction");
    }
    if (data) {
      bool known = false;
      for (auto k : KnownDataActions()) {
        known = known || ActionMatches(s, k);
      }
      if (!known) {
        return Invalid("The data action '" + s.substr(0, 100) +
                           "' matches no data action Coffer knows (Key Vault's "
                           "Microsoft.KeyVault/vaults/... data actions).",
                       "InvalidActionOrNotAction");
      }
    }
    out.push_back(s);
  }
  return out;
}

StatusOr<std::vector<RolePermission>> ParsePermissions(const Json& list) {
  if (!list.is_array() || list.empty() || list.size() > 10) {
    return Invalid("permissions must be an array of 1 to 10 permission blocks.");
  }
  std::vector<RolePermission> out;
  for (const auto& block : list) {
    if (!block.is_object()) {
      return Invalid("Each permissions block must be an object.");
    }
    if (block.contains("condition") && !block["condition"].is_null()) {
      return Invalid("Conditions in custom role definitions are not supported.",
                     "InvalidRoleDefinition");
    }
    RolePermission p;
    ASSIGN_OR_RETURN(p.actions, Patterns(block, "actions", false));
    ASSIGN_OR_RETURN(p.not_actions, Patterns(block, "notActions", false));
    ASSIGN_OR_RETURN(p.data_actions, Patterns(block, "dataActions", true));
    ASSIGN_OR_RETURN(p.not_data_actions, Patterns(block, "notDataActions", true));
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<RoleDefinition> LoadBuiltIns() {
  std::vector<RoleDefinition> roles;
  auto parsed = ParseJson(kBuiltInJson);
  for (const auto& r : *parsed) {
    RoleDefinition role;
    role.id = r["id"].get<std::string>();
    role.role_name = r["roleName"].get<std::string>();
    role.description = r["description"].get<std::string>();
    role.built_in = true;
    role.assignable_scopes = {"/"};
    for (const auto& block : r["permissions"]) {
      RolePermission p;
      p.actions = *Patterns(block, "actions", false);
      p.not_actions = *Patterns(block, "notActions", false);
      p.data_actions = *Patterns(block, "dataActions", false);
      p.not_data_actions = *Patterns(block, "notDataActions", false);
      role.permissions.push_back(std::move(p));
    }
    if (r.contains("delegable")) {
      for (const auto& id : r["delegable"]) {
        role.delegable_role_ids.push_back(id.get<std::string>());
      }
    }
    roles.push_back(std::move(role));
  }
  return roles;
}

Json PatternsJson(const std::vector<std::string>& patterns) {
  Json out = Json::array();
  for (const auto& p : patterns) {
    out.push_back(p);
  }
  return out;
}

}  // namespace

std::span<const RoleDefinition> BuiltInRoles() {
  static const std::vector<RoleDefinition> roles = LoadBuiltIns();
  return roles;
}

namespace {

// Glob with '*' over ASCII, case-insensitive; iterative with one backtrack
// point, so hostile patterns stay linear-ish.
bool Glob(std::string_view pattern, std::string_view action) {
  size_t p = 0, a = 0, star = std::string_view::npos, mark = 0;
  while (a < action.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = a;
    } else if (p < pattern.size() && AsciiToLower(pattern[p]) == AsciiToLower(action[a])) {
      ++p;
      ++a;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      a = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') {
    ++p;
  }
  return p == pattern.size();
}

}  // namespace

bool ActionMatches(std::string_view pattern, std::string_view action) {
  if (Glob(pattern, action)) {
    return true;
  }
  // A '*' segment also stands for no segment at all, as in Azure: Managed
  // Identity Operator's "userAssignedIdentities/*/assign/action" grants
  // "userAssignedIdentities/assign/action".
  if (pattern.find("/*/") == std::string_view::npos) {
    return false;
  }
  std::string collapsed(pattern);
  for (size_t at = collapsed.find("/*/"); at != std::string::npos; at = collapsed.find("/*/", at)) {
    collapsed.erase(at, 2);
  }
  return Glob(collapsed, action);
}

bool Grants(const RoleDefinition& role, std::string_view action, bool data) {
  for (const auto& p : role.permissions) {
    const auto& allow = data ? p.data_actions : p.actions;
    const auto& deny = data ? p.not_data_actions : p.not_actions;
    bool allowed = false;
    for (const auto& pattern : allow) {
      if (ActionMatches(pattern, action)) {
        allowed = true;
        break;
      }
    }
    if (!allowed) {
      continue;
    }
    bool denied = false;
    for (const auto& pattern : deny) {
      if (ActionMatches(pattern, action)) {
        denied = true;
        break;
      }
    }
    if (!denied) {
      return true;
    }
  }
  return false;
}

std::string DelegationCondition(const RoleDefinition& role) {
  if (role.delegable_role_ids.empty()) {
    return "";
  }
  std::string ids;
  for (const auto& id : role.delegable_role_ids) {
    ids += (ids.empty() ? "" : ", ") + id;
  }
  return "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR "
         "(@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] "
         "ForAnyOfAnyValues:GuidEquals{" +
         ids +
         "})) AND ((!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR "
         "(@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] "
         "ForAnyOfAnyValues:GuidEquals{" +
         ids + "}))";
}

Json RoleDefinitionToArm(const RoleDefinition& role, std::string_view scope) {
  Json perms = Json::array();
  for (const auto& p : role.permissions) {
    Json block = {{"actions", PatternsJson(p.actions)},
                  {"notActions", PatternsJson(p.not_actions)},
                  {"dataActions", PatternsJson(p.data_actions)},
                  {"notDataActions", PatternsJson(p.not_data_actions)}};
    if (!role.delegable_role_ids.empty()) {
      block["conditionVersion"] = "2.0";
      block["condition"] = DelegationCondition(role);
    }
    perms.push_back(std::move(block));
  }
  Json props = {{"roleName", role.role_name},
                {"type", role.built_in ? "BuiltInRole" : "CustomRole"},
                {"description", role.description},
                {"assignableScopes", PatternsJson(role.assignable_scopes)},
                {"permissions", perms},
                {"createdOn", role.created ? Json(FormatIsoTime(role.created)) : Json()},
                {"updatedOn", role.updated ? Json(FormatIsoTime(role.updated)) : Json()},
                {"createdBy", Json()},
                {"updatedBy", Json()}};
  return Json{
      {"id", std::string(scope) + "/providers/Microsoft.Authorization/roleDefinitions/" + role.id},
      {"type", "Microsoft.Authorization/roleDefinitions"},
      {"name", role.id},
      {"properties", props}};
}

StatusOr<RoleDefinition> CustomRoleFromArm(const std::string& id, const Json& body) {
  if (!body.is_object() || !body.contains("properties") || !body["properties"].is_object()) {
    return Invalid("The request body must be an object with 'properties'.");
  }
  const Json& in = body["properties"];
  RoleDefinition role;
  role.id = AsciiLower(id);
  std::string name = StringMember(in, "roleName");
  if (name.empty() || name.size() > 512 || !in["roleName"].is_string()) {
    return Invalid("properties.roleName must be a non-empty string of at most 512 characters.");
  }
  role.role_name = name;
  if (auto it = in.find("description"); it != in.end() && !it->is_null()) {
    if (!it->is_string() || it->get<std::string>().size() > 2048) {
      return Invalid("properties.description must be a string of at most 2048 characters.");
    }
    role.description = it->get<std::string>();
  }
  if (auto it = in.find("type"); it != in.end() && !it->is_null()) {
    if (!it->is_string() || !EqualsIgnoreCase(it->get<std::string>(), "CustomRole")) {
      return Invalid("properties.type must be 'CustomRole'.");
    }
  }
  auto perms = in.find("permissions");
  if (perms == in.end()) {
    return Invalid("properties.permissions is required.");
  }
  ASSIGN_OR_RETURN(role.permissions, ParsePermissions(*perms));
  auto scopes = in.find("assignableScopes");
  if (scopes == in.end() || !scopes->is_array() || scopes->empty() || scopes->size() > kMaxScopes) {
    return Invalid("properties.assignableScopes must be an array of 1 to 100 scopes.",
                   "InvalidAssignableScopes");
  }
  for (const auto& s : *scopes) {
    if (!s.is_string() || s.get<std::string>().empty() || s.get<std::string>()[0] != '/' ||
        s.get<std::string>().size() > 1024) {
      return Invalid("Each assignable scope must be a resource id starting with '/'.",
                     "InvalidAssignableScopes");
    }
    role.assignable_scopes.push_back(s.get<std::string>());
  }
  return role;
}

std::string CustomRoleToJson(const RoleDefinition& role) {
  Json perms = Json::array();
  for (const auto& p : role.permissions) {
    perms.push_back({{"actions", PatternsJson(p.actions)},
                     {"notActions", PatternsJson(p.not_actions)},
                     {"dataActions", PatternsJson(p.data_actions)},
                     {"notDataActions", PatternsJson(p.not_data_actions)}});
  }
  return ToJson(Json{{"roleName", role.role_name},
                     {"description", role.description},
                     {"permissions", perms},
                     {"assignableScopes", PatternsJson(role.assignable_scopes)}});
}

StatusOr<RoleDefinition> CustomRoleFromJson(const std::string& id, const std::string& json,
                                            int64_t created, int64_t updated) {
  auto parsed = ParseJson(json);
  if (!parsed) {
    return DataLossError("stored role definition " + id + " is not JSON");
  }
  auto role = CustomRoleFromArm(id, Json{{"properties", *parsed}});
  if (!role.ok()) {
    return DataLossError("stored role definition " + id +
                         " is invalid: " + std::string(role.status().message()));
  }
  role->created = created;
  role->updated = updated;
  return role;
}

}  // namespace coffer::authz
