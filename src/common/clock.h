#pragma once

#include <atomic>
#include <cstdint>

namespace coffer {

// Clock gives the current time. Injected everywhere time matters so that
// tests can move it.
class Clock {
 public:
  virtual ~Clock() = default;
  // Unix seconds.
  virtual int64_t NowSeconds() const = 0;
  // Unix microseconds. The default has the resolution of NowSeconds();
  // clocks that know better override it. NowSeconds() == NowMicros() / 1e6
  // (rounded down) for the clocks below.
  virtual int64_t NowMicros() const { return NowSeconds() * 1000000; }
};

// SystemClock reads the wall clock, to the microsecond. Thread-safe.
class SystemClock final : public Clock {
 public:
  int64_t NowSeconds() const override;
  int64_t NowMicros() const override;
  static SystemClock& Get();
};

// FakeClock is set by tests, to the microsecond. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t now_seconds) : now_us_(now_seconds * 1000000) {}
  int64_t NowSeconds() const override {
    int64_t us = now_us_.load();
    return us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
  }
  int64_t NowMicros() const override { return now_us_.load(); }
  void Set(int64_t now_seconds) { now_us_.store(now_seconds * 1000000); }
  void SetMicros(int64_t now_us) { now_us_.store(now_us); }
  void Advance(int64_t seconds) { now_us_.fetch_add(seconds * 1000000); }
  void AdvanceMicros(int64_t us) { now_us_.fetch_add(us); }

 private:
  std::atomic<int64_t> now_us_;
};

}  // namespace coffer
