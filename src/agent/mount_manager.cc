#include "agent/mount_manager.h"

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <random>
#include <utility>

#include "agent/atomic_writer.h"
#include "agent/reload_hook.h"
#include "common/files.h"
#include "common/log.h"
#include "common/strings.h"
#include "crypto/primitives.h"
#include "exec/supervisor.h"
#include "sdk/follow.h"

#include <sys/stat.h>
#include <sys/wait.h>

namespace coffer::agent {
namespace {

using SteadyClock = std::chrono::steady_clock;

int64_t NowUnix() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Worth retrying soon: the vault is throttling, failing or unreachable.
bool Transient(const Status& s) {
  return s.code() == StatusCode::kResourceExhausted || s.code() == StatusCode::kUnavailable ||
         s.code() == StatusCode::kDeadlineExceeded;
}

// What a mount with an objectSelector entry has in its names: every secret
// of the vault.
constexpr std::string_view kAnySecret = "secret/*";

// ChangeKey names an object for the push loop: "secret/db-pass",
// "key/signing", "cert/tls" (lower-case; Key Vault names ignore case).
std::string ChangeKey(std::string_view type, std::string_view name) {
  return std::string(type) + "/" + AsciiLower(name);
}

Status InFile(const std::string& what, const std::string& file, const Status& s) {
  return Status(s.code(), what + " " + file + ": " + std::string(s.message()),
                std::string(s.reason()));
}

}  // namespace

StatusOr<LoadedMount> LoadMount(const MountConfig& config) {
  auto text = ReadFile(config.spc_file);
  if (!text.ok()) {
    return InFile("SecretProviderClass", config.spc_file, text.status());
  }
  auto classes = ParseSecretProviderClasses(*text);
  if (!classes.ok()) {
    return InFile("SecretProviderClass", config.spc_file, classes.status());
  }
  auto spc = SelectSecretProviderClass(*std::move(classes), config.class_name);
  if (!spc.ok()) {
    return InFile("SecretProviderClass", config.spc_file, spc.status());
  }
  if (spc->provider != "azure" && spc->provider != "coffer") {
    return InvalidArgumentError("SecretProviderClass " + spc->name + " in " + config.spc_file +
                                " is for provider \"" + spc->provider +
                                "\": the agent serves provider azure (or coffer)");
  }
  std::map<std::string, std::string> secrets;
  if (!config.node_publish_secret_ref_file.empty()) {
    auto secret_text = ReadFile(config.node_publish_secret_ref_file);
    if (!secret_text.ok()) {
      return InFile("nodePublishSecretRef", config.node_publish_secret_ref_file,
                    secret_text.status());
    }
    auto parsed = ParseKubernetesSecret(*secret_text);
    if (!parsed.ok()) {
      return InFile("nodePublishSecretRef", config.node_publish_secret_ref_file, parsed.status());
    }
    secrets = *std::move(parsed);
  }
  AzureParseOptions opts;
  opts.require_pod_info = false;
  opts.service_account_token_file = config.service_account_token_file;
  auto params = ParseAzureProviderParameters(StandaloneAttributes(config, *spc), secrets, opts);
  if (!params.ok()) {
    return InFile("SecretProviderClass", config.spc_file, params.status());
  }
  ASSIGN_OR_RETURN(MountIdentity identity, IdentityOf(*params));
  return LoadedMount{*std::move(params), std::move(identity)};
}

Json MountStatus::ToJson() const {
  Json objs = Json::array();
  for (const ObjectResult& o : objects) {
    Json j = {{"id", o.id}, {"version", o.version}, {"file", o.file}};
    if (!o.status.ok()) {
      j["error"] = std::string(o.status.message());
    }
    if (o.expires_on.has_value()) {
      j["expiresOn"] = *o.expires_on;
    }
    if (o.optional) {
      j["optional"] = true;
      // present: read and written; absent: left out; kept: the content
      // last written stays.
      j["state"] = !o.skipped ? "present" : o.kept ? "kept" : "absent";
    }
    objs.push_back(std::move(j));
  }
  return {{"name", name},
          {"target", target},
          {"secretProviderClass", secret_provider_class},
          {"identity", identity},
          {"mounted", mounted},
          {"objects", std::move(objs)},
          {"warnings", warnings},
          {"lastError", last_error},
          {"lastAttempt", last_attempt},
          {"lastSuccess", last_success},
          {"lastChange", last_change},
          {"consecutiveFailures", consecutive_failures},
          {"reloads", reloads}};
}

struct MountManager::Mount {
  MountConfig config;
  std::mutex refresh_mu;  // one refresh of a mount at a time
  mutable std::mutex mu;
  MountStatus status;     // GUARDED_BY(mu)
  std::string vault_url;  // GUARDED_BY(mu): "" until the SPC was read
  // GUARDED_BY(mu): the objects, as ChangeKey names them.
  std::set<std::string> names;
  std::optional<SteadyClock::time_point> retry_at;  // GUARDED_BY(mu)
};

struct MountManager::Watcher {
  std::string vault_url;
  MountIdentity identity;
  std::thread thread;
};

MountManager::MountManager(MountManagerOptions options, AgentMetrics* metrics)
    : options_(std::move(options)), metrics_(metrics), reader_(options_.reader) {
  if (metrics_ != nullptr) {
    reader_.observe = [m = metrics_](const std::string& type, const std::string& object,
                                     const Status& s, double secs) {
      m->KeyvaultRequest(type, object, s.ok() ? "" : ErrorType(s), secs);
    };
  }
  for (const MountConfig& c : options_.config.mounts) {
    auto m = std::make_unique<Mount>();
    m->config = c;
    m->status.name = c.name;
    m->status.target = c.target;
    m->status.secret_provider_class = c.spc_file;
    mounts_.push_back(std::move(m));
  }
}

StatusOr<std::unique_ptr<MountManager>> MountManager::Create(MountManagerOptions options,
                                                             AgentMetrics* metrics) {
  if (options.config.mounts.empty()) {
    return InvalidArgumentError("the agent's configuration has no mounts");
  }
  if (options.state_dir.empty()) {
    return InvalidArgumentError("the agent needs a state directory (--state-dir)");
  }
  RETURN_IF_ERROR(EnsurePrivateDirectory(options.state_dir + "/mounts"));
  return std::unique_ptr<MountManager>(new MountManager(std::move(options), metrics));
}

MountManager::~MountManager() {
  Stop();
}

void MountManager::Start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) {
      return;
    }
    started_ = true;
  }
  RunCycle();
  poll_thread_ = std::thread([this] { PollLoop(); });
  push_thread_ = std::thread([this] { PushLoop(); });
}

