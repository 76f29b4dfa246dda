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

Json Call(client::ApiClient& c, const std::string& method, const std::string& path,
          std::initializer_list<int> ok, const std::string& body = "") {
  return ArmCall(c, method, path, kMsiApiVersion, ok, body);
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

// FlattenCredential prints a federated identity credential as az does.
Json FlattenCredential(const Json& arm) {
  Json props = arm.value("properties", Json::object());
  std::string id = StringMember(arm, "id");
  auto parts = Split(id, '/');
  return Json{{"id", id},
              {"name", arm.value("name", "")},
              {"resourceGroup", parts.size() > 4 ? std::string(parts[4]) : ""},
              {"type", arm.value("type", "")},
              {"issuer", props.value("issuer", "")},
              {"subject", props.value("subject", "")},
              {"audiences", props.value("audiences", Json::array())}};
}

// `coffer identity federated-credential ...`, as `az identity
// federated-credential`: trust an external OIDC issuer's subject.
void AddFederatedCredentialCommands(CLI::App& identity) {
  auto* fc = identity.add_subcommand(
      "federated-credential",
      "Manage federated identity credentials (workload identity federation)");
  fc->require_subcommand(1);
  struct Args {
    std::string name, identity, rg, issuer, subject;
    std::vector<std::string> audiences{"api://AzureADTokenExchange"};
  };
  auto path = [](const Args& a, bool one) {
    return Path(a.rg, a.identity) + "/federatedIdentityCredentials" + (one ? "/" + a.name : "");
  };
  for (const char* verb : {"create", "update", "show", "delete", "list"}) {
    std::string v = verb;
    auto* cmd = fc->add_subcommand(verb, v == "create"   ? "Trust an issuer's subject"
                                         : v == "update" ? "Change a federated credential"
                                         : v == "show"   ? "Show a federated credential"
                                         : v == "delete" ? "Delete a federated credential"
                                                         : "List an identity's federated "
                                                           "credentials");
    auto a = std::make_shared<Args>();
    if (v != "list") {
      cmd->add_option("--name,-n", a->name, "Credential name")->required();
    }
    cmd->add_option("--identity-name", a->identity, "User-assigned identity name")->required();
    cmd->add_option("--resource-group,-g", a->rg, "Resource group")->required();
    if (v == "create" || v == "update") {
      cmd->add_option("--issuer", a->issuer, "OIDC issuer URL")->required();
      cmd->add_option("--subject", a->subject, "Subject, e.g. system:serviceaccount:ns:name")
          ->required();
      cmd->add_option("--audiences", a->audiences, "Audiences")->capture_default_str();
    }
    cmd->callback([=] {
      auto c = MakeArmClient();
      if (v == "create" || v == "update") {
        Json body = {
            {"properties",
             {{"issuer", a->issuer}, {"subject", a->subject}, {"audiences", a->audiences}}}};
        Print(FlattenCredential(Call(c, "PUT", path(*a, true), {200, 201}, ToJson(body))));
      } else if (v == "show") {
        Print(FlattenCredential(Call(c, "GET", path(*a, true), {200})));
      } else if (v == "delete") {
        Call(c, "DELETE", path(*a, true), {200, 204});
      } else {
        Json out = Json::array();
        for (const auto& item :
             Call(c, "GET", path(*a, false), {200}).value("value", Json::array())) {
          out.push_back(FlattenCredential(item));
        }
        Print(out);
      }
    });
  }
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
      Json body = {{"location", *location}, {"tags", ParseTags(*tags)}};
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
  AddFederatedCredentialCommands(*identity);
}

}  // namespace coffer::cli
