#pragma once

// Following a vault's watch stream for as long as a caller runs: reconnect
// with the last resume token, back off while the vault cannot be reached,
// and say when the caller must read afresh. Shared by SecretCache and the
// node agent's push loop.

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "coffer/secret_client.h"

namespace coffer {

struct FollowOptions {
  // Which secrets; `from` is ignored (following starts now).
  WatchOptions watch;
  // Reconnects after a failed connection start at 1 s and double up to this.
  // After a stream that was live, the next connection comes after 500 ms.
  std::chrono::milliseconds max_backoff{60000};
  // Also call `resync` when the first stream is live (for a caller that read
  // before following began).
  bool resync_on_first_stream = false;
};

struct FollowHandlers {
  // A secret's value may have changed (a new version, an update, a deletion,
  // a recovery, a purge): its name, lower-cased.
  std::function<void(const std::string& name)> changed;
  // A key's public half or attributes may have changed (the same events of
  // a key): its name, lower-cased. Optional; a key change never calls
  // `changed`, nor a secret change this, whatever their names.
  std::function<void(const std::string& name)> key_changed;
  // A certificate may have changed (the same events of a certificate): its
  // name, lower-cased. Optional, and apart from the other two as they are
  // from each other. A new version of a certificate is also one of its key
  // and of its secret, each with an event of its own.
  std::function<void(const std::string& name)> certificate_changed;
  // Changes may have been missed: the resume token expired, or the server
  // sent `coffer.resync` because the changes after it were too many to send
  // (and the first stream, with resync_on_first_stream). Called once the
  // stream is live, so nothing between the caller's fresh read and the
  // stream is lost.
  std::function<void()> resync;
  // A stream ended with this error; it is retried. Optional.
  std::function<void(const Status&)> error;
  // Sleeps for `delay`, or less when the caller stops; false stops following.
  std::function<bool(std::chrono::milliseconds delay)> wait;
};

// ChangesValue tells whether an event of this type may change what a read
// of the secret returns; ChangesKey the same of a key, ChangesCertificate of
// a certificate.
bool ChangesValue(std::string_view event_type);
bool ChangesKey(std::string_view event_type);
bool ChangesCertificate(std::string_view event_type);

// FollowChanges follows `client`'s watch stream until `cancel` becomes true
// or `handlers.wait` returns false. Handlers run on the calling thread.
void FollowChanges(SecretClient& client, const FollowOptions& options,
                   const FollowHandlers& handlers, const std::atomic<bool>& cancel);

}  // namespace coffer