void MountManager::Stop() {
  std::map<std::string, std::unique_ptr<Watcher>> watchers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      return;
    }
    stopping_ = true;
    cancel_.store(true);
  }
  cv_.notify_all();
  if (poll_thread_.joinable()) {
    poll_thread_.join();
  }
  if (push_thread_.joinable()) {
    push_thread_.join();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    watchers.swap(watchers_);
  }
  for (auto& [key, w] : watchers) {
    if (w->thread.joinable()) {
      w->thread.join();
    }
  }
  std::unique_lock<std::mutex> lock(hooks_mu_);
  hooks_cv_.wait(lock, [&] { return running_hooks_ == 0; });
}

void MountManager::RunCycle() {
  std::vector<Mount*> all;
  for (auto& m : mounts_) {
    all.push_back(m.get());
  }
  RefreshMounts(all);
}

void MountManager::RefreshMounts(const std::vector<Mount*>& mounts) {
  if (mounts.empty()) {
    return;
  }
  std::shared_ptr<ReadRound> round = reader_.NewRound();
  // Reads are shared through the round; writes are what runs in parallel.
  ParallelFor(mounts.size(), 4, [&](size_t i) {
    std::lock_guard<std::mutex> lock(mounts[i]->refresh_mu);
    Refresh(*mounts[i], *round);
  });
}

