#include "storage/sql/write_queue.h"

#include <future>

namespace coffer::storage {

struct WriteQueue::Pending {
  WriteFn fn;
  std::promise<Status> done;
};

WriteQueue::WriteQueue(RunGroup run_group, size_t max_group, std::function<void()> before_group)
    : run_group_(std::move(run_group)),
      max_group_(max_group),
      before_group_(std::move(before_group)) {}

WriteQueue::~WriteQueue() {
  Stop();
}

void WriteQueue::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void WriteQueue::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

Status WriteQueue::Submit(WriteFn fn) {
  Pending op{std::move(fn), {}};
  std::future<Status> done = op.done.get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      return UnavailableError("storage is shutting down");
    }
    queue_.push_back(&op);
  }
  cv_.notify_one();
  return done.get();
}

void WriteQueue::Loop() {
  std::vector<Pending*> group;
  std::vector<const WriteFn*> fns;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) {
        return;  // stopping and drained
      }
    }
    if (before_group_) {
      // Only this thread takes from the queue, so what is waiting now is
      // still waiting afterwards, with whatever arrived meanwhile.
      before_group_();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      while (!queue_.empty() && group.size() < max_group_) {
        group.push_back(queue_.front());
        queue_.pop_front();
      }
    }
    for (Pending* p : group) {
      fns.push_back(&p->fn);
    }
    std::vector<Status> results(group.size());
    run_group_(fns, results);
    for (size_t i = 0; i < group.size(); ++i) {
      group[i]->done.set_value(results[i]);
    }
    group.clear();
    fns.clear();
  }
}

}  // namespace coffer::storage
