// `coffer webapp ...` and `coffer vm ...`: workload resources and their
// managed identities, named and flagged as `az webapp` / `az vm` (create,
// show, list, delete, identity assign|remove|show), plus `identity endpoint`,
// which prints what a workload's processes need to get tokens.

#include <iostream>
#include <memory>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "common/json.h"
#include "common/strings.h"

namespace coffer::cli {
namespace {

struct WorkloadKind {
  const char* command;   // "webapp"
  const char* noun;      // "web app"
  const char* provider;  // "Microsoft.Web/sites"
  const char* api_version;
};

constexpr WorkloadKind kKinds[] = {
    {"webapp", "web app", "Microsoft.Web/sites", "2023-12-01"},
    {"vm", "virtual machine", "Microsoft.Compute/virtualMachines", "2024-07-01"},
};

std::string Path(const WorkloadKind& k, const std::string& rg, const std::string& name) {
  return "/resourceGroups/" + rg + "/providers/" + k.provider + (name.empty() ? "" : "/" + name);
}

// IdentityId turns a --identities argument into a resource id: a full id is
// kept, a bare name is a user-assigned identity in the same resource group.
std::string IdentityId(const client::ApiClient& c, const std::string& rg, const std::string& arg) {
  if (arg.find('/') != std::string::npos) {
    return arg;
  }
  return "/subscriptions/" + c.config().subscription_id + "/resourceGroups/" + rg +
         "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" + arg;
}

bool IsSystem(const std::string& arg) {
  return EqualsIgnoreCase(arg, "[system]") || EqualsIgnoreCase(arg, "system");
}

// Flatten prints a workload as az does: the ARM object plus resourceGroup.
Json Flatten(Json arm) {
  const std::string id = StringMember(arm, "id");
  auto parts = Split(id, '/');
  arm["resourceGroup"] = parts.size() > 4 ? std::string(parts[4]) : "";
  return arm;
}

// IdentityBlock builds the PATCH identity block that adds (or removes) the
// given identities, starting from the workload's current one.
Json IdentityBlock(const client::ApiClient& c, const std::string& rg, const Json& current,
                   const std::vector<std::string>& identities, bool add) {
  std::string type = AsciiLower(StringMember(current, "type"));
  bool system = type.find("systemassigned") != std::string::npos;
  Json users = current.value("userAssignedIdentities", Json::object());
  if (!users.is_object()) {
    users = Json::object();
  }
  Json change = Json::object();
  for (const auto& arg : identities) {
    if (IsSystem(arg)) {
      system = add;
      continue;
    }
    std::string id = IdentityId(c, rg, arg);
    for (auto it = users.begin(); it != users.end();) {
      it = EqualsIgnoreCase(it.key(), id) ? users.erase(it) : std::next(it);
    }
    if (add) {
      users[id] = Json::object();
      change[id] = Json::object();
    } else {
      change[id] = nullptr;
    }
  }
  bool user = !users.empty();
  std::string new_type = system && user ? "SystemAssigned, UserAssigned"
                         : system       ? "SystemAssigned"
                         : user         ? "UserAssigned"
                                        : "None";
  Json block = {{"type", new_type}};
  if (user) {
    block["userAssignedIdentities"] = change;
  }
  return block;
}

void AddKind(CLI::App& app, const WorkloadKind& k) {
  auto* group = app.add_subcommand(k.command, std::string("Manage ") + k.noun +
                                                  "s and their managed identities (as `az " +
                                                  k.command + "`)");
  group->require_subcommand(1);
  auto call = [&k](client::ApiClient& c, const std::string& method, const std::string& path,
                   std::initializer_list<int> ok, const std::string& body = "") {
    return ArmCall(c, method, path, k.api_version, ok, body);
  };
  {
    auto* cmd = group->add_subcommand("create", std::string("Create a ") + k.noun);
    auto name = std::make_shared<std::string>();
    auto rg = std::make_shared<std::string>();
    auto location = std::make_shared<std::string>("local");
    auto tags = std::make_shared<std::vector<std::string>>();
    auto assign = std::make_shared<std::vector<std::string>>();
    cmd->add_option("--name,-n", *name, "Name")->required();
    cmd->add_option("--resource-group,-g", *rg, "Resource group")->required();
    cmd->add_option("--location,-l", *location, "Location")->capture_default_str();
    cmd->add_option("--tags", *tags, "Space-separated key=value tags");
    CLI::Option* assign_opt =
        cmd->add_option("--assign-identity", *assign,
                        "Assign identities: [system] (alone, the default) and/or user-assigned "
                        "identity ids or names")
            ->expected(0, -1);
    cmd->callback([=, &k] {
      auto c = MakeArmClient();
      Json body = {{"location", *location}, {"tags", ParseTags(*tags)}};
      if (assign_opt->count() > 0) {
        // CLI11 gives {""} for a flag without values.
        std::vector<std::string> ids;
        for (const auto& a : *assign) {
          if (!a.empty()) {
            ids.push_back(a);
          }
        }
        if (ids.empty()) {
          ids.push_back("[system]");
        }
        body["identity"] = IdentityBlock(c, *rg, Json::object(), ids, true);
      }
      Print(
          Flatten(ArmCall(c, "PUT", Path(k, *rg, *name), k.api_version, {200, 201}, ToJson(body))));
    });
  }
  for (const char* verb : {"show", "delete"}) {
    std::string v = verb;
    auto* cmd = group->add_subcommand(verb, v == "show" ? std::string("Show a ") + k.noun
                                                        : std::string("Delete a ") + k.noun +
                                                              " and its system-assigned identity");
    auto name = std::make_shared<std::string>();
    auto rg = std::make_shared<std::string>();
    cmd->add_option("--name,-n", *name, "Name")->required();
    cmd->add_option("--resource-group,-g", *rg, "Resource group")->required();
    cmd->callback([=] {
      auto c = MakeArmClient();
      if (v == "show") {
        Print(Flatten(call(c, "GET", Path(k, *rg, *name), {200})));
      } else {
        call(c, "DELETE", Path(k, *rg, *name), {200, 204});
      }
    });
  }
  {
    auto* cmd = group->add_subcommand("list", std::string("List ") + k.noun + "s");
    auto rg = std::make_shared<std::string>();
    cmd->add_option("--resource-group,-g", *rg, "Resource group");
    cmd->callback([=, &k] {
      auto c = MakeArmClient();
      std::string path = rg->empty() ? std::string("/providers/") + k.provider : Path(k, *rg, "");
      Json out = Json::array();
      for (const auto& item : call(c, "GET", path, {200}).value("value", Json::array())) {
        out.push_back(Flatten(item));
      }
      Print(out);
    });
  }
  auto* identity = group->add_subcommand("identity", "Manage the managed identities");
  identity->require_subcommand(1);
  for (const char* verb : {"assign", "remove", "show", "endpoint"}) {
    std::string v = verb;
    auto* cmd = identity->add_subcommand(
        verb, v == "assign"   ? "Assign identities ([system] by default)"
              : v == "remove" ? "Remove identities ([system] by default); a removed "
                                "system-assigned identity is deleted"
              : v == "show"   ? "Show the identity block"
                              : "Print IDENTITY_ENDPOINT and IDENTITY_HEADER for the "
                                "workload's processes");
    auto name = std::make_shared<std::string>();
    auto rg = std::make_shared<std::string>();
    auto identities = std::make_shared<std::vector<std::string>>();
    auto regenerate = std::make_shared<bool>(false);
    auto env = std::make_shared<bool>(false);
    cmd->add_option("--name,-n", *name, "Name")->required();
    cmd->add_option("--resource-group,-g", *rg, "Resource group")->required();
    if (v == "assign" || v == "remove") {
      cmd->add_option("--identities", *identities,
                      "[system] and/or user-assigned identity ids or names");
    }
    if (v == "endpoint") {
      cmd->add_flag("--regenerate", *regenerate,
                    "Issue a new identity header; the old one stops working");
      cmd->add_flag("--env", *env, "Print NAME=value lines instead of JSON");
    }
    cmd->callback([=] {
      auto c = MakeArmClient();
      std::string path = Path(k, *rg, *name);
      if (v == "endpoint") {
        Json out = call(
            c, "POST", path + (*regenerate ? "/regenerateIdentityHeader" : "/listIdentityEndpoint"),
            {200});
        if (*env) {
          std::cout << "IDENTITY_ENDPOINT=" << StringMember(out, "identityEndpoint") << "\n"
                    << "IDENTITY_HEADER=" << StringMember(out, "identityHeader") << "\n";
        } else {
          Print(out);
        }
        return;
      }
      Json current = call(c, "GET", path, {200});
      Json block = current.value("identity", Json::object());
      if (v != "show") {
        std::vector<std::string> ids =
            identities->empty() ? std::vector<std::string>{"[system]"} : *identities;
        Json patch = {{"identity", IdentityBlock(c, *rg, block, ids, v == "assign")}};
        block = call(c, "PATCH", path, {200}, ToJson(patch)).value("identity", Json::object());
      }
      Print(block);
    });
  }
}

}  // namespace

void AddWorkloadCommands(CLI::App& app) {
  for (const auto& k : kKinds) {
    AddKind(app, k);
  }
}

}  // namespace coffer::cli
