// `coffer ad sp ...`: service principals, named and flagged as `az ad sp`.
// They talk to the Graph-shaped directory API (/v1.0/servicePrincipals).

#include <cstdlib>
#include <iostream>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "client/api_client.h"
#include "common/json.h"
#include "common/strings.h"
#include "common/time_format.h"

namespace coffer::cli {
namespace {

Json Call(client::ApiClient& c, const std::string& method, const std::string& path,
          std::initializer_list<int> ok, const std::string& body = "") {
  return Expect(c.Call(method, c.config().authority + path, c.config().authority, body), ok);
}

// Resolve finds a service principal by object id or app (client) id.
Json Resolve(client::ApiClient& c, const std::string& id) {
  Json list = Call(c, "GET", "/v1.0/servicePrincipals", {200});
  for (const auto& sp : list.value("value", Json::array())) {
    if (sp.value("id", "") == id || sp.value("appId", "") == id) {
      return sp;
    }
  }
  Fail(Status(StatusCode::kNotFound, "Service principal '" + id + "' does not exist.",
              "Request_ResourceNotFound"));
}

std::string EndDate(int years) {
  if (years < 1 || years > 10) {
    Usage("--years must be from 1 to 10");
  }
  return FormatIsoTime(static_cast<int64_t>(std::time(nullptr)) + int64_t{years} * 365 * 86400);
}

}  // namespace

void AddAdCommands(CLI::App& app) {
  auto* ad = app.add_subcommand("ad", "Manage the directory (as `az ad`)");
  ad->require_subcommand(1);
  auto* sp = ad->add_subcommand("sp", "Manage service principals");
  sp->require_subcommand(1);

  {
    auto* cmd =
        sp->add_subcommand("create-for-rbac", "Create a service principal with a client secret");
    auto name = std::make_shared<std::string>();
    auto years = std::make_shared<int>(1);
    cmd->add_option("--name,-n", *name, "Display name")->required();
    cmd->add_option("--years", *years, "Secret lifetime in years (1-10)")->capture_default_str();
    cmd->callback([=] {
      auto c = MakeClient();
      Json created =
          Call(c, "POST", "/v1.0/servicePrincipals", {201}, ToJson(Json{{"displayName", *name}}));
      std::string password;
      std::string id = created.value("id", "");
      if (*years == 1) {
        password = created["passwordCredentials"][0].value("secretText", "");
      } else {
        // The first secret lasts one year; replace it with one of the asked lifetime.
        Json added = Call(c, "POST", "/v1.0/servicePrincipals/" + id + "/addPassword", {200},
                          ToJson(Json{{"passwordCredential", {{"endDateTime", EndDate(*years)}}}}));
        password = added.value("secretText", "");
        Call(c, "POST", "/v1.0/servicePrincipals/" + id + "/removePassword", {204},
             ToJson(Json{{"keyId", created["passwordCredentials"][0].value("keyId", "")}}));
      }
      Print(Json{{"appId", created.value("appId", "")},
                 {"displayName", created.value("displayName", "")},
                 {"password", password},
                 {"tenant", c.config().tenant_id}});
    });
  }
  {
    auto* cmd = sp->add_subcommand("list", "List service principals");
    cmd->callback([] {
      auto c = MakeClient();
      Print(Call(c, "GET", "/v1.0/servicePrincipals", {200}).value("value", Json::array()));
    });
  }
  for (const char* verb : {"show", "delete"}) {
    std::string v = verb;
    auto* cmd = sp->add_subcommand(verb, v == "show" ? "Show a service principal"
                                                     : "Delete a service principal; its tokens "
                                                       "stop working at once");
    auto id = std::make_shared<std::string>();
    cmd->add_option("--id", *id, "Object id or app (client) id")->required();
    cmd->callback([=] {
      auto c = MakeClient();
      Json found = Resolve(c, *id);
      if (v == "show") {
        Print(found);
      } else {
        Call(c, "DELETE", "/v1.0/servicePrincipals/" + found.value("id", ""), {204});
      }
    });
  }
  {
    auto* credential = sp->add_subcommand("credential", "Manage a service principal's secrets");
    credential->require_subcommand(1);
    auto* cmd = credential->add_subcommand(
        "reset", "Issue a new client secret (and remove the old ones unless --append)");
    auto id = std::make_shared<std::string>();
    auto years = std::make_shared<int>(1);
    auto append = std::make_shared<bool>(false);
    cmd->add_option("--id", *id, "Object id or app (client) id")->required();
    cmd->add_option("--years", *years, "Secret lifetime in years (1-10)")->capture_default_str();
    cmd->add_flag("--append", *append, "Keep the existing secrets");
    cmd->callback([=] {
      auto c = MakeClient();
      Json found = Resolve(c, *id);
      std::string object_id = found.value("id", "");
      Json added = Call(c, "POST", "/v1.0/servicePrincipals/" + object_id + "/addPassword", {200},
                        ToJson(Json{{"passwordCredential", {{"endDateTime", EndDate(*years)}}}}));
      if (!*append) {
        for (const auto& old : found.value("passwordCredentials", Json::array())) {
          Call(c, "POST", "/v1.0/servicePrincipals/" + object_id + "/removePassword", {204},
               ToJson(Json{{"keyId", old.value("keyId", "")}}));
        }
      }
      Print(Json{{"appId", found.value("appId", "")},
                 {"password", added.value("secretText", "")},
                 {"tenant", c.config().tenant_id}});
    });
  }
}

}  // namespace coffer::cli
