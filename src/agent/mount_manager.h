#pragma once

// Standalone mounts: the node agent's own volumes, outside Kubernetes
// (docs/agent.md). Each mount is a SecretProviderClass file and a target
// directory; the manager writes its files with the kubelet atomic-writer
// layout, keeps them current by polling and by the watch stream, fires the
// mount's reload hook when files changed, and keeps a status record.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/agent_config.h"
#include "agent/metrics.h"
#include "agent/mount_builder.h"
#include "agent/spc.h"
#include "agent/vault_reader.h"
#include "common/json.h"
#include "common/status.h"

#include <sys/types.h>

namespace coffer::agent {

// The status record of one mount (the SecretProviderClassPodStatus of a
// standalone mount), written as JSON to <state_dir>/mounts/<name>.json.
struct MountStatus {
  std::string name;
  std::string target;
  std::string secret_provider_class;  // the SPC file
  std::string identity;               // MountIdentity::Describe, "" until known
  bool mounted = false;               // files from a successful refresh are in place
  std::vector<ObjectResult> objects;  // from the last attempt
  // Objects that expire within the agent's expiryWarning or have expired,
  // and optional objects the mount goes without (from the last success).
  std::vector<std::string> warnings;
  std::string last_error;    // "" after a success
  int64_t last_attempt = 0;  // Unix seconds
  int64_t last_success = 0;
  int64_t last_change = 0;  // files last changed
  int consecutive_failures = 0;
  uint64_t reloads = 0;  // reload hooks fired

  Json ToJson() const;
};

// A standalone mount's SecretProviderClass, read and resolved.
struct LoadedMount {
  AzureMountParameters params;
  MountIdentity identity;
};

// LoadMount reads the mount's SecretProviderClass file (and its
// nodePublishSecretRef file), applies the Azure provider's parameter rules
// and resolves the identity. Errors name the file.
StatusOr<LoadedMount> LoadMount(const MountConfig& config);

struct MountManagerOptions {
  AgentConfig config;
  // The agent's state: mounts/<name>.json status records (0700 directory).
  std::string state_dir;
  VaultReaderOptions reader;
  // Follow each vault's watch stream for push updates.
  bool watch = true;
  // Back-off after 429, 5xx or an unreachable vault: the first retry after
  // this, doubling up to the poll interval.
  std::chrono::milliseconds initial_backoff{1000};
  // BuildOptions::write_cert_and_key_in_separate_files.
  bool write_cert_and_key_in_separate_files = false;
};

// MountManager runs the mounts. Thread-safe.
class MountManager {
 public:
  // Create checks the options (state directory writable, mounts present)
  // but reads no vault yet.
  static StatusOr<std::unique_ptr<MountManager>> Create(MountManagerOptions options,
                                                        AgentMetrics* metrics);
  ~MountManager();  // Stop()

  // Start mounts every mount once (in one round, so shared objects are read
  // once), then starts the poll loop and the watch streams. A mount that
  // fails is retried by the loop; Start itself does not fail.
  void Start();
  // Stop ends the loop, the watch streams and waits for running hooks to be
  // reaped. Idempotent.
  void Stop();

  // RunCycle refreshes every mount now, in one round (the poll loop's cycle).
  void RunCycle();

  std::vector<MountStatus> Statuses() const;
  VaultReader& reader() { return reader_; }

 private:
  struct Mount;
  struct Watcher;

  MountManager(MountManagerOptions options, AgentMetrics* metrics);
  // Refresh reloads the SPC, reads the objects in `round` and writes the
  // files when all were read. Called with the mount's refresh_mu held.
  void Refresh(Mount& mount, ReadRound& round);
  void RefreshMounts(const std::vector<Mount*>& mounts);
  void PollLoop();
  void PushLoop();
  void WatchLoop(Watcher* watcher);
  void EnsureWatcher(const std::string& vault_url, const MountIdentity& identity);
  void RunReload(const MountConfig& config, const std::string& name);
  void Reap(pid_t pid, const std::string& name);
  void WriteStatus(const MountStatus& status);
  std::chrono::milliseconds Jittered(std::chrono::milliseconds interval);

  const MountManagerOptions options_;
  AgentMetrics* const metrics_;
  VaultReader reader_;
  std::vector<std::unique_ptr<Mount>> mounts_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // GUARDED_BY(mu_)
  bool started_ = false;   // GUARDED_BY(mu_)
  // Pushed changes waiting for the push loop: vault url -> objects
  // ("secret/<name>", "key/<name>", "cert/<name>", lower-case) or "*" for
  // all.
  std::map<std::string, std::set<std::string>> pushed_;       // GUARDED_BY(mu_)
  bool refresh_all_ = false;                                  // GUARDED_BY(mu_)
  std::map<std::string, std::unique_ptr<Watcher>> watchers_;  // GUARDED_BY(mu_)
  std::atomic<bool> cancel_{false};
  std::thread poll_thread_;
  std::thread push_thread_;
  std::mutex hooks_mu_;
  std::condition_variable hooks_cv_;
  int running_hooks_ = 0;  // GUARDED_BY(hooks_mu_): reload commands not yet reaped
};

}  // namespace coffer::agent
