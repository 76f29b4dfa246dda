// `coffer token ...`: administration of the token service; `coffer limits
// ...`: the service limits.

#include <map>
#include <memory>

#include "cli/cli_util.h"
#include "cli/commands.h"

namespace coffer::cli {

void AddTokenCommands(CLI::App& app) {
  auto* token = app.add_subcommand("token", "Administer the token service");
  token->require_subcommand(1);
  auto* rotate = token->add_subcommand(
      "rotate-keys",
      "Make a new signing key; the current one keeps verifying until the next rotation");
  rotate->callback([] {
    auto c = MakeClient();
    Print(Expect(c.Call("POST", c.config().authority + "/coffer/v1/signing-keys/rotate",
                        c.config().authority),
                 {200}));
  });
}

void AddLimitsCommands(CLI::App& app) {
  auto* limits = app.add_subcommand(
      "limits",
      "Key Vault's service limits: 429 with Retry-After beyond a vault's budget per "
      "10 seconds (docs/service-limits.md)");
  limits->require_subcommand(1);
  auto* show = limits->add_subcommand("show", "Show the installation's service limits");
  show->callback([] {
    auto c = MakeClient();
    Print(Expect(
        c.Call("GET", c.config().authority + "/coffer/v1/service-limits", c.config().authority),
        {200}));
  });
  auto* set = limits->add_subcommand(
      "set", "Set the service limits of every server of the installation (administrators)");
  auto mode = std::make_shared<std::string>();
  auto vault = std::make_shared<std::string>();
  auto numbers = std::make_shared<std::map<std::string, int64_t>>();
  set->add_option("--mode", *mode, "off, azure (Key Vault's numbers) or custom")
      ->required()
      ->check(CLI::IsMember({"off", "azure", "custom"}));
  set->add_option("--vault", *vault,
                  "custom: set these numbers for this vault only (the others keep theirs)");
  for (const char* key : {"secret-create", "secret-other", "key-create", "key-other"}) {
    set->add_option_function<int64_t>(
        std::string("--") + key, [numbers, key](int64_t n) { (*numbers)[key] = n; },
        "custom: transactions per 10 seconds (default: Key Vault's)");
  }
  set->callback([mode, vault, numbers] {
    auto c = MakeClient();
    const std::string url = c.config().authority + "/coffer/v1/service-limits";
    // Only this command's changes: the server merges them into the current
    // settings in one step (PATCH), so concurrent changes all land.
    Json change = Json::object();
    Json chosen = Json::object();
    for (const auto& [key, n] : *numbers) {
      std::string name = key == "secret-create"  ? "secretCreate"
                         : key == "secret-other" ? "secretOther"
                         : key == "key-create"   ? "keyCreate"
                                                 : "keyOther";
      chosen[name] = n;
    }
    change["mode"] = *mode;
    if (!vault->empty()) {
      change["vaults"][*vault] = chosen;
    } else if (!numbers->empty()) {
      change["limits"] = chosen;
    }
    Print(Expect(c.Call("PATCH", url, c.config().authority, ToJson(change)), {200}));
  });
}

}  // namespace coffer::cli