void MountManager::Refresh(Mount& mount, ReadRound& round) {
  const MountConfig& config = mount.config;
  auto start = SteadyClock::now();
  bool first;
  {
    std::lock_guard<std::mutex> lock(mount.mu);
    first = !mount.status.mounted;
  }
  Status result;
  BuiltMount built;
  bool changed = false;
  bool had_files = false;
  std::vector<std::string> changed_paths;
  // Read again on every refresh, so that edits of the SecretProviderClass are
  // picked up as the driver picks them up at rotation.
  StatusOr<LoadedMount> loaded = LoadMount(config);
  if (!loaded.ok()) {
    result = loaded.status();
  } else {
    std::string vault_url =
        VaultUrlFor(loaded->params.keyvault_name, options_.config.vault_dns_suffix);
    {
      std::lock_guard<std::mutex> lock(mount.mu);
      mount.vault_url = vault_url;
      mount.names.clear();
      for (const AzureObject& o : loaded->params.objects) {
        // A selection changes with any secret of the vault (one may come to
        // match or stop matching).
        mount.names.insert(o.selector.has_value() ? std::string(kAnySecret)
                                                  : ChangeKey(o.TypeName(), o.name));
        if (o.type == ObjectType::kCert) {
          // A new version of a certificate is one of its secret too (the
          // same name, which no other secret can have), and the stream
          // sends a certificate's changes only as its secret's.
          mount.names.insert(ChangeKey("secret", o.name));
        }
      }
      mount.status.identity = loaded->identity.Describe();
    }
    BuildOptions bo;
    bo.vault_dns_suffix = options_.config.vault_dns_suffix;
    bo.default_mode = config.permission;
    bo.write_cert_and_key_in_separate_files = options_.write_cert_and_key_in_separate_files;
    bo.previous_dir = config.target;
    built = BuildMount(loaded->params, loaded->identity, round, bo);
    if (options_.watch) {
      EnsureWatcher(vault_url, loaded->identity);
    }
    result = built.status;
    if (result.ok()) {
      struct stat st;
      had_files = lstat((config.target + "/..data").c_str(), &st) == 0;
      WriteOptions wo;
      wo.uid = config.uid;
      wo.gid = config.gid;
      StatusOr<WriteResult> written = WritePayload(config.target, built.files, wo);
      // SECURITY: the files are the secrets (a certificate's private key
      // among them); from here on they are only on disk.
      for (PayloadFile& f : built.files) {
        crypto::SecureWipe(f.contents);
      }
      if (!written.ok()) {
        result = Status(written.status().code(), "writing " + config.target + ": " +
                                                     std::string(written.status().message()));
      } else {
        changed = written->changed;
        changed_paths = written->changed_paths;
        if (!written->cleanup_status.ok()) {
          COFFER_LOG(kWarning) << "mount " << config.name << ": "
                               << written->cleanup_status.ToString();
        }
      }
    }
  }
  double seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  int64_t now = NowUnix();
  MountStatus snapshot;
  bool reload = false;
  {
    std::lock_guard<std::mutex> lock(mount.mu);
    MountStatus& st = mount.status;
    st.last_attempt = now;
    st.objects = built.objects;
    if (result.ok()) {
      std::vector<std::string> warnings =
          ExpiryWarnings(built.objects, now, options_.config.expiry_warning.count());
      for (const ObjectResult& o : built.objects) {
        if (o.skipped) {
          warnings.push_back(o.id + " is optional and " +
                             (o.kept ? "keeps the content last written" : "is left out") + ": " +
                             std::string(o.status.message()));
        }
      }
      if (warnings != st.warnings) {
        for (const std::string& w : warnings) {
          COFFER_LOG(kWarning) << "mount " << config.name << ": " << w;
        }
      }
      st.warnings = std::move(warnings);
      st.mounted = true;
      st.last_success = now;
      st.last_error.clear();
      st.consecutive_failures = 0;
      if (changed) {
        st.last_change = now;
        reload = (!first || had_files) && config.reload.kind != ReloadAction::Kind::kNone;
        if (reload) {
          ++st.reloads;
        }
      }
      mount.retry_at.reset();
    } else {
      st.last_error = std::string(result.message());
      ++st.consecutive_failures;
      if (Transient(result)) {
        auto delay = options_.initial_backoff * (1LL << std::min(st.consecutive_failures - 1, 16));
        delay = std::min<std::chrono::milliseconds>(
            std::chrono::duration_cast<std::chrono::milliseconds>(delay),
            options_.config.poll_interval);
        mount.retry_at = SteadyClock::now() + Jittered(delay);
      } else {
        mount.retry_at.reset();  // the next cycle tries again
      }
    }
    snapshot = st;
  }
  if (result.ok()) {
    if (changed) {
      std::string paths;
      for (const std::string& p : changed_paths) {
        paths += (paths.empty() ? "" : ", ") + p;
      }
      COFFER_LOG(kInfo) << "mount " << config.name << ": updated " << paths << " in "
                        << config.target;
    }
  } else {
    COFFER_LOG(kWarning) << "mount " << config.name << ": " << result.message()
                         << (snapshot.mounted ? " (the files in place are kept)" : "");
  }
  if (metrics_ != nullptr) {
    if (result.ok()) {
      metrics_->ObserveMount(config.name, GaugesOf(built.objects), now, 0);
    }
    std::string error = result.ok() ? "" : ErrorType(result);
    if (first) {
      metrics_->NodePublish(error);
    } else {
      metrics_->RotationReconcile(changed, error, seconds);
    }
  }
  WriteStatus(snapshot);
  if (reload) {
    RunReload(config, config.name);
  }
}

