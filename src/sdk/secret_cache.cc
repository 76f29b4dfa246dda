#include "coffer/secret_cache.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include "common/status.h"
#include "common/strings.h"
#include "sdk/follow.h"
#include "sdk/secret_cache_testing.h"

namespace coffer {
namespace {

using Clock = std::chrono::steady_clock;

struct RefreshHook {
  std::mutex mu;
  std::function<void(const std::string&)> fn;  // GUARDED_BY(mu)
};

RefreshHook& TheRefreshHook() {
  static auto* hook = new RefreshHook();  // leaked on purpose: caches may refresh until exit
  return *hook;
}

void RunRefreshHook(const std::string& name) {
  std::function<void(const std::string&)> fn;
  {
    std::lock_guard<std::mutex> lock(TheRefreshHook().mu);
    fn = TheRefreshHook().fn;
  }
  if (fn) {
    fn(name);
  }
}

// Transient failures serve what is cached; any other answer (the secret is
// gone, access was revoked) is the truth and drops the cached value.
bool Transient(const Status& s) {
  switch (s.code()) {
    case StatusCode::kUnavailable:
    case StatusCode::kDeadlineExceeded:
    case StatusCode::kResourceExhausted:
    case StatusCode::kInternal:
    case StatusCode::kUnknown:
      return true;
    default:
      return false;
  }
}

}  // namespace

class SecretCache::Impl {
 public:
  Impl(std::shared_ptr<SecretClient> client, SecretCacheOptions options)
      : client_(std::move(client)), options_(options) {
    refresher_ = std::thread([this] { RefreshLoop(); });
    if (options_.watch) {
      watcher_ = std::thread([this] { WatchLoop(); });
    }
  }

  ~Impl() {
    {
      std::lock_guard<std::mutex> lock(q_mu_);
      stop_ = true;
    }
    cancel_.store(true);
    q_cv_.notify_all();
    if (watcher_.joinable()) {
      watcher_.join();
    }
    refresher_.join();
  }

  StatusOr<KeyVaultSecret> Get(const std::string& name, const std::string& version) {
    std::string key = Key(name, version);
    Clock::time_point now = Clock::now();
    {
      std::shared_lock<std::shared_mutex> lock(mu_);
      auto it = entries_.find(key);
      if (it != entries_.end()) {
        auto age = now - it->second.fetched;
        if (!version.empty() || age < options_.ttl) {
          hits_.fetch_add(1, std::memory_order_relaxed);
          return it->second.secret;
        }
        if (age < options_.ttl + options_.stale_while_revalidate) {
          stale_hits_.fetch_add(1, std::memory_order_relaxed);
          KeyVaultSecret stale = it->second.secret;
          lock.unlock();
          Enqueue(AsciiLower(name));
          return stale;
        }
      }
    }
    misses_.fetch_add(1, std::memory_order_relaxed);
    StatusOr<KeyVaultSecret> fresh = client_->GetSecret(name, version);
    if (fresh.ok()) {
      Store(key, *fresh, /*notify=*/version.empty());
      return fresh;
    }
    errors_.fetch_add(1, std::memory_order_relaxed);
    RecordError(key, fresh.status());
    if (Transient(fresh.status())) {
      std::shared_lock<std::shared_mutex> lock(mu_);
      auto it = entries_.find(key);
      if (it != entries_.end()) {
        stale_hits_.fetch_add(1, std::memory_order_relaxed);
        return it->second.secret;
      }
    } else {
      Drop(key);
    }
    return fresh.status();
  }

  int AddCallback(const std::string& name, ChangeCallback callback) {
    int id;
    {
      std::lock_guard<std::mutex> lock(cb_mu_);
      id = next_id_++;
      callbacks_[id] = {AsciiLower(name), std::move(callback)};
    }
    (void)Get(name, "");  // primes the cache; a failure is retried by the poll
    return id;
  }

  void RemoveCallback(int id) {
    std::lock_guard<std::mutex> lock(cb_mu_);
    callbacks_.erase(id);
  }

  void RefreshAll() {
    std::vector<std::string> names = LatestNames();
    std::lock_guard<std::mutex> lock(q_mu_);
    for (std::string& n : names) {
      pending_.insert(std::move(n));
    }
    q_cv_.notify_all();
  }

