#include <CLI/CLI.hpp>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"Coffer: a self-hosted, Azure Key Vault compatible secrets platform"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "coffer 0.1.0");
  coffer::cli::AddServerCommand(app);
  coffer::cli::AddKeyVaultCommands(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
