// `coffer identity ...`: user-assigned managed identities, named and flagged as
// `az identity`. They talk to the ARM-shaped Microsoft.ManagedIdentity API.

#include <cstdlib>
#include <iostream>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "client/api_client.h"
#include "common/json.h"
#include "common/strings.h"

namespace coffer::cli {
namespace {

constexpr char kMsiApiVersion[] = "2023-01-31";

client::ApiClient MakeArmClient() {
  client::ApiClient c = MakeClient();
  if (c.config().subscription_id.empty()) {
    Usage("COFFER_SUBSCRIPTION_ID is not set (source the server's dev.env)");
  }
  return c;
}

Json Call(client::ApiClient& c, const std::string& method, const std::string& path,
          std::initializer_list<int> ok, const std::string& body = "") {
  std::string url = c.config().authority + "/subscriptions/" + c.config().subscription_id + path +
                    "?api-version=" + kMsiApiVersion;
  return Expect(c.Call(method, url, c.config().authority, body), ok);
}

// Flatten prints an identity as `az identity show` does.
Json Flatten(const Json& arm) {
  std::string id = arm.value("id", "");
  auto parts = Split(id, '/');
  Json props = arm.value("properties", Json::object());
  return Json{{"id", id},
              {"name", arm.value("name", "")},
              {"resourceGroup", parts.size() > 4 ? std::string(parts[4]) : ""},
              {"location", arm.value("location", "")},
              {"tags", arm.value("tags", Json::object())},
              {"type", arm.value("type", "")},
              {"tenantId", props.value("tenantId", "")},
              {"principalId", props.value("principalId", "")},
              {"clientId", props.value("clientId", "")}};
}

std::string Path(const std::string& rg, const std::string& name) {
  return "/resourceGroups/" + rg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities" +
         (name.empty() ? "" : "/" + name);
}

}  // namespace

void AddIdentityCommands(CLI::App& app) {
  auto* identity = app.add_subcommand("identity",
                                      "Manage user-assigned managed identities "
                                      "(as `az identity`)");
  identity->require_subcommand(1);
  {
    auto* cmd = identity->add_subcommand("create", "Create a user-assigned identity");
    auto name = std::make_shared<std::string>();
    auto rg = std::make_shared<std::string>();
    auto location = std::make_shared<std::string>("local");
    auto tags = std::make_shared<std::vector<std::string>>();
    cmd->add_option("--name,-n", *name, "Identity name")->required();
    cmd->add_option("--resource-group,-g", *rg, "Resource group")->required();
    cmd->add_option("--location,-l", *location, "Location")->capture_default_str();
    cmd->add_option("--tags", *tags, "Space-separated key=value tags");
    cmd->callback([=] {
      auto c = MakeArmClient();
      Json t = Json::object();
      for (const auto& kv : *tags) {
        size_t eq = kv.find('=');
        t[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
      }
      Json body = {{"location", *location}, {"tags", t}};
      Print(Flatten(Call(c, "PUT", Path(*rg, *name), {200, 201}, ToJson(body))));
    });
  }
  for (const char* verb : {"show", "delete"}) {
    std::string v = verb;
    auto* cmd = identity->add_subcommand(
        verb,
        v == "show" ? "Show an identity" : "Delete an identity; its tokens stop working at once");
    auto name = std::make_shared<std::string>();
    auto rg = std::make_shared<std::string>();
    cmd->add_option("--name,-n", *name, "Identity name")->required();
    cmd->add_option("--resource-group,-g", *rg, "Resource group")->required();
    cmd->callback([=] {
      auto c = MakeArmClient();
      if (v == "show") {
        Print(Flatten(Call(c, "GET", Path(*rg, *name), {200})));
      } else {
        Call(c, "DELETE", Path(*rg, *name), {200, 204});
      }
    });
  }
  {
    auto* cmd = identity->add_subcommand("list", "List identities");
    auto rg = std::make_shared<std::string>();
    cmd->add_option("--resource-group,-g", *rg, "Resource group");
    cmd->callback([=] {
      auto c = MakeArmClient();
      std::string path = rg->empty() ? "/providers/Microsoft.ManagedIdentity/userAssignedIdentities"
                                     : Path(*rg, "");
      Json out = Json::array();
      for (const auto& item : Call(c, "GET", path, {200}).value("value", Json::array())) {
        out.push_back(Flatten(item));
      }
      Print(out);
    });
  }
}

}  // namespace coffer::cli
