// `coffer token ...`: administration of the token service.

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

}  // namespace coffer::cli