  Status LastError(const std::string& name) const {
    std::lock_guard<std::mutex> lock(err_mu_);
    auto it = last_error_.find(Key(name, ""));
    return it == last_error_.end() ? OkStatus() : it->second;
  }

  SecretCacheStats Stats() const {
    SecretCacheStats s;
    s.hits = hits_.load();
    s.stale_hits = stale_hits_.load();
    s.misses = misses_.load();
    s.refreshes = refreshes_.load();
    s.errors = errors_.load();
    s.changes = changes_.load();
    return s;
  }

 private:
  struct Entry {
    KeyVaultSecret secret;
    Clock::time_point fetched;
  };

  static std::string Key(const std::string& name, const std::string& version) {
    return AsciiLower(name) + "/" + version;
  }

  void RecordError(const std::string& key, const Status& status) {
    std::lock_guard<std::mutex> lock(err_mu_);
    last_error_[key] = status;
  }

  void Drop(const std::string& key) {
    std::unique_lock<std::shared_mutex> lock(mu_);
    entries_.erase(key);
  }

  // Store caches `secret`; when it replaces a different latest value, the
  // refresh thread is told to run the callbacks.
  void Store(const std::string& key, const KeyVaultSecret& secret, bool notify) {
    bool changed = false;
    {
      std::unique_lock<std::shared_mutex> lock(mu_);
      auto [it, inserted] = entries_.try_emplace(key, Entry{secret, Clock::now()});
      if (!inserted) {
        changed = it->second.secret.properties.version != secret.properties.version ||
                  it->second.secret.value != secret.value;
        it->second = Entry{secret, Clock::now()};
      }
    }
    RecordError(key, OkStatus());
    if (changed && notify) {
      std::lock_guard<std::mutex> lock(q_mu_);
      changed_.push_back(secret);
      q_cv_.notify_all();
    }
  }

  std::vector<std::string> LatestNames() {
    std::set<std::string> names;
    {
      std::shared_lock<std::shared_mutex> lock(mu_);
      for (const auto& [key, entry] : entries_) {
        if (key.back() == '/') {
          names.insert(key.substr(0, key.size() - 1));
        }
      }
    }
    {
      std::lock_guard<std::mutex> lock(cb_mu_);
      for (const auto& [id, cb] : callbacks_) {
        names.insert(cb.first);
      }
    }
    return {names.begin(), names.end()};
  }

  void Enqueue(std::string name) {
    std::lock_guard<std::mutex> lock(q_mu_);
    pending_.insert(std::move(name));
    q_cv_.notify_all();
  }

  void RunCallbacks(const KeyVaultSecret& secret) {
    std::string name = AsciiLower(secret.properties.name);
    std::vector<ChangeCallback> run;
    {
      std::lock_guard<std::mutex> lock(cb_mu_);
      for (const auto& [id, cb] : callbacks_) {
        if (cb.first == name) {
          run.push_back(cb.second);
        }
      }
    }
    for (const ChangeCallback& cb : run) {
      changes_.fetch_add(1, std::memory_order_relaxed);
      cb(secret);
    }
  }

  void RefreshOne(const std::string& name) {
    std::string key = Key(name, "");
    StatusOr<KeyVaultSecret> fresh = client_->GetSecret(name, "");
    if (fresh.ok()) {
      Store(key, *fresh, true);
      // Counted only once stored: whoever sees the count is served the new
      // value (and its callbacks are queued).
      refreshes_.fetch_add(1, std::memory_order_release);
      RunRefreshHook(name);
      std::lock_guard<std::mutex> lock(q_mu_);
      backoff_.erase(name);
      return;
    }
    errors_.fetch_add(1, std::memory_order_relaxed);
    RecordError(key, fresh.status());
    if (!Transient(fresh.status())) {
      Drop(key);
      return;
    }
    std::lock_guard<std::mutex> lock(q_mu_);
    auto& b = backoff_[name];
    b.delay = b.delay.count() == 0 ? std::chrono::milliseconds(1000)
                                   : std::min(b.delay * 2, options_.max_backoff);
    b.next = Clock::now() + b.delay;
  }

