#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "common/clock.h"

namespace coffer::auth {

// FailureLimit is a token bucket of failures: `burst` may happen at once,
// and one more is allowed every `refill_seconds`.
struct FailureLimit {
  int64_t burst = 10;
  int64_t refill_seconds = 6;
};

// FailureLimiter counts failed credential checks per key (a client id, a
// client address) and says when a key has failed too often. Only failures
// count: a key that never fails is never limited.
//
// Each key costs one table entry while it is short of a full bucket, and at
// most `max_keys` are held. When the table is full of keys that are still
// refilling, a key it does not hold is treated as limited (fail closed),
// until room frees up.
//
// Thread-safe. `clock` must outlive it.
class FailureLimiter {
 public:
  FailureLimiter(const Clock& clock, FailureLimit limit, size_t max_keys);
  FailureLimiter(const FailureLimiter&) = delete;
  FailureLimiter& operator=(const FailureLimiter&) = delete;

  // RetryAfter returns 0 when `key` may fail once more now, else the seconds
  // until it may (at least 1).
  int64_t RetryAfter(const std::string& key);
  // RecordFailure spends one failure of `key`. It does nothing for a key the
  // full table cannot hold.
  void RecordFailure(const std::string& key);

  size_t size() const;

 private:
  // Generic cell rate algorithm: a key's "theoretical arrival time" is when
  // its bucket is full again; a failure pushes it `refill_seconds` further.
  // The key is limited while that lies more than (burst - 1) refills ahead.
  int64_t RetryAfterLocked(const std::string& key, int64_t now);
  // Drops keys whose buckets are full again, at most once a second.
  void SweepLocked(int64_t now);
  static std::string Bounded(const std::string& key);

  const Clock& clock_;
  const FailureLimit limit_;
  const size_t max_keys_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, int64_t> full_at_;  // GUARDED_BY(mu_)
  int64_t last_sweep_ = 0;                            // GUARDED_BY(mu_)
};

}  // namespace coffer::auth
