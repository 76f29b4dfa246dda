#include "events/change_hub.h"

#include <algorithm>
#include <chrono>

#include "common/log.h"

namespace coffer::events {

namespace {

constexpr int kPage = 512;

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

ChangeHub::ChangeHub(storage::Store& store, int poll_ms) : store_(store), poll_ms_(poll_ms) {}

ChangeHub::~ChangeHub() {
  Stop();
}

void ChangeHub::AddListener(Listener listener) {
  listeners_.push_back(std::move(listener));
}

void ChangeHub::AddTicker(int interval_ms, Ticker ticker) {
  tickers_.push_back({interval_ms, std::move(ticker), SteadyMs() + interval_ms});
}

Status ChangeHub::Start() {
  ASSIGN_OR_RETURN(auto bounds, store_.GetChangeBounds());
  last_seq_ = bounds.newest;
  thread_ = std::thread([this] { Loop(); });
  return OkStatus();
}

void ChangeHub::Notify() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    notified_ = true;
  }
  cv_.notify_one();
}

void ChangeHub::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void ChangeHub::Loop() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      int64_t wait_ms = poll_ms_;
      int64_t now = SteadyMs();
      for (const auto& t : tickers_) {
        wait_ms = std::min(wait_ms, std::max<int64_t>(0, t.next_ms - now));
      }
      cv_.wait_for(lock, std::chrono::milliseconds(wait_ms),
                   [this] { return notified_ || stopping_; });
      if (stopping_) {
        return;
      }
      notified_ = false;
    }
    // Read until the feed is drained: a page at a time, each handed on at
    // once so that listeners see changes in order and memory stays bounded.
    while (true) {
      auto changes = store_.ListChanges(last_seq_, kPage);
      if (!changes.ok()) {
        COFFER_LOG(kWarning) << "reading the change feed failed: " << changes.status().ToString();
        break;
      }
      if (changes->empty()) {
        break;
      }
      last_seq_ = changes->back().seq;
      for (const auto& listener : listeners_) {
        listener(*changes);
      }
      if (changes->size() < static_cast<size_t>(kPage)) {
        break;
      }
    }
    int64_t now = SteadyMs();
    for (auto& t : tickers_) {
      if (now >= t.next_ms) {
        t.next_ms = now + t.interval_ms;
        t.fn();
      }
    }
  }
}

}  // namespace coffer::events
