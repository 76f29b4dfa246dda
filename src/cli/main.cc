#include <algorithm>
#include <iostream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "cli/server_config.h"

namespace {

// CommandPathError names what is wrong when the words before the first option
// leave a command group without one of its commands (an unknown word, or
// none), as az does; empty when CLI11 should go on parsing.
std::string CommandPathError(CLI::App& app, int argc, char** argv) {
  CLI::App* group = &app;
  std::string path = "coffer";
  int i = 1;
  for (; i < argc; ++i) {
    std::string word = argv[i];
    auto subs = group->get_subcommands([](CLI::App*) { return true; });
    if (word.empty() || word[0] == '-' || subs.empty()) {
      return "";  // options, or a command's own arguments: CLI11 parses them
    }
    auto it = std::find_if(subs.begin(), subs.end(),
                           [&](CLI::App* sub) { return sub->check_name(word); });
    if (it == subs.end()) {
      if (group->get_require_subcommand_min() == 0) {
        return "";
      }
      break;
    }
    group = *it;
    path += " " + word;
  }
  auto subs = group->get_subcommands([](CLI::App* sub) { return !sub->get_group().empty(); });
  if (subs.empty() || group->get_require_subcommand_min() == 0) {
    return "";
  }
  std::string names;
  for (CLI::App* sub : subs) {
    names += (names.empty() ? "" : ", ") + sub->get_name();
  }
  std::string what =
      i < argc ? "'" + std::string(argv[i]) + "' is not in the '" + path + "' command group"
               : "a command is required";
  return path + ": " + what + ". Commands: " + names + ". See '" + path + " --help'.";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Coffer: a self-hosted, Azure Key Vault compatible secrets platform"};
  app.require_subcommand(1);
  // --output/-o is global, as in az: it may follow any command's own options.
  app.fallthrough();
  app.add_option_function<std::string>(
         "--output,-o",
         [](const std::string& name) {
           coffer::cli::OutputFormat format;
           coffer::cli::ParseOutputFormat(name, &format);
           coffer::cli::SetOutputFormat(format);
         },
         "Output format: json (default), tsv, table or none")
      ->check(CLI::IsMember({"json", "tsv", "table", "none"}));
  app.set_version_flag("--version", "coffer 0.1.0");
  coffer::cli::AddServerCommand(app);
  coffer::cli::AddCaCommands(app);
  coffer::cli::AddKeyVaultCommands(app);
  coffer::cli::AddAdCommands(app);
  coffer::cli::AddLoginCommands(app);
  coffer::cli::AddIdentityCommands(app);
  coffer::cli::AddWorkloadCommands(app);
  coffer::cli::AddAgentCommand(app);
  coffer::cli::AddExecCommand(app);
  coffer::cli::AddTokenCommands(app);
  coffer::cli::AddLimitsCommands(app);
  coffer::cli::AddAdminCommands(app);
  coffer::cli::AddStorageCommands(app);
  coffer::cli::AddRoleCommands(app);
  coffer::cli::AddAuditCommands(app);
  coffer::cli::AddCloudCommands(app);
  coffer::cli::AddEnvCommands(app);
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
      if (std::string error = CommandPathError(app, argc, argv); !error.empty()) {
        std::cerr << "ERROR: " << error << "\n";
        return 2;
      }
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
