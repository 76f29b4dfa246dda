#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

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
};

// WatchRegistry serves the watch streams: each gets, as server-sent events,
// every change of its vault its caller may read, in seq order, each once,
// resuming exactly after the token it presents.
//
// A stream opens in two steps. Open (on a worker thread) registers it and
// reads the changes it missed from the store; those go out as the first
// chunk of the response. Attach (once the connection is streaming) sends
// the changes that arrived in between, skipping what the backlog held, and
// from then on the hub's fan-out writes to it directly.
//
// Thread-safe.
class WatchRegistry {
 public:
  WatchRegistry(storage::Store& store, VaultNaming naming);

  // Open returns the response to send: 200 text/event-stream whose body is
  // the backlog and whose `stream` attaches the live part; or an error
  // (400 for a bad token, 410 ResumeTokenExpired when changes after the
  // token were already pruned).
  http::Response Open(WatchRequest request);

  // The hub's listener: writes each change to the live streams of its vault.
  void OnChanges(const std::vector<storage::ChangeRecord>& changes);

  // Sends a heartbeat comment to every stream and drops those that closed or
  // never attached. Call every few seconds.
  void Tick();

  size_t size();

  // ParseToken reads a resume token: -1 for "", else the seq it names.
  static StatusOr<int64_t> ParseToken(std::string_view token);

 private:
  struct Watcher;
  // The server-sent event for one change.
  std::string Frame(const storage::ChangeRecord& change) const;
  bool Wants(const Watcher& w, const storage::ChangeRecord& change) const;
  void Attach(const std::shared_ptr<Watcher>& w, std::shared_ptr<http::StreamWriter> writer);

  storage::Store& store_;
  const VaultNaming naming_;

  std::mutex mu_;
  // key: lower-case vault name
  std::map<std::string, std::vector<std::shared_ptr<Watcher>>> watchers_;  // guarded by mu_
  int64_t ticks_ = 0;                                                      // guarded by mu_
};

}  // namespace coffer::events
