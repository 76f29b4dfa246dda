#include "agent/agent_config.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <set>
#include <utility>

#include "agent/spc_yaml.h"
#include "common/strings.h"

namespace coffer::agent {
namespace {

constexpr size_t kMaxMounts = 256;
constexpr size_t kMaxArgs = 256;

bool IsNameChar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' ||
         c == '_' || c == '-';
}

Status CheckKeys(const YamlNode& map, std::initializer_list<std::string_view> allowed,
                 const std::string& where) {
  for (const auto& [key, value] : map.members) {
    bool known = false;
    for (std::string_view a : allowed) {
      known = known || key == a;
    }
    if (!known) {
      return InvalidArgumentError(
          where + "unknown key " + QuoteForError(key) +
          (value.line > 0 ? " (line " + std::to_string(value.line) + ")" : ""));
    }
  }
  return OkStatus();
}

StatusOr<std::string> Text(const YamlNode& map, std::string_view key, const std::string& where) {
  const YamlNode* node = map.Find(key);
  if (node == nullptr) {
    return std::string();
  }
  auto text = ScalarText(*node, where + std::string(key));
  if (!text.ok()) {
    return text.status();
  }
  return std::string(TrimWhitespace(*text));
}

// Resolves `path` against `base_dir` and normalises it lexically (no file
// system access: the files need not exist yet).
std::string ResolvePath(const std::string& path, const std::string& base_dir) {
  if (path.empty()) {
    return path;
  }
  std::filesystem::path p(path);
  if (p.is_relative() && !base_dir.empty()) {
    p = std::filesystem::path(base_dir) / p;
  }
  std::string out = p.lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') {
    out.pop_back();
  }
  return out;
}

StatusOr<uint32_t> ParseId(const std::string& text, const std::string& what) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  // 4294967295 is (uid_t)-1, "no change" to chown.
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v >= 0xffffffffu) {
    return InvalidArgumentError(what + " " + QuoteForError(text) +
                                " must be a number from 0 to 4294967294");
  }
  return static_cast<uint32_t>(v);
}

