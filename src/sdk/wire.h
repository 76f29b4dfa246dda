#pragma once

// The SDK's readers of what the vault sends: ids, challenges, errors,
// Retry-After and server-sent events. Pure functions, no I/O.

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "coffer/http_transport.h"
#include "coffer/secret_client.h"
#include "common/status.h"

namespace coffer {

// SplitObjectId splits https://host/<collection>/name[/version] (and the
// recovery id https://host/deleted<collection>/name, `deleted` then set when
// given) into its parts, `collection` being "secrets", "keys" or
// "certificates". False, with the outputs empty, for anything else.
bool SplitObjectId(const std::string& id, std::string_view collection, std::string* vault_url,
                   std::string* name, std::string* version, bool* deleted = nullptr);

// CheckName accepts Key Vault object names (1-127 of [0-9a-zA-Z-]), so that no
// name can change the path a request goes to. kInvalidArgument otherwise.
Status CheckName(const std::string& name);

// ScopeFromChallenge reads the scope to ask a token for from a 401's
// WWW-Authenticate (`scope=` or `resource=` + "/.default").
// SECURITY: as the Azure SDKs' challenge-resource check, the resource's host
// must be the vault's host or a parent domain of it; otherwise the vault could
// obtain a token for another service. kUnauthenticated when the answer is no
// challenge, or names another domain.
StatusOr<std::string> ScopeFromChallenge(const HttpResponse& response,
                                         const std::string& vault_url);

// RetryAfter reads retry-after-ms, x-ms-retry-after-ms or Retry-After
// (seconds); zero when absent or unreadable. Capped at one hour.
std::chrono::milliseconds RetryAfter(const HttpResponse& response);

// ErrorFromResponse turns a non-2xx answer into a Status: the canonical code
// for the HTTP status, Key Vault's error code as the reason, its message.
Status ErrorFromResponse(const HttpResponse& response);

struct SseEvent {
  std::string id;
  std::string event;
  std::string data;
};

// SseParser reads a server-sent-events body fed in pieces of any size.
class SseParser {
 public:
  static constexpr size_t kMaxEventBytes = 1 << 20;
  // Feed calls `on_event` per complete event (stopping when it returns false)
  // and keeps what is incomplete. kResourceExhausted when one event exceeds
  // kMaxEventBytes (overflowed() is then true and the parser stays failed).
  Status Feed(std::string_view piece, const std::function<bool(const SseEvent&)>& on_event);
  bool overflowed() const { return overflowed_; }

 private:
  std::string line_;
  SseEvent current_;
  bool has_field_ = false;
  size_t event_bytes_ = 0;
  bool overflowed_ = false;
};

// ChangeFromEvent reads a watch-stream event (Event Grid schema data).
SecretChange ChangeFromEvent(const SseEvent& event);

}  // namespace coffer
