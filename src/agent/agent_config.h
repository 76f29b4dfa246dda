#pragma once

// The standalone node agent's configuration file: which SecretProviderClass
// files to mount where, how often to refresh, and what to tell the consumer
// after a rotation. Format: docs in the comment of ParseAgentConfig below.
//
// Pure functions (no I/O), thread-safe.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/spc.h"
#include "common/status.h"

namespace coffer::agent {

// What to do after a mount's files changed.
struct ReloadAction {
  enum class Kind { kNone, kSignal, kCommand } kind = Kind::kNone;
  int signal = 0;                 // kSignal: e.g. SIGHUP
  std::string pid_file;           // kSignal: absolute; holds the pid to signal
  std::vector<std::string> argv;  // kCommand: argv[0] absolute, run without a shell
};

struct MountConfig {
  std::string name;            // [A-Za-z0-9._-]{1,63}, unique
  std::string spc_file;        // absolute
  std::string class_name;      // "" = the file's only SecretProviderClass
  std::string target;          // absolute, normalised, unique, not nested in another
  uint32_t permission = 0644;  // default file mode (the request `permission`)
  std::optional<uint32_t> uid, gid;
  std::string node_publish_secret_ref_file;  // absolute or ""
  std::string service_account_token_file;    // absolute or ""
  std::string pod_name, pod_namespace, pod_uid, service_account;
  ReloadAction reload;
};

struct AgentConfig {
  std::chrono::milliseconds poll_interval{120000};
  double jitter = 0.1;           // fraction of poll_interval, 0..1
  std::string vault_dns_suffix;  // "host[:port]" or "" (the default suffix)
  // Objects that expire within this are warned about (status record, log,
  // `coffer doctor`).
  std::chrono::seconds expiry_warning{7 * 24 * 3600};
  std::vector<MountConfig> mounts;
};

// ParseAgentConfig parses the agent's YAML config. Relative paths (spc file,
// target, secret and token files, pid file) resolve against `base_dir`,
// normally the config file's directory. Unknown keys are errors (it is our
// format, and a misspelt key must not be silently ignored).
//
//   pollInterval: 2m            # Go duration, >= 1s; default 2m
//   jitter: 0.1                 # 0..1; default 0.1
//   vaultDnsSuffix: vault.coffer.localhost:8443   # optional
//   expiryWarning: 168h         # Go duration, >= 0; default 168h (7 days)
//   mounts:                     # at least one
//     - name: web                          # [A-Za-z0-9._-]{1,63}, unique
//       secretProviderClass: ./spc.yaml    # SPC manifest file (required)
//       className: app-spc                 # optional when the file has one SPC
//       target: /run/secrets/web           # required; unique, not nested, not /
//       permission: "0640"                 # octal with a leading 0; default 0644
//       uid: 1000                          # optional owner of the files
//       gid: 1000
//       nodePublishSecretRef: ./sp.yaml    # optional v1 Secret manifest
//       serviceAccountTokenFile: ./token   # optional, workload identity
//       pod: {name: web-1, namespace: prod, uid: u, serviceAccount: web}  # optional
//       reload: {signal: HUP, pidFile: /run/web.pid}   # or
//       reload: {command: [/usr/bin/systemctl, reload, web]}
//
// Signals by name, with or without SIG: HUP INT QUIT KILL USR1 USR2 ALRM TERM
// CONT WINCH. Returns kInvalidArgument naming the key (and mount) at fault.
StatusOr<AgentConfig> ParseAgentConfig(std::string_view yaml, const std::string& base_dir);

// StandaloneAttributes builds the attributes the driver would send for this
// mount (csi-driver.md §2.1): spc.parameters, then secretProviderClass,
// csi.storage.k8s.io/ephemeral = "true" and the pod.* / serviceAccount.name
// keys from the mount's `pod` block (when set) over them. No tokens: in
// standalone mode the token comes from serviceAccountTokenFile.
std::map<std::string, std::string> StandaloneAttributes(const MountConfig& mount,
                                                        const SecretProviderClass& spc);

}  // namespace coffer::agent