StatusOr<int> ParseSignal(std::string_view name, const std::string& what) {
  static const std::pair<std::string_view, int> kSignals[] = {
      {"HUP", SIGHUP},   {"INT", SIGINT},     {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
      {"USR1", SIGUSR1}, {"USR2", SIGUSR2},   {"ALRM", SIGALRM}, {"TERM", SIGTERM},
      {"CONT", SIGCONT}, {"WINCH", SIGWINCH},
  };
  std::string upper = AsciiUpper(name);
  std::string_view bare = upper;
  if (StartsWith(bare, "SIG")) {
    bare.remove_prefix(3);
  }
  for (const auto& [n, number] : kSignals) {
    if (bare == n) {
      return number;
    }
  }
  return InvalidArgumentError(what + " " + QuoteForError(name) +
                              " is not a known signal (HUP, INT, QUIT, KILL, USR1, USR2, ALRM, "
                              "TERM, CONT, WINCH)");
}

StatusOr<ReloadAction> ParseReload(const YamlNode& node, const std::string& where,
                                   const std::string& base_dir) {
  ReloadAction reload;
  if (node.IsNull()) {
    return reload;
  }
  if (!node.IsMap()) {
    return InvalidArgumentError(where + "must be a map, not a " + std::string(KindName(node.kind)));
  }
  RETURN_IF_ERROR(CheckKeys(node, {"signal", "pidFile", "command"}, where));
  ASSIGN_OR_RETURN(std::string signal, Text(node, "signal", where));
  ASSIGN_OR_RETURN(std::string pid_file, Text(node, "pidFile", where));
  const YamlNode* command = node.Find("command");
  bool has_command = command != nullptr && !command->IsNull();
  if (!signal.empty() && has_command) {
    return InvalidArgumentError(where + "set either signal (with pidFile) or command, not both");
  }
  if (!signal.empty()) {
    if (pid_file.empty()) {
      return InvalidArgumentError(where + "signal needs pidFile");
    }
    reload.kind = ReloadAction::Kind::kSignal;
    ASSIGN_OR_RETURN(reload.signal, ParseSignal(signal, where + "signal"));
    reload.pid_file = ResolvePath(pid_file, base_dir);
    return reload;
  }
  if (!pid_file.empty()) {
    return InvalidArgumentError(where + "pidFile needs signal");
  }
  if (!has_command) {
    return InvalidArgumentError(where + "needs signal and pidFile, or command");
  }
  if (!command->IsSequence() || command->items.empty()) {
    return InvalidArgumentError(where +
                                "command must be a non-empty list (argv, run without a shell)");
  }
  if (command->items.size() > kMaxArgs) {
    return InvalidArgumentError(where + "command has more than " + std::to_string(kMaxArgs) +
                                " arguments");
  }
  for (size_t i = 0; i < command->items.size(); ++i) {
    ASSIGN_OR_RETURN(std::string arg,
                     ScalarText(command->items[i], where + "command[" + std::to_string(i) + "]"));
    reload.argv.push_back(std::move(arg));
  }
  // SECURITY: the agent runs as root; no PATH search for what it executes.
  if (!StartsWith(reload.argv.front(), "/")) {
    return InvalidArgumentError(where + "command[0] " + QuoteForError(reload.argv.front()) +
                                " must be an absolute path");
  }
  reload.kind = ReloadAction::Kind::kCommand;
  return reload;
}

StatusOr<MountConfig> ParseMount(const YamlNode& node, size_t index, const std::string& base_dir) {
  std::string where = "mounts[" + std::to_string(index) + "]: ";
  if (!node.IsMap()) {
    return InvalidArgumentError(where + "must be a map, not a " + std::string(KindName(node.kind)));
  }
  MountConfig mount;
  ASSIGN_OR_RETURN(mount.name, Text(node, "name", where));
  if (mount.name.empty() || mount.name.size() > 63 ||
      mount.name.find_first_not_of('.') == std::string::npos ||
      !std::all_of(mount.name.begin(), mount.name.end(), IsNameChar)) {
    return InvalidArgumentError(where + "name " + QuoteForError(mount.name) +
                                " must be 1-63 characters of [A-Za-z0-9._-]");
  }
  where = "mounts[" + std::to_string(index) + "] (" + mount.name + "): ";
  RETURN_IF_ERROR(
      CheckKeys(node,
                {"name", "secretProviderClass", "className", "target", "permission", "uid", "gid",
                 "nodePublishSecretRef", "serviceAccountTokenFile", "pod", "reload"},
                where));
  ASSIGN_OR_RETURN(std::string spc_file, Text(node, "secretProviderClass", where));
  if (spc_file.empty()) {
    return InvalidArgumentError(where + "secretProviderClass (a manifest file) is not set");
  }
  mount.spc_file = ResolvePath(spc_file, base_dir);
  ASSIGN_OR_RETURN(mount.class_name, Text(node, "className", where));
  ASSIGN_OR_RETURN(std::string target, Text(node, "target", where));
  if (target.empty()) {
    return InvalidArgumentError(where + "target is not set");
  }
  mount.target = ResolvePath(target, base_dir);
  if (!StartsWith(mount.target, "/")) {
    return InvalidArgumentError(where + "target " + QuoteForError(mount.target) +
                                " must be an absolute path");
  }
  if (mount.target == "/") {
    return InvalidArgumentError(where + "target must not be /");
  }
  ASSIGN_OR_RETURN(std::string permission, Text(node, "permission", where));
  if (!permission.empty()) {
    // A leading zero is required: `permission: 600` would otherwise be
    // ambiguous between the octal a person means and the decimal JSON form.
    if (permission.size() < 2 || permission[0] != '0') {
      return InvalidArgumentError(where + "permission " + QuoteForError(permission) +
                                  " must be octal with a leading 0, e.g. \"0640\"");
    }
    auto mode = ParsePermission(permission);
    if (!mode.ok()) {
      return InvalidArgumentError(where + std::string(mode.status().message()));
    }
    mount.permission = *mode;
  }
  ASSIGN_OR_RETURN(std::string uid, Text(node, "uid", where));
  if (!uid.empty()) {
    ASSIGN_OR_RETURN(mount.uid, ParseId(uid, where + "uid"));
  }
  ASSIGN_OR_RETURN(std::string gid, Text(node, "gid", where));
  if (!gid.empty()) {
    ASSIGN_OR_RETURN(mount.gid, ParseId(gid, where + "gid"));
  }
  ASSIGN_OR_RETURN(std::string secret_ref, Text(node, "nodePublishSecretRef", where));
  mount.node_publish_secret_ref_file = ResolvePath(secret_ref, base_dir);
  ASSIGN_OR_RETURN(std::string token_file, Text(node, "serviceAccountTokenFile", where));
  mount.service_account_token_file = ResolvePath(token_file, base_dir);
  if (const YamlNode* pod = node.Find("pod"); pod != nullptr && !pod->IsNull()) {
    std::string pod_where = where + "pod.";
    if (!pod->IsMap()) {
      return InvalidArgumentError(where + "pod must be a map, not a " +
                                  std::string(KindName(pod->kind)));
    }
    RETURN_IF_ERROR(
        CheckKeys(*pod, {"name", "namespace", "uid", "serviceAccount"}, where + "pod: "));
    ASSIGN_OR_RETURN(mount.pod_name, Text(*pod, "name", pod_where));
    ASSIGN_OR_RETURN(mount.pod_namespace, Text(*pod, "namespace", pod_where));
    ASSIGN_OR_RETURN(mount.pod_uid, Text(*pod, "uid", pod_where));
    ASSIGN_OR_RETURN(mount.service_account, Text(*pod, "serviceAccount", pod_where));
    for (const auto& [key, value] :
         {std::pair{"name", &mount.pod_name}, std::pair{"namespace", &mount.pod_namespace},
          std::pair{"uid", &mount.pod_uid}, std::pair{"serviceAccount", &mount.service_account}}) {
      if (value->size() > 253 || !std::all_of(value->begin(), value->end(), IsNameChar)) {
        return InvalidArgumentError(pod_where + key + " " + QuoteForError(*value) +
                                    " is not a Kubernetes name");
      }
    }
  }
  if (const YamlNode* reload = node.Find("reload"); reload != nullptr) {
    ASSIGN_OR_RETURN(mount.reload, ParseReload(*reload, where + "reload: ", base_dir));
  }
  return mount;
}

bool IsInside(const std::string& inner, const std::string& outer) {
  return inner.size() > outer.size() && StartsWith(inner, outer) && inner[outer.size()] == '/';
}

Status CheckVaultDnsSuffix(std::string_view suffix) {
  std::string_view host = suffix;
  size_t colon = suffix.rfind(':');
  if (colon != std::string_view::npos) {
    host = suffix.substr(0, colon);
    std::string_view port = suffix.substr(colon + 1);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value == 0 ||
        value > 65535) {
      return InvalidArgumentError("vaultDnsSuffix " + QuoteForError(suffix) +
                                  " has an invalid port");
    }
  }
  bool ok = !host.empty() && host.size() <= 253 && host.front() != '-' && host.back() != '.';
  for (char c : host) {
    ok = ok && (IsNameChar(c) && c != '_');
  }
  if (!ok || host.find("..") != std::string_view::npos) {
    return InvalidArgumentError("vaultDnsSuffix " + QuoteForError(suffix) +
                                " must be a DNS name with an optional :port");
  }
  return OkStatus();
}

}  // namespace

