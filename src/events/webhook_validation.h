#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/json.h"
#include "http/message.h"

namespace coffer::events {

// Endpoint validation (docs/events.md, "Endpoint validation"): before a
// subscription receives any event, its endpoint proves that it wants them,
// as Event Grid asks.
//
// - Event Grid schema: a POST of one Microsoft.EventGrid.SubscriptionValidationEvent
//   (`aeg-event-type: SubscriptionValidation`) whose data carries a
//   `validationCode` and a `validationUrl`. The endpoint answers 200 with
//   {"validationResponse": "<code>"}: validated. 200 without the code: the
//   subscription awaits a GET of the validation URL (manual validation).
// - CloudEvents 1.0 schema: the abuse-protection handshake, an OPTIONS with
//   `WebHook-Request-Origin` (and the validation URL as
//   `WebHook-Request-Callback`). A 2xx answer with `WebHook-Allowed-Origin`
//   naming the origin (or "*") validates; a 2xx without it awaits the
//   callback URL.
// Anything else fails the validation.

// The validation state of a subscription, stored with it as the member
// "validation" of EventSubscriptionRecord::properties_json:
//   {"state": "Pending" | "AwaitingManualAction" | "Succeeded" | "Failed",
//    "tokenHash": <hex SHA-256 of the validation URL's token>, "expires": <Unix s>,
//    "error": <why it failed>}
// A record without the member was created before validation existed and
// counts as validated.
struct Validation {
  enum class State { kLegacy, kPending, kAwaitingManualAction, kSucceeded, kFailed };
  State state = State::kLegacy;
  // Set while the validation URL may be used (kPending, kAwaitingManualAction);
  // cleared when it has been, so it works once.
  std::string token_hash;
  int64_t expires = 0;
  std::string error;
};

// How long the validation URL works, as Event Grid's: 10 minutes.
inline constexpr int64_t kValidationUrlSeconds = 600;

// ReadValidation reads the "validation" member of stored properties; a
// malformed one reads as kFailed.
Validation ReadValidation(const Json& stored_properties);
Json ValidationJson(const Validation& validation);
// True when the subscription may receive events (kSucceeded, kLegacy).
bool IsValidated(const Validation& validation);
// The ARM provisioningState at `now` (Unix seconds): "Creating" while the
// handshake runs, "AwaitingManualAction" until the URL is used or expires,
// "Succeeded", or "Failed" (also once the URL expired unused).
std::string ProvisioningState(const Validation& validation, int64_t now);

// The hash under which a validation token is stored (hex SHA-256).
std::string ValidationTokenHash(const std::string& token);

// What a handshake came to.
struct HandshakeResult {
  enum class Outcome { kSucceeded, kAwaitingManualAction, kFailed };
  Outcome outcome = Outcome::kFailed;
  // kFailed: why, in words for the caller (no addresses, no response text).
  std::string reason;
};

// The Event Grid validation request's headers and body (a JSON array of one
// event) for a subscription named `name` on `topic` (the vault's ARM id).
struct HandshakeMessage {
  std::string method;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};
HandshakeMessage EventGridValidationRequest(const std::string& name, const std::string& topic,
                                            const std::string& code,
                                            const std::string& validation_url);
// The CloudEvents OPTIONS request, from `origin` (this server's host name).
HandshakeMessage CloudEventsValidationRequest(const std::string& origin,
                                              const std::string& validation_url);

// Judge an endpoint's answer to the requests above.
HandshakeResult JudgeEventGridValidation(const http::Response& response, const std::string& code);
HandshakeResult JudgeCloudEventsValidation(const http::Response& response,
                                           const std::string& origin);

}  // namespace coffer::events
