#pragma once

#include <atomic>
#include <cstdint>

namespace coffer {

// Clock gives the current time in Unix seconds. Injected everywhere time
// matters so that tests can move it.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowSeconds() const = 0;
};

// SystemClock reads the wall clock. Thread-safe.
class SystemClock final : public Clock {
 public:
  int64_t NowSeconds() const override;
  static SystemClock& Get();
};

// FakeClock is set by tests. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t now) : now_(now) {}
  int64_t NowSeconds() const override { return now_.load(); }
  void Set(int64_t now) { now_.store(now); }
  void Advance(int64_t seconds) { now_.fetch_add(seconds); }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace coffer
