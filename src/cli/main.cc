#include <algorithm>
#include <iostream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/server_config.h"

namespace {

// UnknownCommand finds the first argument that names no command where a
// command group expects one: the group's path and the argument. nullopt
// when the arguments name commands throughout (the error is another).
std::optional<std::pair<std::string, std::string>> UnknownCommand(CLI::App& app, int argc,
                                                                  char** argv) {
  CLI::App* group = &app;
  std::string path = "coffer";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.empty() || arg[0] == '-' || group->get_subcommands({}).empty()) {
      return std::nullopt;
    }
    CLI::App* next = nullptr;
    try {
      next = group->get_subcommand(arg);
    } catch (const CLI::OptionNotFound&) {
      return std::pair{path, arg};
    }
    group = next;
    path += " " + arg;
  }
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Coffer: a self-hosted, Azure Key Vault compatible secrets platform"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "coffer 0.1.0");
  // Every command takes -o, as az's (a command's own -o comes first);
  // subcommands inherit fallthrough and hand it up.
  app.fallthrough();
  app.add_option("--output,-o", coffer::cli::OutputFormat(), "Output format")
      ->check(CLI::IsMember({"json", "tsv", "table", "none"}))
      ->capture_default_str();
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
    // A mistyped command is named, as az names it.
    if (auto unknown = UnknownCommand(app, argc, argv)) {
      std::cerr << "ERROR: '" << unknown->second << "' is not in the '" << unknown->first
                << "' command group. See '" << unknown->first << " --help'.\n";
      return 2;
    }
    // --help and --version are "errors" with exit code 0; every real usage
    // error exits 2, as az does.
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  return 0;
}