  void RefreshLoop() {
    Clock::time_point next_poll = Clock::now() + options_.poll_interval;
    std::unique_lock<std::mutex> lock(q_mu_);
    while (!stop_) {
      Clock::time_point wake = next_poll;
      for (const auto& [name, b] : backoff_) {
        wake = std::min(wake, b.next);
      }
      q_cv_.wait_until(lock, wake, [&] { return stop_ || !pending_.empty() || !changed_.empty(); });
      if (stop_) {
        break;
      }
      Clock::time_point now = Clock::now();
      std::set<std::string> due;
      if (now >= next_poll) {
        next_poll = now + options_.poll_interval;
        lock.unlock();
        std::vector<std::string> names = LatestNames();
        lock.lock();
        due.insert(names.begin(), names.end());
      }
      for (auto it = backoff_.begin(); it != backoff_.end(); ++it) {
        if (it->second.next <= now) {
          due.insert(it->first);
        }
      }
      for (auto it = pending_.begin(); it != pending_.end();) {
        auto b = backoff_.find(*it);
        if (b == backoff_.end() || b->second.next <= now) {
          due.insert(*it);
          it = pending_.erase(it);
        } else {
          ++it;  // waits for its back-off
        }
      }
      std::vector<KeyVaultSecret> changed;
      changed.swap(changed_);
      lock.unlock();
      for (const KeyVaultSecret& s : changed) {
        RunCallbacks(s);
      }
      for (const std::string& name : due) {
        RefreshOne(name);
      }
      lock.lock();
      // Callbacks of what these refreshes found run at the loop's next turn.
    }
  }

  void WatchLoop() {
    FollowOptions follow;
    follow.max_backoff = options_.max_backoff;
    FollowHandlers handlers;
    handlers.changed = [this](const std::string& name) { Enqueue(name); };
    handlers.resync = [this] { RefreshAll(); };  // changes were missed: read everything afresh
    handlers.wait = [this](std::chrono::milliseconds delay) {
      std::unique_lock<std::mutex> lock(q_mu_);
      return !q_cv_.wait_for(lock, delay, [&] { return stop_; });
    };
    FollowChanges(*client_, follow, handlers, cancel_);
  }

  struct Backoff {
    std::chrono::milliseconds delay{0};
    Clock::time_point next;
  };

  std::shared_ptr<SecretClient> client_;
  SecretCacheOptions options_;

  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, Entry> entries_;  // GUARDED_BY(mu_)

  mutable std::mutex err_mu_;
  std::unordered_map<std::string, Status> last_error_;  // GUARDED_BY(err_mu_)

  std::mutex cb_mu_;
  std::map<int, std::pair<std::string, ChangeCallback>> callbacks_;  // GUARDED_BY(cb_mu_)
  int next_id_ = 1;                                                  // GUARDED_BY(cb_mu_)

  std::mutex q_mu_;
  std::condition_variable q_cv_;
  bool stop_ = false;                       // GUARDED_BY(q_mu_)
  std::set<std::string> pending_;           // GUARDED_BY(q_mu_)
  std::vector<KeyVaultSecret> changed_;     // GUARDED_BY(q_mu_)
  std::map<std::string, Backoff> backoff_;  // GUARDED_BY(q_mu_)
  std::atomic<bool> cancel_{false};

  std::atomic<uint64_t> hits_{0}, stale_hits_{0}, misses_{0}, refreshes_{0}, errors_{0},
      changes_{0};

  std::thread refresher_;
  std::thread watcher_;
};

void SetSecretCacheRefreshHookForTesting(std::function<void(const std::string& name)> hook) {
  std::lock_guard<std::mutex> lock(TheRefreshHook().mu);
  TheRefreshHook().fn = std::move(hook);
}

SecretCache::SecretCache(std::shared_ptr<SecretClient> client, SecretCacheOptions options)
    : impl_(std::make_unique<Impl>(std::move(client), options)) {}

SecretCache::~SecretCache() = default;

StatusOr<KeyVaultSecret> SecretCache::GetSecret(const std::string& name,
                                                const std::string& version) {
  return impl_->Get(name, version);
}

int SecretCache::OnChange(const std::string& name, ChangeCallback callback) {
  return impl_->AddCallback(name, std::move(callback));
}

void SecretCache::RemoveCallback(int id) {
  impl_->RemoveCallback(id);
}

void SecretCache::Refresh() {
  impl_->RefreshAll();
}

Status SecretCache::LastError(const std::string& name) const {
  return impl_->LastError(name);
}

SecretCacheStats SecretCache::stats() const {
  return impl_->Stats();
}

}  // namespace coffer
