#pragma once

// SecretCache: cached reads of one vault's secrets, kept fresh in the
// background, with a callback when a secret's value changes.
//
// - A cached value younger than `ttl` is returned without any request.
// - Older than `ttl` but younger than `ttl + stale_while_revalidate`: the
//   cached value is returned at once and a refresh is queued.
// - Older still, or not cached: read synchronously. If that read fails and a
//   value is cached (of any age), the cached value is returned: a vault
//   outage serves what was last read; the next refresh recovers by itself.
// - With `watch` on, a background thread follows the vault's watch stream
//   (reconnecting with its resume token, with back-off) and refreshes a
//   secret as soon as it changes; every `poll_interval` all cached latest
//   versions are re-read as well, which is the fallback when the stream is
//   unavailable. Failed refreshes back off exponentially up to `max_backoff`.
// - OnChange callbacks run on the cache's refresh thread, once per observed
//   change of value or version, never while a cache lock is held.
//
// Thread-safe. The destructor stops the background threads (it waits at most
// one request timeout).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "coffer/secret_client.h"
#include "coffer/status.h"

namespace coffer {

struct SecretCacheOptions {
  std::chrono::milliseconds ttl{std::chrono::minutes(5)};
  std::chrono::milliseconds stale_while_revalidate{std::chrono::hours(1)};
  bool watch = true;
  std::chrono::milliseconds poll_interval{std::chrono::minutes(5)};
  std::chrono::milliseconds max_backoff{std::chrono::minutes(5)};
};

struct SecretCacheStats {
  uint64_t hits = 0;        // answered from the cache, no request
  uint64_t stale_hits = 0;  // answered from the cache, refresh queued or read failed
  uint64_t misses = 0;      // read synchronously
  uint64_t refreshes = 0;   // background reads that succeeded, counted once GetSecret serves them
  uint64_t errors = 0;      // reads that failed
  uint64_t changes = 0;     // changes observed (callbacks fired per subscriber)
};

class SecretCache {
 public:
  // Called with the new secret after a change of the latest version's value.
  using ChangeCallback = std::function<void(const KeyVaultSecret&)>;

  SecretCache(std::shared_ptr<SecretClient> client, SecretCacheOptions options = {});
  ~SecretCache();
  SecretCache(const SecretCache&) = delete;
  SecretCache& operator=(const SecretCache&) = delete;

  // GetSecret as described above; `version` "" is the latest. A pinned
  // version never changes and is never refreshed.
  StatusOr<KeyVaultSecret> GetSecret(const std::string& name, const std::string& version = "");

  // OnChange registers a callback for `name` (its latest version) and returns
  // an id for RemoveCallback. The secret is read (and cached) if it is not yet.
  int OnChange(const std::string& name, ChangeCallback callback);
  void RemoveCallback(int id);

  // Refresh re-reads every cached latest version now (as a poll cycle).
  void Refresh();

  // LastError is the outcome of the last read of `name` (latest version):
  // OK when it succeeded or none was made. A failed background refresh shows
  // here while the cache goes on serving the value it has.
  Status LastError(const std::string& name) const;

  SecretCacheStats stats() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace coffer
