#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "events/event_format.h"
#include "http/message.h"
#include "storage/store.h"

namespace coffer::events {

// What one watch stream asks for (docs/events.md).
struct WatchRequest {
  std::string vault;  // as stored
  // Resume after this seq (the `id:` of the last event received); -1 means
  // "from now on".
  int64_t after_seq = -1;
  std::set<std::string> names;  // lower-case object names; empty: all
  std::set<std::string> types;  // full event types; empty: all
  // Whether the caller may see this change (its read permission on the
  // object). Called for every change the stream would carry.
  std::function<bool(const storage::ChangeRecord&)> may_read;
  // The caller's object id: streams are counted per principal, and
  // ClosePrincipal ends them. Empty: not counted.
  std::string principal;
  // When the caller's token expires (Unix seconds): the stream ends then.
  // 0: never (tests).
  int64_t expires = 0;
};

struct WatchLimits {
  // Bytes of events a stream may be sent at once when it opens: the changes
  // after its token plus those that arrive before it is attached. Beyond
  // this it gets `coffer.resync` instead. Well under the HTTP server's 1 MiB
  // stream backlog (net::ServerOptions::max_stream_backlog_bytes), so that
  // a stream is never closed for the backlog it was opened with.
  size_t max_backlog_bytes = 512 * 1024;
  // Changes after a token read from the store for one stream, at most; a
  // token further behind gets `coffer.resync` without reading them.
  int64_t max_backlog_changes = 100000;
  // Open streams per principal; the next one is refused with 429.
  size_t max_streams_per_principal = 16;
};

// WatchRegistry serves the watch streams: each gets, as server-sent events,
// every change of its vault its caller may read, in seq order, each once,
// resuming exactly after the token it presents — or, when that backlog is
// too large to send at once, one `coffer.resync` event that tells the client
// to read afresh and continue from the token it carries.
//
// A stream opens in two steps. Open (on a worker thread) registers it and
// reads the changes it missed from the store; those go out as the first
// chunk of the response. Attach (once the connection is streaming) sends
// the changes that arrived in between, skipping what the backlog held, and
// from then on the hub's fan-out writes to it directly.
//
// A stream ends with a final `coffer.closed` event naming the reason when
// its caller's token expires (Expire) or its principal is deleted
// (ClosePrincipal); its client reconnects with a fresh token and the id of
// that event.
//
// Thread-safe. `store` and `clock` must outlive it.
class WatchRegistry {
 public:
  WatchRegistry(storage::Store& store, VaultNaming naming, const Clock& clock = SystemClock::Get(),
                WatchLimits limits = {});

  // Open returns the response to send: 200 text/event-stream whose body is
  // the backlog (or a resync) and whose `stream` attaches the live part; or
  // an error (400 for a bad token, 410 ResumeTokenExpired when changes after
  // the token were already pruned, 429 Throttled with Retry-After when the
  // principal already holds max_streams_per_principal streams).
  http::Response Open(WatchRequest request);

  // The hub's listener: writes each change to the live streams of its vault.
  void OnChanges(const std::vector<storage::ChangeRecord>& changes);

  // Sends a heartbeat comment to every stream and drops those that closed or
  // never attached. Call every few seconds.
  void Tick();

  // Ends the streams whose token has expired, each with a final
  // `coffer.closed` event (reason TokenExpired). Call about every second.
  void Expire();

  // Ends every stream of this principal (object id, any case) at once, each
  // with a final `coffer.closed` event (reason PrincipalDeleted).
  void ClosePrincipal(std::string_view object_id);

  size_t size();

  // ParseToken reads a resume token: -1 for "", else the seq it names.
  static StatusOr<int64_t> ParseToken(std::string_view token);

 private:
  struct Watcher;
  // The server-sent event for one change.
  std::string Frame(const storage::ChangeRecord& change) const;
  bool Wants(const Watcher& w, const storage::ChangeRecord& change) const;
  void Attach(const std::shared_ptr<Watcher>& w, std::shared_ptr<http::StreamWriter> writer);
  void Unregister(const std::shared_ptr<Watcher>& w);
  // Removes the streams `ends` picks, under mu_, and ends each with a
  // `coffer.closed` event giving `reason`.
  void EndWhere(const std::function<bool(const Watcher&)>& ends, const char* reason);

  storage::Store& store_;
  const VaultNaming naming_;
  const Clock& clock_;
  const WatchLimits limits_;

  std::mutex mu_;
  // key: lower-case vault name
  std::map<std::string, std::vector<std::shared_ptr<Watcher>>> watchers_;  // guarded by mu_
  // Open streams per lower-case principal, attached or not.
  std::map<std::string, size_t> per_principal_;  // guarded by mu_
  int64_t ticks_ = 0;                            // guarded by mu_
  // The newest seq the hub has handed over.
  int64_t delivered_ = 0;  // guarded by mu_
};

}  // namespace coffer::events
