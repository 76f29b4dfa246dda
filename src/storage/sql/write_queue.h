#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "common/status.h"
#include "storage/sql_db.h"

namespace coffer::storage {

// WriteQueue hands the writes of many threads to one writer thread in
// groups, so that a backend commits them together: every write waiting when
// the writer takes a group joins it (at most `max_group`), and each caller
// gets its own write's status once the group is done.
//
// `run_group` runs on the writer thread. It receives the group's functions
// and fills in one status per function; how the group is committed (one
// transaction with a savepoint per write, retries) is the backend's.
//
// `before_group`, when given, runs on the writer thread once a write is
// waiting and before the group is taken: a backend that must wait for
// something first (another server's commit) waits there, and the writes
// that arrive meanwhile join the group instead of waiting for the next one.
//
// Thread-safe. Submit blocks until its write is done; call it from worker
// threads, never from I/O threads.
class WriteQueue {
 public:
  using WriteFn = std::function<Status(Db&)>;
  using RunGroup =
      std::function<void(const std::vector<const WriteFn*>& group, std::vector<Status>& results)>;

  WriteQueue(RunGroup run_group, size_t max_group, std::function<void()> before_group = {});
  // Stop()s.
  ~WriteQueue();
  WriteQueue(const WriteQueue&) = delete;
  WriteQueue& operator=(const WriteQueue&) = delete;

  // Start starts the writer thread.
  void Start();
  // Submit runs `fn` in the next group and returns its status; kUnavailable
  // once the queue is stopping.
  Status Submit(WriteFn fn);
  // Stop finishes the writes already queued and joins the writer thread.
  void Stop();

 private:
  struct Pending;
  void Loop();

  const RunGroup run_group_;
  const size_t max_group_;
  const std::function<void()> before_group_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending*> queue_;  // guarded by mu_
  bool stopping_ = false;       // guarded by mu_
  std::thread thread_;
};

}  // namespace coffer::storage
