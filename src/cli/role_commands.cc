// coffer role definition|assignment ... and coffer authz explain, as `az
// role` (docs/authorization.md).

#include <memory>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "common/encoding.h"
#include "common/files.h"
#include "common/strings.h"
#include "crypto/primitives.h"

namespace coffer::cli {
namespace {

constexpr char kApiVersion[] = "2022-04-01";

std::string Subscription(const client::ApiClient& c) {
  return "/subscriptions/" + c.config().subscription_id;
}

// Call sends an ARM request to an absolute path ("/subscriptions/...").
Json Call(client::ApiClient& c, const std::string& method, const std::string& path,
          std::initializer_list<int> ok, const std::string& body = "",
          const std::string& query = "") {
  std::string url = c.config().authority + path + "?api-version=" + kApiVersion +
                    (query.empty() ? "" : "&" + query);
  return Expect(c.Call(method, url, c.config().authority, body), ok);
}

std::string Quote(const std::string& v) {
  return PercentEncode(v);
}

// RoleId resolves a role name or id to the role's GUID.
std::string RoleId(client::ApiClient& c, const std::string& scope, const std::string& role) {
  std::string last = role.substr(role.rfind('/') == std::string::npos ? 0 : role.rfind('/') + 1);
  if (last.size() == 36 && last[8] == '-') {
    return AsciiLower(last);
  }
  Json list = Call(c, "GET", scope + "/providers/Microsoft.Authorization/roleDefinitions", {200},
                   "", "$filter=" + Quote("roleName eq '" + role + "'"));
  for (const auto& r : list.value("value", Json::array())) {
    return StringMember(r, "name");
  }
  Fail(Status(StatusCode::kNotFound, "Role '" + role + "' doesn't exist.", "RoleNotFound"));
  return "";
}

// ObjectId resolves --assignee: an object id, or the app (client) id of a
// service principal the caller can see in the directory.
std::string ObjectId(client::ApiClient& c, const std::string& assignee) {
  auto r = c.Call("GET", c.config().authority + "/v1.0/servicePrincipals",
                  "https://graph.microsoft.com");
  if (r.ok() && r->status == 200) {
    auto body = ParseJson(r->body);
    if (body && body->is_object()) {
      for (const auto& sp : body->value("value", Json::array())) {
        if (EqualsIgnoreCase(StringMember(sp, "appId"), assignee)) {
          return StringMember(sp, "id");
        }
      }
    }
  }
  return assignee;
}

// RoleDefinitionBody turns `az role definition` JSON (PascalCase or ARM
// camelCase keys) into an ARM body.
Json RoleDefinitionBody(const std::string& text) {
  std::string json = text;
  if (!text.empty() && text[0] == '@') {
    auto file = ReadFile(text.substr(1));
    if (!file.ok()) {
      Fail(file.status());
    }
    json = *file;
  }
  auto in = ParseJson(json);
  if (!in || !in->is_object()) {
    Fail(InvalidArgumentError("--role-definition must be a JSON object or @file.", "BadParameter"));
  }
  auto get = [&](const char* pascal, const char* camel) -> Json {
    if (in->contains(pascal)) {
      return (*in)[pascal];
    }
    if (in->contains(camel)) {
      return (*in)[camel];
    }
    return Json();
  };
  Json perms = get("Permissions", "permissions");
  if (perms.is_null()) {
    Json block = Json::object();
    for (auto [p, c] :
         {std::pair{"Actions", "actions"}, std::pair{"NotActions", "notActions"},
          std::pair{"DataActions", "dataActions"}, std::pair{"NotDataActions", "notDataActions"}}) {
      Json v = get(p, c);
      block[c] = v.is_null() ? Json::array() : v;
    }
    perms = Json::array({block});
  }
  Json name = get("Name", "roleName");
  if (name.is_null()) {
    name = get("RoleName", "name");
  }
  Json props = {{"roleName", name},
                {"description", get("Description", "description")},
                {"type", "CustomRole"},
                {"permissions", perms},
                {"assignableScopes", get("AssignableScopes", "assignableScopes")}};
  Json out = {{"properties", props}};
  Json id = get("Id", "id");
  if (id.is_string()) {
    out["id"] = id;
  }
  return out;
}

void AddDefinitionCommands(CLI::App& role) {
  auto* def = role.add_subcommand("definition", "Manage role definitions");
  def->require_subcommand(1);
  {
    auto* cmd = def->add_subcommand("list", "List role definitions");
    auto name = std::make_shared<std::string>();
    auto scope = std::make_shared<std::string>();
    auto custom = std::make_shared<bool>(false);
    cmd->add_option("--name,-n", *name, "Role name or id");
    cmd->add_option("--scope", *scope, "Scope (default: the subscription)");
    cmd->add_flag("--custom-role-only", *custom, "Only custom roles");
    cmd->callback([=] {
      auto c = MakeArmClient();
      std::string s = scope->empty() ? Subscription(c) : *scope;
      std::string filter = !name->empty() ? "roleName eq '" + *name + "'"
                           : *custom      ? std::string("type eq 'CustomRole'")
                                          : std::string();
      Json list = Call(c, "GET", s + "/providers/Microsoft.Authorization/roleDefinitions", {200},
                       "", filter.empty() ? "" : "$filter=" + Quote(filter));
      Json out = Json::array();
      for (const auto& r : list.value("value", Json::array())) {
        if (*custom && StringMember(r["properties"], "type") != "CustomRole") {
          continue;
        }
        out.push_back(r);
      }
      if (out.empty() && !name->empty() && name->size() == 36) {
        out.push_back(Call(
            c, "GET", s + "/providers/Microsoft.Authorization/roleDefinitions/" + *name, {200}));
      }
      Print(out);
    });
  }
  for (const char* verb : {"create", "update"}) {
    std::string v = verb;
    auto* cmd =
        def->add_subcommand(verb, v == "create" ? "Create a custom role" : "Update a custom role");
    auto text = std::make_shared<std::string>();
    cmd->add_option("--role-definition", *text, "JSON description of the role, or @file")
        ->required();
    cmd->callback([=] {
      auto c = MakeArmClient();
      Json body = RoleDefinitionBody(*text);
      std::string id;
      if (v == "create") {
        id = crypto::RandomUuid();
      } else {
        std::string given = body.contains("id") ? body["id"].get<std::string>() : "";
        id = !given.empty()
                 ? given.substr(given.rfind('/') + 1)
                 : RoleId(c, Subscription(c), StringMember(body["properties"], "roleName"));
      }
      body.erase("id");
      Json scopes = body["properties"]["assignableScopes"];
      std::string scope = scopes.is_array() && !scopes.empty() && scopes[0].is_string()
                              ? scopes[0].get<std::string>()
                              : Subscription(c);
      if (scope == "/") {
        scope = Subscription(c);
      }
      Print(Call(c, "PUT", scope + "/providers/Microsoft.Authorization/roleDefinitions/" + id,
                 {201}, ToJson(body)));
    });
  }
  {
    auto* cmd = def->add_subcommand("delete", "Delete a custom role");
    auto name = std::make_shared<std::string>();
    auto scope = std::make_shared<std::string>();
    cmd->add_option("--name,-n", *name, "Role name or id")->required();
    cmd->add_option("--scope", *scope, "Scope (default: the subscription)");
    cmd->callback([=] {
      auto c = MakeArmClient();
      std::string s = scope->empty() ? Subscription(c) : *scope;
      std::string id = RoleId(c, s, *name);
      Call(c, "DELETE", s + "/providers/Microsoft.Authorization/roleDefinitions/" + id, {200, 204});
    });
  }
}

void AddAssignmentCommands(CLI::App& role) {
  auto* as = role.add_subcommand("assignment", "Manage role assignments");
  as->require_subcommand(1);
  {
    auto* cmd = as->add_subcommand("create", "Assign a role to a principal at a scope");
    auto assignee = std::make_shared<std::string>();
    auto role_name = std::make_shared<std::string>();
    auto scope = std::make_shared<std::string>();
    auto description = std::make_shared<std::string>();
    auto name = std::make_shared<std::string>();
    auto* a = cmd->add_option("--assignee", *assignee, "Object id or app id of the principal");
    cmd->add_option("--assignee-object-id", *assignee, "Object id of the principal")->excludes(a);
    cmd->add_option("--role", *role_name, "Role name or id")->required();
    cmd->add_option("--scope", *scope, "Scope (default: the subscription)");
    cmd->add_option("--description", *description, "Description");
    cmd->add_option("--name", *name, "Assignment id (a GUID; default: a new one)");
    cmd->callback([=] {
      if (assignee->empty()) {
        Fail(InvalidArgumentError("--assignee or --assignee-object-id is required.",
                                  "BadParameter"));
      }
      auto c = MakeArmClient();
      std::string s = scope->empty() ? Subscription(c) : *scope;
      while (s.size() > 1 && s.back() == '/') {
        s.pop_back();
      }
      std::string id = name->empty() ? crypto::RandomUuid() : *name;
      Json props = {{"roleDefinitionId", Subscription(c) +
                                             "/providers/Microsoft.Authorization/roleDefinitions/" +
                                             RoleId(c, s, *role_name)},
                    {"principalId", ObjectId(c, *assignee)}};
      if (!description->empty()) {
        props["description"] = *description;
      }
      Print(Call(c, "PUT", s + "/providers/Microsoft.Authorization/roleAssignments/" + id,
                 {200, 201}, ToJson(Json{{"properties", props}})));
    });
  }
  {
    auto* cmd = as->add_subcommand("list", "List role assignments");
    auto assignee = std::make_shared<std::string>();
    auto role_name = std::make_shared<std::string>();
    auto scope = std::make_shared<std::string>();
    auto all = std::make_shared<bool>(false);
    cmd->add_option("--assignee", *assignee, "Object id or app id of the principal");
    cmd->add_option("--role", *role_name, "Role name or id");
    cmd->add_option("--scope", *scope, "Scope (default: the subscription)");
    cmd->add_flag("--all", *all, "Assignments at, above and below the scope");
    cmd->callback([=] {
      auto c = MakeArmClient();
      std::string s = scope->empty() ? Subscription(c) : *scope;
      std::string filter;
      if (!assignee->empty()) {
        filter = "principalId eq '" + ObjectId(c, *assignee) + "'";
      } else if (!*all) {
        filter = "atScope()";
      }
      Json list = Call(c, "GET", s + "/providers/Microsoft.Authorization/roleAssignments", {200},
                       "", filter.empty() ? "" : "$filter=" + Quote(filter));
      std::string want = role_name->empty() ? "" : RoleId(c, s, *role_name);
      std::string key = AsciiLower(s);
      Json out = Json::array();
      for (const auto& a : list.value("value", Json::array())) {
        const Json& p = a["properties"];
        std::string role_id = StringMember(p, "roleDefinitionId");
        if (!want.empty() && AsciiLower(role_id.substr(role_id.rfind('/') + 1)) != want) {
          continue;
        }
        // Without --all, as az: assignments at the scope itself.
        if (!*all && !scope->empty() && AsciiLower(StringMember(p, "scope")) != key) {
          continue;
        }
        out.push_back(a);
      }
      Print(out);
    });
  }
  {
    auto* cmd = as->add_subcommand("delete", "Delete role assignments");
    auto ids = std::make_shared<std::vector<std::string>>();
    auto assignee = std::make_shared<std::string>();
    auto role_name = std::make_shared<std::string>();
    auto scope = std::make_shared<std::string>();
    cmd->add_option("--ids", *ids, "Assignment resource ids");
    cmd->add_option("--assignee", *assignee, "Object id or app id of the principal");
    cmd->add_option("--role", *role_name, "Role name or id");
    cmd->add_option("--scope", *scope, "Scope (default: the subscription)");
    cmd->callback([=] {
      auto c = MakeArmClient();
      std::vector<std::string> targets = *ids;
      if (targets.empty()) {
        if (assignee->empty() && role_name->empty()) {
          Fail(InvalidArgumentError("Give --ids, or --assignee and/or --role.", "BadParameter"));
        }
        std::string s = scope->empty() ? Subscription(c) : *scope;
        std::string want = role_name->empty() ? "" : RoleId(c, s, *role_name);
        std::string who = assignee->empty() ? "" : ObjectId(c, *assignee);
        Json list = Call(c, "GET", s + "/providers/Microsoft.Authorization/roleAssignments", {200},
                         "", "$filter=atScope()");
        for (const auto& a : list.value("value", Json::array())) {
          const Json& p = a["properties"];
          std::string role_id = StringMember(p, "roleDefinitionId");
          if (AsciiLower(StringMember(p, "scope")) != AsciiLower(s) ||
              (!want.empty() && AsciiLower(role_id.substr(role_id.rfind('/') + 1)) != want) ||
              (!who.empty() && !EqualsIgnoreCase(StringMember(p, "principalId"), who))) {
            continue;
          }
          targets.push_back(StringMember(a, "id"));
        }
        if (targets.empty()) {
          Fail(Status(StatusCode::kNotFound, "No matched assignments were found to delete.",
                      "RoleAssignmentNotFound"));
        }
      }
      for (const auto& id : targets) {
        Call(c, "DELETE", id, {200, 204});
      }
    });
  }
}

void AddExplainCommand(CLI::App& app) {
  auto* authz = app.add_subcommand("authz", "Explain authorization decisions");
  authz->require_subcommand(1);
  auto* cmd = authz->add_subcommand(
      "explain", "Show whether a principal may perform an action on a vault, and why");
  auto assignee = std::make_shared<std::string>();
  auto vault = std::make_shared<std::string>();
  auto action = std::make_shared<std::string>();
  auto object = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("--assignee", *assignee, "Object id or app id of the principal")->required();
  cmd->add_option("--vault,--vault-name", *vault, "Vault name")->required();
  cmd->add_option("--action", *action,
                  "SecretGet, a data action, or a permission such as secrets/get")
      ->required();
  cmd->add_option("--object,--name", *object, "Secret name");
  cmd->add_flag("--json", *json, "Print the decision as JSON");
  cmd->callback([=] {
    auto c = MakeArmClient();
    std::string url = c.config().authority +
                      "/coffer/v1/authz/explain?assignee=" + Quote(*assignee) +
                      "&vault=" + Quote(*vault) + "&action=" + Quote(*action) +
                      (object->empty() ? "" : "&object=" + Quote(*object));
    Json d = Expect(c.Call("GET", url, c.config().authority), {200});
    if (*json) {
      Print(d);
      return;
    }
    std::string out;
    out += std::string(d.value("allowed", false) ? "ALLOWED" : "DENIED") + ": " +
           StringMember(d["principal"], "displayName") + " (" +
           StringMember(d["principal"], "objectId") + ") " + StringMember(d, "operation") + " on " +
           StringMember(d, "resource") + "\n";
    out += "  model:       " + StringMember(d, "model") + "\n";
    out += "  needs:       " + StringMember(d, "permission") + " (access policies), " +
           StringMember(d, "dataAction") + " (RBAC)\n";
    out += "  reason:      " + StringMember(d, "decisionReason") + "\n";
    if (d["applied"].is_string()) {
      out += "  granted by:  " + d["applied"].get<std::string>() + "\n";
    }
    out += "  considered:\n";
    if (d["considered"].empty()) {
      out += "    nothing names this principal\n";
    }
    for (const auto& c2 : d["considered"]) {
      out +=
          std::string("    ") + (c2.value("grants", false) ? "+ " : "- ") + StringMember(c2, "id");
      if (c2.contains("role")) {
        out += " " + StringMember(c2, "role") + " at " + StringMember(c2, "scope");
      }
      out += ": " + StringMember(c2, "detail") + "\n";
    }
    out += "  " + StringMember(d, "ignored") + "\n";
    std::fputs(out.c_str(), stdout);
  });
}

}  // namespace

void AddRoleCommands(CLI::App& app) {
  auto* role = app.add_subcommand("role", "Azure RBAC: role definitions and assignments");
  role->require_subcommand(1);
  AddDefinitionCommands(*role);
  AddAssignmentCommands(*role);
  AddExplainCommand(app);
}

}  // namespace coffer::cli
