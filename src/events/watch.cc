#include "events/watch.h"

#include <algorithm>
#include <charconv>

#include "common/strings.h"

namespace coffer::events {

namespace {

constexpr int kPage = 512;
// Changes a stream may lag behind before it is dropped: its client then
// reconnects with its token and reads them from the store.
constexpr size_t kMaxPending = 10000;
// A stream the server never attached (its connection failed before the
// headers went out) is dropped after this many ticks.
constexpr int64_t kAttachTicks = 12;

}  // namespace

struct WatchRegistry::Watcher {
  WatchRequest request;
  int64_t cursor = 0;  // the last seq this stream has (or will have) sent
  bool live = false;
  int64_t opened_tick = 0;
  std::vector<storage::ChangeRecord> pending;  // arrived before Attach
  std::shared_ptr<http::StreamWriter> writer;
};

WatchRegistry::WatchRegistry(storage::Store& store, VaultNaming naming)
    : store_(store), naming_(std::move(naming)) {}

StatusOr<int64_t> WatchRegistry::ParseToken(std::string_view token) {
  if (token.empty()) {
    return -1;
  }
  int64_t seq = 0;
  auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), seq);
  if (ec != std::errc() || end != token.data() + token.size() || seq < 0 || token.size() > 18) {
    return InvalidArgumentError("The resume token is not one this server issued.", "BadParameter");
  }
  return seq;
}

std::string WatchRegistry::Frame(const storage::ChangeRecord& c) const {
  return "id: " + std::to_string(c.seq) + "\nevent: " + EventType(c) +
         "\ndata: " + ToJson(EventGridEvent(c, naming_)) + "\n\n";
}

bool WatchRegistry::Wants(const Watcher& w, const storage::ChangeRecord& c) const {
  const WatchRequest& r = w.request;
  if (!EqualsIgnoreCase(c.vault, r.vault)) {
    return false;
  }
  if (!r.names.empty() && (c.object_type == "Vault" || r.names.count(AsciiLower(c.name)) == 0)) {
    return false;
  }
  if (!r.types.empty() && r.types.count(EventType(c)) == 0) {
    return false;
  }
  return !r.may_read || r.may_read(c);
}

http::Response WatchRegistry::Open(WatchRequest request) {
  auto bounds = store_.GetChangeBounds();
  if (!bounds.ok()) {
    return http::ErrorResponse(bounds.status());
  }
  int64_t after = request.after_seq < 0 ? bounds->newest : request.after_seq;
  if (after > bounds->newest) {
    return http::ErrorResponse(
        InvalidArgumentError("The resume token is not one this server issued.", "BadParameter"));
  }
  if (after + 1 < bounds->oldest) {
    return http::ErrorResponse(410, "ResumeTokenExpired",
                               "Changes after this resume token are no longer kept; read the "
                               "objects afresh and watch without a token.");
  }
  auto w = std::make_shared<Watcher>();
  w->request = std::move(request);
  w->cursor = after;
  {
    // Registered before the backlog is read: a change committed after the
    // read reaches `pending`; one in both is sent once (by seq).
    std::lock_guard<std::mutex> lock(mu_);
    w->opened_tick = ticks_;
    watchers_[AsciiLower(w->request.vault)].push_back(w);
  }
  std::string backlog = ": coffer watch\n\n";
  int64_t cursor = after;
  while (true) {
    auto page = store_.ListChanges(cursor, kPage);
    if (!page.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      auto& list = watchers_[AsciiLower(w->request.vault)];
      list.erase(std::remove(list.begin(), list.end(), w), list.end());
      return http::ErrorResponse(page.status());
    }
    for (const auto& c : *page) {
      cursor = c.seq;
      if (Wants(*w, c)) {
        backlog += Frame(c);
      }
    }
    if (page->size() < static_cast<size_t>(kPage)) {
      break;
    }
  }
  // Tell the client where it stands even when nothing changed, so that it
  // can resume from here.
  backlog += "id: " + std::to_string(cursor) + "\nevent: coffer.ready\ndata: {\"token\":\"" +
             std::to_string(cursor) + "\"}\n\n";
  {
    std::lock_guard<std::mutex> lock(mu_);
    w->cursor = std::max(w->cursor, cursor);
  }
  http::Response r;
  r.status = 200;
  r.SetHeader("Content-Type", "text/event-stream; charset=utf-8");
  r.SetHeader("Cache-Control", "no-cache");
  r.body = std::move(backlog);
  r.stream = [this, w](std::shared_ptr<http::StreamWriter> writer) {
    Attach(w, std::move(writer));
  };
  return r;
}

void WatchRegistry::Attach(const std::shared_ptr<Watcher>& w,
                           std::shared_ptr<http::StreamWriter> writer) {
  std::lock_guard<std::mutex> lock(mu_);
  w->writer = std::move(writer);
  if (w->pending.size() >= kMaxPending) {
    // Some changes were not kept: end the stream rather than leave a gap;
    // the client resumes from the last id it got.
    w->writer->Close();
    return;
  }
  for (const auto& c : w->pending) {
    if (c.seq > w->cursor) {
      w->cursor = c.seq;
      if (Wants(*w, c)) {
        w->writer->Write(Frame(c));
      }
    }
  }
  w->pending.clear();
  w->pending.shrink_to_fit();
  w->live = true;
}

void WatchRegistry::OnChanges(const std::vector<storage::ChangeRecord>& changes) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& c : changes) {
    auto it = watchers_.find(AsciiLower(c.vault));
    if (it == watchers_.end() || it->second.empty()) {
      continue;
    }
    std::string frame;  // rendered once, for the first stream that wants it
    for (const auto& w : it->second) {
      if (!w->live) {
        if (w->pending.size() < kMaxPending) {
          w->pending.push_back(c);
        }
        continue;
      }
      if (c.seq <= w->cursor) {
        continue;
      }
      w->cursor = c.seq;
      if (!Wants(*w, c)) {
        continue;
      }
      if (frame.empty()) {
        frame = Frame(c);
      }
      w->writer->Write(frame);
    }
  }
}

void WatchRegistry::Tick() {
  std::vector<std::shared_ptr<Watcher>> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++ticks_;
    for (auto it = watchers_.begin(); it != watchers_.end();) {
      auto& list = it->second;
      for (auto w = list.begin(); w != list.end();) {
        bool gone = (*w)->live ? !(*w)->writer->Write(": keep-alive\n\n")
                               : ticks_ - (*w)->opened_tick > kAttachTicks ||
                                     (*w)->pending.size() >= kMaxPending;
        if (gone) {
          dropped.push_back(*w);
          w = list.erase(w);
        } else {
          ++w;
        }
      }
      it = list.empty() ? watchers_.erase(it) : std::next(it);
    }
  }
  for (const auto& w : dropped) {
    if (w->writer) {
      w->writer->Close();
    }
  }
}

size_t WatchRegistry::size() {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& [vault, list] : watchers_) {
    n += list.size();
  }
  return n;
}

}  // namespace coffer::events