void MountManager::WriteStatus(const MountStatus& status) {
  std::string path = options_.state_dir + "/mounts/" + status.name + ".json";
  Status s = WriteFileAtomic(path, status.ToJson().dump(2) + "\n", 0600);
  if (!s.ok()) {
    COFFER_LOG(kWarning) << "mount " << status.name << ": status record: " << s.ToString();
  }
}

std::vector<MountStatus> MountManager::Statuses() const {
  std::vector<MountStatus> out;
  for (const auto& m : mounts_) {
    std::lock_guard<std::mutex> lock(m->mu);
    out.push_back(m->status);
  }
  return out;
}

std::chrono::milliseconds MountManager::Jittered(std::chrono::milliseconds interval) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  double jitter = std::clamp(options_.config.jitter, 0.0, 1.0);
  std::uniform_real_distribution<double> dist(-jitter, jitter);
  auto ms = static_cast<int64_t>(static_cast<double>(interval.count()) * (1.0 + dist(rng)));
  return std::chrono::milliseconds(std::max<int64_t>(ms, 1));
}

// ---- poll -------------------------------------------------------------------------------

void MountManager::PollLoop() {
  auto next_cycle = SteadyClock::now() + Jittered(options_.config.poll_interval);
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    auto wake = next_cycle;
    for (const auto& m : mounts_) {
      std::lock_guard<std::mutex> ml(m->mu);
      if (m->retry_at.has_value()) {
        wake = std::min(wake, *m->retry_at);
      }
    }
    cv_.wait_until(lock, wake, [&] { return stopping_; });
    if (stopping_) {
      break;
    }
    auto now = SteadyClock::now();
    std::vector<Mount*> due;
    bool cycle = now >= next_cycle;
    for (const auto& m : mounts_) {
      std::lock_guard<std::mutex> ml(m->mu);
      if (cycle || (m->retry_at.has_value() && *m->retry_at <= now)) {
        due.push_back(m.get());
      }
    }
    if (cycle) {
      next_cycle = now + Jittered(options_.config.poll_interval);
    }
    lock.unlock();
    RefreshMounts(due);
    lock.lock();
  }
}

// ---- push -------------------------------------------------------------------------------

void MountManager::EnsureWatcher(const std::string& vault_url, const MountIdentity& identity) {
  std::string key = vault_url + "|" + identity.CredentialKey();
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_ || watchers_.count(key) != 0) {
    return;
  }
  auto w = std::make_unique<Watcher>();
  w->vault_url = vault_url;
  w->identity = identity;
  Watcher* raw = w.get();
  watchers_.emplace(key, std::move(w));
  raw->thread = std::thread([this, raw] { WatchLoop(raw); });
}

