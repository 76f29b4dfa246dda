#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/server_config.h"

int main(int argc, char** argv) {
  CLI::App app{"Coffer: a self-hosted, Azure Key Vault compatible secrets platform"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "coffer 0.1.0");
  coffer::cli::AddServerCommand(app);
  coffer::cli::AddCaCommands(app);
  coffer::cli::AddKeyVaultCommands(app);
  coffer::cli::AddAdCommands(app);
  coffer::cli::AddIdentityCommands(app);
  coffer::cli::AddWorkloadCommands(app);
  coffer::cli::AddAgentCommand(app);
  coffer::cli::AddExecCommand(app);
  coffer::cli::AddTokenCommands(app);
  coffer::cli::AddRoleCommands(app);
  coffer::cli::AddAuditCommands(app);
  coffer::cli::AddCloudCommands(app);
  try {
    if (argc >= 2 && std::string(argv[1]) == "server") {
      // The server's flags may also come from COFFER_* variables and a
      // --config file (server_config.h).
      auto args = coffer::cli::ServerArguments(*app.get_subcommand("server"),
                                               std::vector<std::string>(argv + 1, argv + argc));
      if (!args.ok()) {
        std::cerr << "coffer server: " << args.status().message() << "\n";
        return 2;
      }
      std::reverse(args->begin(), args->end());  // CLI11 takes them last first
      app.parse(*args);
    } else {
      app.parse(argc, argv);
    }
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" with exit code 0; every real usage
    // error exits 2, as az does.
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  return 0;
}
