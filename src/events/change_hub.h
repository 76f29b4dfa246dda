#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "common/status.h"
#include "storage/store.h"

namespace coffer::events {

// ChangeHub tails the store's change feed and hands each committed change,
// once and in seq order, to its listeners (the watch streams, the webhook
// dispatcher, the audit of notifications).
//
// Reading the feed rather than being told of each change keeps the order
// the commits had, with no gap even when two writers commit at once, and
// picks up changes committed by another server on the same database. A
// writer calls Notify() after its commit so that the read happens at once;
// otherwise the feed is read every `poll_ms`.
//
// Thread-safe. Listeners run on the hub's thread and must not block.
class ChangeHub {
 public:
  using Listener = std::function<void(const std::vector<storage::ChangeRecord>&)>;
  using Ticker = std::function<void()>;

  explicit ChangeHub(storage::Store& store, int poll_ms = 1000);
  ~ChangeHub();

  // Before Start only.
  void AddListener(Listener listener);
  // Runs `ticker` on the hub's thread about every `interval_ms`.
  void AddTicker(int interval_ms, Ticker ticker);

  // Start begins after the newest change committed so far.
  Status Start();
  void Notify();
  void Stop();

 private:
  void Loop();

  storage::Store& store_;
  const int poll_ms_;
  std::vector<Listener> listeners_;
  struct Tick {
    int interval_ms;
    Ticker fn;
    int64_t next_ms;
  };
  std::vector<Tick> tickers_;
  int64_t last_seq_ = 0;  // hub thread only

  std::mutex mu_;
  std::condition_variable cv_;
  bool notified_ = false;  // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace coffer::events