void MountManager::WatchLoop(Watcher* watcher) {
  auto client = reader_.Client(watcher->vault_url, watcher->identity);
  if (!client.ok()) {
    return;  // an identity the reader refuses never will be accepted
  }
  auto push = [this, watcher](const std::string& object) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      pushed_[watcher->vault_url].insert(object);
    }
    cv_.notify_all();
  };
  FollowOptions follow;
  // What changed between the first read and the stream's start was not
  // seen: read the vault's mounts once more when the first stream is live.
  follow.resync_on_first_stream = true;
  FollowHandlers handlers;
  // A secret and a key may share a name: each change reaches only the
  // mounts of its own kind of object.
  handlers.changed = [push](const std::string& name) { push(ChangeKey("secret", name)); };
  handlers.key_changed = [push](const std::string& name) { push(ChangeKey("key", name)); };
  handlers.certificate_changed = [push](const std::string& name) { push(ChangeKey("cert", name)); };
  handlers.resync = [push] { push("*"); };
  handlers.error = [watcher](const Status& s) {
    COFFER_LOG(kDebug) << "watch " << watcher->vault_url << ": " << s.ToString();
  };
  handlers.wait = [this](std::chrono::milliseconds delay) {
    std::unique_lock<std::mutex> lock(mu_);
    return !cv_.wait_for(lock, delay, [&] { return stopping_; });
  };
  FollowChanges(**client, follow, handlers, cancel_);
}

void MountManager::PushLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || !pushed_.empty(); });
    if (stopping_) {
      return;
    }
    std::map<std::string, std::set<std::string>> pushed;
    pushed.swap(pushed_);
    lock.unlock();
    std::vector<Mount*> due;
    for (const auto& m : mounts_) {
      std::lock_guard<std::mutex> ml(m->mu);
      auto it = pushed.find(m->vault_url);
      if (it == pushed.end()) {
        continue;
      }
      bool hit = it->second.count("*") != 0;
      const bool any_secret = m->names.count(std::string(kAnySecret)) != 0;
      for (const std::string& object : it->second) {
        hit = hit || m->names.count(object) != 0 || (any_secret && StartsWith(object, "secret/"));
      }
      if (hit) {
        due.push_back(m.get());
      }
    }
    RefreshMounts(due);
    lock.lock();
  }
}

// ---- reload hooks -----------------------------------------------------------------------

void MountManager::RunReload(const MountConfig& config, const std::string& name) {
  const ReloadAction& action = config.reload;
  if (action.kind == ReloadAction::Kind::kSignal) {
    StatusOr<pid_t> pid = ReadReloadPid(action.pid_file);
    if (!pid.ok()) {
      COFFER_LOG(kWarning) << "mount " << name << ": reload: " << pid.status().message()
                           << "; no signal sent";
      return;
    }
    if (kill(*pid, action.signal) != 0) {
      COFFER_LOG(kWarning) << "mount " << name << ": reload: cannot signal process " << *pid;
    }
    return;
  }
  if (action.kind != ReloadAction::Kind::kCommand) {
    return;
  }
  std::vector<std::string> env = ReloadEnvironment(name, config.target);
  StatusOr<pid_t> child = exec::SpawnChild(action.argv, env);
  if (!child.ok()) {
    COFFER_LOG(kWarning) << "mount " << name << ": reload command: " << child.status().ToString();
    return;
  }
  pid_t pid = *child;
  {
    std::lock_guard<std::mutex> lock(hooks_mu_);
    ++running_hooks_;
  }
  std::thread([this, pid, name] {
    Reap(pid, name);
    std::lock_guard<std::mutex> lock(hooks_mu_);
    --running_hooks_;
    hooks_cv_.notify_all();
  }).detach();
}

void MountManager::Reap(pid_t pid, const std::string& name) {
  {
    // Reap the command; one that hangs is killed after a minute.
    for (int waited_ms = 0;; waited_ms += 50) {
      int status = 0;
      pid_t r = waitpid(pid, &status, WNOHANG);
      if (r == pid || r < 0) {
        if (r == pid && exec::ExitCodeOf(status) != 0) {
          COFFER_LOG(kWarning) << "mount " << name << ": reload command exited with "
                               << exec::ExitCodeOf(status);
        }
        return;
      }
      if (waited_ms == 60000) {
        kill(pid, SIGKILL);
      }
      usleep(50 * 1000);
    }
  }
}

}  // namespace coffer::agent
