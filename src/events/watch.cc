#include "events/watch.h"

#include <algorithm>
#include <charconv>

#include "common/strings.h"

namespace coffer::events {

namespace {

constexpr int kPage = 512;
// Changes kept for a stream between Open and Attach; past this it is sent
// `coffer.resync` when it attaches.
constexpr size_t kMaxPending = 10000;
// A stream the server never attached (its connection failed before the
// headers went out) is dropped after this many ticks.
constexpr int64_t kAttachTicks = 12;
// What a refused stream is told to wait: streams are long-lived, so a slot
// frees when another stream of the principal ends.
constexpr int kRetryAfterSeconds = 30;

// A control event of the stream: `coffer.ready`, `coffer.resync` or
// `coffer.closed`, with the resume token in both its id and its data.
std::string ControlFrame(std::string_view event, int64_t token, std::string_view reason = {}) {
  std::string t = std::to_string(token);
  std::string out = "id: " + t + "\nevent: " + std::string(event) + "\ndata: {\"token\":\"" + t;
  out += '"';
  if (!reason.empty()) {
    out += ",\"reason\":\"" + std::string(reason) + "\"";
  }
  return out + "}\n\n";
}

constexpr std::string_view kBacklogTooLarge = "BacklogTooLarge";

}  // namespace

struct WatchRegistry::Watcher {
  WatchRequest request;
  std::string principal;  // lower-case
  int64_t cursor = 0;     // the last seq this stream has (or will have) sent
  bool live = false;
  // False once removed from the registry; Attach then ends the stream, with
  // a `coffer.closed` event if `ended` names why.
  bool registered = true;
  std::string ended;
  int64_t opened_tick = 0;
  size_t backlog_bytes = 0;                    // the first chunk
  std::vector<storage::ChangeRecord> pending;  // arrived before Attach
  bool pending_overflowed = false;             // some were not kept
  std::shared_ptr<http::StreamWriter> writer;
};

WatchRegistry::WatchRegistry(storage::Store& store, VaultNaming naming, const Clock& clock,
                             WatchLimits limits)
    : store_(store), naming_(std::move(naming)), clock_(clock), limits_(limits) {}

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

void WatchRegistry::Unregister(const std::shared_ptr<Watcher>& w) {
  auto it = watchers_.find(AsciiLower(w->request.vault));
  if (it != watchers_.end()) {
    auto& list = it->second;
    list.erase(std::remove(list.begin(), list.end(), w), list.end());
    if (list.empty()) {
      watchers_.erase(it);
    }
  }
  if (w->registered && !w->principal.empty()) {
    auto count = per_principal_.find(w->principal);
    if (count != per_principal_.end() && --count->second == 0) {
      per_principal_.erase(count);
    }
  }
  w->registered = false;
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
  w->principal = AsciiLower(w->request.principal);
  w->cursor = after;
  {
    // Registered before the backlog is read: a change committed after the
    // read reaches `pending`; one in both is sent once (by seq).
    std::lock_guard<std::mutex> lock(mu_);
    if (!w->principal.empty()) {
      size_t& open = per_principal_[w->principal];
      if (open >= limits_.max_streams_per_principal) {
        // Streams whose peer left count until the next tick reaps them:
        // reap this principal's now, before refusing it.
        std::vector<std::shared_ptr<Watcher>> gone;
        for (const auto& [vault, list] : watchers_) {
          for (const auto& other : list) {
            if (other->principal == w->principal && other->live && other->writer->closed()) {
              gone.push_back(other);
            }
          }
        }
        for (const auto& other : gone) {
          Unregister(other);
        }
      }
      // SECURITY: each stream holds a connection and a share of every
      // change's fan-out for as long as it lives; one principal may not
      // take them all.
      size_t& now_open = per_principal_[w->principal];
      if (now_open >= limits_.max_streams_per_principal) {
        http::Response r = http::ErrorResponse(
            429, "Throttled",
            "This principal already holds " + std::to_string(now_open) +
                " watch streams on this server, the most it may; close one and retry.");
        r.SetHeader("Retry-After", std::to_string(kRetryAfterSeconds));
        return r;
      }
      ++now_open;
    }
    w->opened_tick = ticks_;
    watchers_[AsciiLower(w->request.vault)].push_back(w);
  }
  std::string backlog = ": coffer watch\n\n";
  int64_t cursor = after;
  // A backlog too large to send at once is not sent: the client is told to
  // read afresh instead (docs/events.md). The first chunk then stays far
  // below the server's stream limit, which would close the connection.
  bool resync = bounds->newest - after > limits_.max_backlog_changes;
  while (!resync) {
    auto page = store_.ListChanges(cursor, kPage);
    if (!page.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      Unregister(w);
      return http::ErrorResponse(page.status());
    }
    for (const auto& c : *page) {
      cursor = c.seq;
      if (Wants(*w, c)) {
        backlog += Frame(c);
        if (backlog.size() > limits_.max_backlog_bytes) {
          resync = true;
          break;
        }
      }
    }
    if (page->size() < static_cast<size_t>(kPage)) {
      break;
    }
  }
  if (resync) {
    // Everything up to the newest change is in what the client reads next;
    // what comes later is sent (it reaches `pending` from now on).
    cursor = std::max(cursor, bounds->newest);
    backlog = ": coffer watch\n\n" + ControlFrame("coffer.resync", cursor, kBacklogTooLarge);
  }
  // Tell the client where it stands even when nothing changed, so that it
  // can resume from here.
  backlog += ControlFrame("coffer.ready", cursor);
  {
    std::lock_guard<std::mutex> lock(mu_);
    w->cursor = std::max(w->cursor, cursor);
    w->backlog_bytes = backlog.size();
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
  if (!w->registered) {
    // Ended before it attached (token expired, principal deleted, or too
    // late to attach).
    if (!w->ended.empty()) {
      w->writer->Write(ControlFrame("coffer.closed", w->cursor, w->ended));
    }
    w->writer->Close();
    return;
  }
  std::string frames;
  bool resync = w->pending_overflowed;
  for (const auto& c : w->pending) {
    if (resync) {
      break;
    }
    if (c.seq > w->cursor) {
      w->cursor = c.seq;
      if (Wants(*w, c)) {
        frames += Frame(c);
        resync = w->backlog_bytes + frames.size() > limits_.max_backlog_bytes;
      }
    }
  }
  if (resync) {
    // Everything the hub has handed over is committed, so in what the
    // client reads next; what it hands over later is sent.
    w->cursor = std::max(w->cursor, delivered_);
    frames = ControlFrame("coffer.resync", w->cursor, kBacklogTooLarge);
  }
  w->writer->Write(std::move(frames));
  w->pending.clear();
  w->pending.shrink_to_fit();
  w->live = true;
}

void WatchRegistry::OnChanges(const std::vector<storage::ChangeRecord>& changes) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& c : changes) {
    delivered_ = std::max(delivered_, c.seq);
    auto it = watchers_.find(AsciiLower(c.vault));
    if (it == watchers_.end() || it->second.empty()) {
      continue;
    }
    std::string frame;  // rendered once, for the first stream that wants it
    for (const auto& w : it->second) {
      if (!w->live) {
        if (w->pending_overflowed) {
          continue;
        }
        if (w->pending.size() >= kMaxPending) {
          w->pending_overflowed = true;
          w->pending.clear();
          w->pending.shrink_to_fit();
          continue;
        }
        w->pending.push_back(c);
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
    for (const auto& [vault, list] : watchers_) {
      for (const auto& w : list) {
        bool gone = w->live ? !w->writer->Write(": keep-alive\n\n")
                            : ticks_ - w->opened_tick > kAttachTicks;
        if (gone) {
          dropped.push_back(w);
        }
      }
    }
    for (const auto& w : dropped) {
      Unregister(w);
    }
  }
  for (const auto& w : dropped) {
    if (w->writer) {
      w->writer->Close();
    }
  }
}

void WatchRegistry::EndWhere(const std::function<bool(const Watcher&)>& ends, const char* reason) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<Watcher>> ended;
  for (const auto& [vault, list] : watchers_) {
    for (const auto& w : list) {
      if (ends(*w)) {
        ended.push_back(w);
      }
    }
  }
  for (const auto& w : ended) {
    Unregister(w);
    w->ended = reason;
    // Under the lock, so that no change follows the final event; a stream
    // not attached yet gets it when it attaches.
    if (w->live) {
      w->writer->Write(ControlFrame("coffer.closed", w->cursor, reason));
      w->writer->Close();
    }
  }
}

void WatchRegistry::Expire() {
  int64_t now = clock_.NowSeconds();
  EndWhere([now](const Watcher& w) { return w.request.expires != 0 && w.request.expires <= now; },
           "TokenExpired");
}

void WatchRegistry::ClosePrincipal(std::string_view object_id) {
  std::string key = AsciiLower(object_id);
  if (key.empty()) {
    return;
  }
  EndWhere([&key](const Watcher& w) { return w.principal == key; }, "PrincipalDeleted");
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
