// `coffer token ...`: administration of the token service; `coffer ca`:
// the installation's certificate authority.

#include <iostream>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/vault_objects.h"

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

void AddCaCommands(CLI::App& app) {
  auto* ca = app.add_subcommand("ca", "The installation's certificate authority");
  ca->require_subcommand(1);
  auto* show = ca->add_subcommand(
      "show",
      "Print the CA certificate that issuers of the Coffer provider sign with, as PEM, for "
      "trust stores");
  static std::string file;
  show->add_option("-f,--file", file, "Write it to this file instead (refused if it exists)");
  show->callback([] {
    auto c = MakeClient();
    auto response = c.Call("GET", c.config().authority + "/coffer/v1/ca", c.config().authority);
    if (!response.ok()) {
      Fail(response.status());
    }
    if (response->status != 200) {
      Expect(response, {200});
    }
    if (file.empty()) {
      std::cout << response->body;
      return;
    }
    RefuseExisting(file);
    WriteFileOrUsage(file, response->body);
  });
}

}  // namespace coffer::cli
