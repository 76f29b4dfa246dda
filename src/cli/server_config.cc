#include "cli/server_config.h"

#include <cctype>
#include <cstdlib>
#include <map>
#include <set>
#include <string_view>

#include "agent/spc_yaml.h"
#include "common/files.h"
#include "common/json.h"
#include "common/strings.h"
#include "server/store_backend.h"

namespace coffer::cli {
namespace {

// Options of `coffer server` that configure nothing themselves.
bool IsMeta(const std::string& name) {
  return name == "help" || name == "config" || name == "print-config";
}

std::string EnvName(const std::string& flag) {
  std::string out = "COFFER_";
  for (char c : flag) {
    out += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

const CLI::Option* LongOption(const CLI::App& server, const std::string& name) {
  for (const CLI::Option* opt : server.get_options()) {
    for (const auto& l : opt->get_lnames()) {
      if (l == name) {
        return opt;
      }
    }
  }
  return nullptr;
}

// A flag takes no value on the command line (--dev); it is written
// --name=<value> so that `false` can be said too.
bool IsFlag(const CLI::Option* opt) {
  return opt->get_expected_min() == 0;
}

bool TakesSeveral(const CLI::Option* opt) {
  return opt->get_expected_max() > 1;
}

// The values of one environment variable: a list flag takes them separated
// by commas or spaces.
std::vector<std::string> EnvValues(const CLI::Option* opt, const std::string& text) {
  if (!TakesSeveral(opt)) {
    return {text};
  }
  std::vector<std::string> out;
  std::string cur;
  for (char c : text) {
    if (c == ',' || c == ' ' || c == '\t') {
      if (!cur.empty()) {
        out.push_back(cur);
      }
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) {
    out.push_back(cur);
  }
  return out;
}

struct FileValue {
  std::vector<std::string> values;
};

StatusOr<std::map<std::string, FileValue>> ReadConfigFile(const CLI::App& server,
                                                          const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) {
    return InvalidArgumentError("--config " + path + ": " + std::string(text.status().message()));
  }
  agent::YamlLimits limits;
  limits.max_bytes = 256 * 1024;
  auto docs = agent::ParseYamlDocuments(*text, limits);
  if (!docs.ok()) {
    return InvalidArgumentError(path + ": " + std::string(docs.status().message()));
  }
  std::map<std::string, FileValue> out;
  if (docs->empty() || (docs->size() == 1 && docs->front().IsNull())) {
    return out;  // an empty file sets nothing
  }
  if (docs->size() != 1 || !docs->front().IsMap()) {
    return InvalidArgumentError(path + ": must be one YAML map of settings (key: value)");
  }
  for (const auto& member : docs->front().members) {
    std::string where = path + ": line " + std::to_string(member.value.line) + ": ";
    const CLI::Option* opt = LongOption(server, member.key);
    if (opt == nullptr || IsMeta(member.key)) {
      return InvalidArgumentError(where + "unknown key " + QuoteForError(member.key) +
                                  " (the keys are coffer server's flags without dashes; see "
                                  "coffer server --help)");
    }
    FileValue v;
    if (member.value.IsScalar()) {
      v.values.push_back(member.value.scalar);
    } else if (member.value.IsSequence() && TakesSeveral(opt)) {
      for (const auto& item : member.value.items) {
        if (!item.IsScalar()) {
          return InvalidArgumentError(where + member.key + " must be a list of scalars");
        }
        v.values.push_back(item.scalar);
      }
    } else {
      return InvalidArgumentError(
          where + member.key + " must be " +
          (TakesSeveral(opt) ? "a scalar or a list of scalars" : "a scalar") + ", not a " +
          std::string(agent::KindName(member.value.kind)));
    }
    out[member.key] = std::move(v);
  }
  return out;
}

}  // namespace

StatusOr<std::vector<std::string>> ServerArguments(const CLI::App& server,
                                                   std::vector<std::string> args) {
  // What the command line gives, and the file it names.
  std::set<std::string> given;
  std::string config_path;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      break;
    }
    if (a.rfind("--", 0) != 0) {
      continue;
    }
    size_t eq = a.find('=');
    std::string name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    given.insert(name);
    if (name == "config") {
      if (eq != std::string::npos) {
        config_path = a.substr(eq + 1);
      } else if (i + 1 < args.size()) {
        config_path = args[i + 1];
      }
    }
  }
  std::map<std::string, FileValue> file;
  if (!config_path.empty()) {
    ASSIGN_OR_RETURN(file, ReadConfigFile(server, config_path));
  }
  for (const CLI::Option* opt : server.get_options()) {
    if (opt->get_lnames().empty()) {
      continue;
    }
    const std::string name = opt->get_lnames().front();
    if (IsMeta(name) || given.count(name) > 0) {
      continue;
    }
    std::vector<std::string> values;
    if (const char* env = std::getenv(EnvName(name).c_str()); env != nullptr && *env != '\0') {
      values = EnvValues(opt, env);
    } else if (auto it = file.find(name); it != file.end()) {
      values = it->second.values;
    } else {
      continue;
    }
    if (IsFlag(opt)) {
      for (const auto& v : values) {
        args.push_back("--" + name + "=" + v);
      }
    } else if (!values.empty()) {
      args.push_back("--" + name);
      args.insert(args.end(), values.begin(), values.end());
    }
  }
  return args;
}

std::string EffectiveServerConfig(const CLI::App& server) {
  std::string out =
      "# coffer server: the effective configuration (command line, then COFFER_*\n"
      "# variables, then --config); the same keys work in a --config file.\n";
  for (const CLI::Option* opt : server.get_options()) {
    if (opt->get_lnames().empty() || IsMeta(opt->get_lnames().front())) {
      continue;
    }
    const std::string name = opt->get_lnames().front();
    std::vector<std::string> values = opt->results();
    if (values.empty() && IsFlag(opt)) {
      continue;  // a flag not given keeps its default meaning (which may depend on --dev)
    }
    if (values.empty()) {
      std::string def = opt->get_default_str();
      if (def.empty()) {
        continue;  // unset, without a default
      }
      // CLI11 writes a list's default as "[a,b]".
      if (TakesSeveral(opt) && def.size() >= 2 && def.front() == '[' && def.back() == ']') {
        for (std::string_view part : Split(std::string_view(def).substr(1, def.size() - 2), ',')) {
          values.emplace_back(part);
        }
      } else {
        values = {def};
      }
    }
    // JSON strings are YAML scalars, quoted so nothing is reinterpreted.
    out += name + ": ";
    if (TakesSeveral(opt)) {
      Json list = Json::array();
      for (const auto& v : values) {
        list.push_back(v);
      }
      out += list.dump();
    } else {
      // SECURITY: a store's connection string may carry a password.
      out += Json(name == "store" ? server::RedactStore(values.back()) : values.back()).dump();
    }
    out += "\n";
  }
  const char* master = std::getenv("COFFER_MASTER_KEY");
  out += std::string("# master key: ") +
         (master != nullptr && *master != '\0' ? "from COFFER_MASTER_KEY (redacted)"
                                               : "the data directory's master.key") +
         "\n";
  return out;
}

}  // namespace coffer::cli
