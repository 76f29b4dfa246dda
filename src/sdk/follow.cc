#include "sdk/follow.h"

#include <algorithm>

#include "common/strings.h"

namespace coffer {

namespace {

// The event types (Microsoft.KeyVault.<kind>NewVersionCreated,
// Coffer.KeyVault.<kind>Updated, ...) after which a read of an object of
// this kind may answer otherwise.
bool ChangesObject(std::string_view event_type, std::string_view kind) {
  for (std::string_view prefix : {"Microsoft.KeyVault.", "Coffer.KeyVault.", ""}) {
    if (!StartsWith(event_type, prefix)) {
      continue;
    }
    std::string_view rest = event_type.substr(prefix.size());
    if (!StartsWith(rest, kind)) {
      continue;
    }
    rest = rest.substr(kind.size());
    for (std::string_view what :
         {"NewVersionCreated", "Updated", "Deleted", "Recovered", "Purged"}) {
      if (rest == what) {
        return true;
      }
    }
  }
  return false;
}

}  // namespace

bool ChangesValue(std::string_view event_type) {
  return ChangesObject(event_type, "Secret");
}

bool ChangesKey(std::string_view event_type) {
  return ChangesObject(event_type, "Key");
}

bool ChangesCertificate(std::string_view event_type) {
  return ChangesObject(event_type, "Certificate");
}

void FollowChanges(SecretClient& client, const FollowOptions& options,
                   const FollowHandlers& handlers, const std::atomic<bool>& cancel) {
  WatchOptions watch = options.watch;
  watch.from.clear();
  bool resync = options.resync_on_first_stream;
  std::chrono::milliseconds delay(0);
  while (!cancel.load()) {
    bool live = false;
    StatusOr<std::string> end = client.Watch(
        watch,
        [&](const SecretChange& change) {
          if (change.type == "coffer.ready" || change.type == "coffer.resync") {
            // A resync is the server's word that changes were skipped: the
            // caller reads afresh, once the stream is live (at once if it
            // already is), and the stream goes on from the resync's token.
            live = live || change.type == "coffer.ready";
            resync = resync || change.type == "coffer.resync";
            if (live && resync) {
              if (handlers.resync) {
                handlers.resync();
              }
              resync = false;
            }
          } else if (!change.name.empty()) {
            if (ChangesValue(change.type) && handlers.changed) {
              handlers.changed(AsciiLower(change.name));
            } else if (ChangesKey(change.type) && handlers.key_changed) {
              handlers.key_changed(AsciiLower(change.name));
            } else if (ChangesCertificate(change.type) && handlers.certificate_changed) {
              handlers.certificate_changed(AsciiLower(change.name));
            }
          }
          if (!change.token.empty()) {
            watch.from = change.token;
          }
          return true;
        },
        &cancel);
    if (cancel.load()) {
      return;
    }
    if (!end.ok() && end.status().reason() == "ResumeTokenExpired") {
      watch.from.clear();
      resync = true;
    } else if (!end.ok() && handlers.error) {
      handlers.error(end.status());
    }
    delay =
        live ? std::chrono::milliseconds(500)
             : std::min(std::max(delay * 2, std::chrono::milliseconds(1000)), options.max_backoff);
    if (!handlers.wait(delay)) {
      return;
    }
  }
}

}  // namespace coffer
