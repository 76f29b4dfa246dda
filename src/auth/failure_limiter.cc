#include "auth/failure_limiter.h"

#include <algorithm>

namespace coffer::auth {
namespace {

// Keys are client ids and addresses; an attacker's longer ones are cut, so
// that an entry's size is bounded.
constexpr size_t kMaxKeyBytes = 128;

}  // namespace

FailureLimiter::FailureLimiter(const Clock& clock, FailureLimit limit, size_t max_keys)
    : clock_(clock),
      limit_{std::max<int64_t>(limit.burst, 1), std::max<int64_t>(limit.refill_seconds, 1)},
      max_keys_(std::max<size_t>(max_keys, 1)) {}

std::string FailureLimiter::Bounded(const std::string& key) {
  return key.size() <= kMaxKeyBytes ? key : key.substr(0, kMaxKeyBytes);
}

int64_t FailureLimiter::RetryAfter(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  return RetryAfterLocked(Bounded(key), clock_.NowSeconds());
}

int64_t FailureLimiter::RetryAfterLocked(const std::string& key, int64_t now) {
  auto it = full_at_.find(key);
  if (it == full_at_.end()) {
    if (full_at_.size() < max_keys_) {
      return 0;
    }
    SweepLocked(now);
    // SECURITY: a table full of failing keys refuses new ones rather than
    // forget an old one, which would hand its owner a fresh bucket.
    return full_at_.size() < max_keys_ ? 0 : limit_.refill_seconds;
  }
  // A wall clock that went back cannot hold a key longer than a full burst.
  it->second = std::min(it->second, now + limit_.burst * limit_.refill_seconds);
  int64_t ahead = it->second - now;
  int64_t allowed = (limit_.burst - 1) * limit_.refill_seconds;
  return ahead > allowed ? ahead - allowed : 0;
}

void FailureLimiter::RecordFailure(const std::string& raw_key) {
  std::string key = Bounded(raw_key);
  std::lock_guard<std::mutex> lock(mu_);
  int64_t now = clock_.NowSeconds();
  auto it = full_at_.find(key);
  if (it == full_at_.end()) {
    if (full_at_.size() >= max_keys_) {
      SweepLocked(now);
      if (full_at_.size() >= max_keys_) {
        return;
      }
    }
    it = full_at_.emplace(std::move(key), now).first;
  }
  // Never more than a full burst ahead, even when the wall clock went back.
  int64_t start =
      std::min(std::max(it->second, now), now + (limit_.burst - 1) * limit_.refill_seconds);
  it->second = start + limit_.refill_seconds;
}

void FailureLimiter::SweepLocked(int64_t now) {
  if (now == last_sweep_) {
    return;
  }
  last_sweep_ = now;
  for (auto it = full_at_.begin(); it != full_at_.end();) {
    it = it->second <= now ? full_at_.erase(it) : std::next(it);
  }
}

size_t FailureLimiter::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return full_at_.size();
}

}  // namespace coffer::auth
