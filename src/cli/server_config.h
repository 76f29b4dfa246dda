#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/status.h"

namespace coffer::cli {

// The server's settings come from three places; for each flag of `coffer
// server` the first that sets it wins:
//   1. the command line;
//   2. the environment: COFFER_<FLAG> (upper case, '-' as '_'), e.g.
//      COFFER_DNS_SUFFIX for --dns-suffix;
//   3. the file given with --config: a YAML map whose keys are the flags'
//      names without dashes ("dns-suffix: vault.corp.example"), values a
//      scalar or, for flags that take several, a list.
// ServerArguments returns `args` (the command line after the program name,
// starting with "server") with what the environment and the file set
// appended as flags, so that one parser checks every value and names the
// flag it belongs to. kInvalidArgument for a file that cannot be read or is
// not such a map, and for an unknown key (naming the file, line and key).
StatusOr<std::vector<std::string>> ServerArguments(const CLI::App& server,
                                                   std::vector<std::string> args);

// EffectiveServerConfig prints what `server` was given, flag by flag, as
// the YAML --config takes (--print-config). No flag holds a secret (keys
// are file paths); the master key, which COFFER_MASTER_KEY may hold, is
// shown only as where it comes from.
std::string EffectiveServerConfig(const CLI::App& server);

}  // namespace coffer::cli