StatusOr<AgentConfig> ParseAgentConfig(std::string_view yaml, const std::string& base_dir) {
  YamlLimits limits;
  limits.max_documents = 1;
  limits.max_depth = 8;
  auto docs = ParseYamlDocuments(yaml, limits);
  if (!docs.ok()) {
    return InvalidArgumentError("config: " + std::string(docs.status().message()));
  }
  if (docs->empty() || !docs->front().IsMap()) {
    return InvalidArgumentError("config: must be a YAML map with at least `mounts`");
  }
  const YamlNode& root = docs->front();
  const std::string where = "config: ";
  RETURN_IF_ERROR(CheckKeys(
      root, {"pollInterval", "jitter", "vaultDnsSuffix", "expiryWarning", "mounts"}, where));
  AgentConfig config;
  ASSIGN_OR_RETURN(std::string poll, Text(root, "pollInterval", where));
  if (!poll.empty()) {
    auto interval = ParseGoDuration(poll);
    if (!interval.ok()) {
      return InvalidArgumentError(where +
                                  "pollInterval: " + std::string(interval.status().message()));
    }
    if (*interval < std::chrono::seconds(1)) {
      return InvalidArgumentError(where + "pollInterval must be at least 1s");
    }
    config.poll_interval = *interval;
  }
  ASSIGN_OR_RETURN(std::string horizon, Text(root, "expiryWarning", where));
  if (!horizon.empty()) {
    auto parsed = ParseGoDuration(horizon);
    if (!parsed.ok()) {
      return InvalidArgumentError(where +
                                  "expiryWarning: " + std::string(parsed.status().message()));
    }
    // Ten years at most: an expiry horizon, and seconds that stay far from
    // overflow when added to a time.
    if (*parsed < std::chrono::milliseconds(0) || *parsed > std::chrono::hours(24 * 3660)) {
      return InvalidArgumentError(where + "expiryWarning must be from 0 to 87840h (ten years)");
    }
    config.expiry_warning = std::chrono::duration_cast<std::chrono::seconds>(*parsed);
  }
  ASSIGN_OR_RETURN(std::string jitter, Text(root, "jitter", where));
  if (!jitter.empty()) {
    double value = -1;
    auto [end, ec] = std::from_chars(jitter.data(), jitter.data() + jitter.size(), value);
    if (ec != std::errc() || end != jitter.data() + jitter.size() || !std::isfinite(value) ||
        value < 0 || value > 1) {
      return InvalidArgumentError(where + "jitter " + QuoteForError(jitter) +
                                  " must be a number from 0 to 1");
    }
    config.jitter = value;
  }
  ASSIGN_OR_RETURN(std::string suffix, Text(root, "vaultDnsSuffix", where));
  while (StartsWith(suffix, ".")) {
    suffix.erase(0, 1);
  }
  if (!suffix.empty()) {
    RETURN_IF_ERROR(CheckVaultDnsSuffix(suffix));
  }
  config.vault_dns_suffix = suffix;

  const YamlNode* mounts = root.Find("mounts");
  if (mounts == nullptr || !mounts->IsSequence() || mounts->items.empty()) {
    return InvalidArgumentError(where + "mounts must be a non-empty list");
  }
  if (mounts->items.size() > kMaxMounts) {
    return InvalidArgumentError(where + "more than " + std::to_string(kMaxMounts) + " mounts");
  }
  std::set<std::string> names;
  for (size_t i = 0; i < mounts->items.size(); ++i) {
    ASSIGN_OR_RETURN(MountConfig mount, ParseMount(mounts->items[i], i, base_dir));
    if (!names.insert(mount.name).second) {
      return InvalidArgumentError("mounts[" + std::to_string(i) + "]: a second mount named " +
                                  QuoteForError(mount.name));
    }
    for (const MountConfig& other : config.mounts) {
      if (other.target == mount.target) {
        return InvalidArgumentError("mounts[" + std::to_string(i) + "] (" + mount.name +
                                    "): target " + QuoteForError(mount.target) +
                                    " is also the target of " + other.name);
      }
      if (IsInside(mount.target, other.target) || IsInside(other.target, mount.target)) {
        return InvalidArgumentError("mounts[" + std::to_string(i) + "] (" + mount.name +
                                    "): target " + QuoteForError(mount.target) +
                                    " and the target of " + other.name + " are nested");
      }
    }
    config.mounts.push_back(std::move(mount));
  }
  return config;
}

std::map<std::string, std::string> StandaloneAttributes(const MountConfig& mount,
                                                        const SecretProviderClass& spc) {
  std::map<std::string, std::string> attributes = spc.parameters;
  // The volume context wins over parameters on a key clash, as in the driver.
  attributes[std::string(kAttrSecretProviderClass)] = spc.name;
  attributes[std::string(kAttrEphemeral)] = "true";
  auto set = [&attributes](std::string_view key, const std::string& value) {
    if (!value.empty()) {
      attributes[std::string(key)] = value;
    }
  };
  set(kAttrPodName, mount.pod_name);
  set(kAttrPodNamespace, mount.pod_namespace);
  set(kAttrPodUid, mount.pod_uid);
  set(kAttrServiceAccount, mount.service_account);
  return attributes;
}

}  // namespace coffer::agent
