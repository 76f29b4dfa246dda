#include "events/webhook_validation.h"

#include <chrono>

#include "common/encoding.h"
#include "common/strings.h"
#include "crypto/primitives.h"
#include "events/event_format.h"

namespace coffer::events {

namespace {

constexpr char kStatePending[] = "Pending";
constexpr char kStateAwaiting[] = "AwaitingManualAction";
constexpr char kStateSucceeded[] = "Succeeded";
constexpr char kStateFailed[] = "Failed";

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The header `lower_name` of a response (any case), or "".
std::string ResponseHeader(const http::Response& r, std::string_view lower_name) {
  for (const auto& [k, v] : r.headers) {
    if (EqualsIgnoreCase(k, lower_name)) {
      return v;
    }
  }
  return "";
}

HandshakeResult Failed(std::string reason) {
  return {HandshakeResult::Outcome::kFailed, std::move(reason)};
}

}  // namespace

Validation ReadValidation(const Json& stored) {
  Validation v;
  if (!stored.is_object() || !stored.contains("validation")) {
    return v;
  }
  const Json& j = stored["validation"];
  std::string state = j.is_object() ? StringMember(j, "state") : "";
  if (state == kStatePending) {
    v.state = Validation::State::kPending;
  } else if (state == kStateAwaiting) {
    v.state = Validation::State::kAwaitingManualAction;
  } else if (state == kStateSucceeded) {
    v.state = Validation::State::kSucceeded;
  } else {
    v.state = Validation::State::kFailed;
  }
  if (j.is_object()) {
    v.token_hash = StringMember(j, "tokenHash");
    v.error = StringMember(j, "error");
    if (auto e = j.find("expires"); e != j.end() && e->is_number_integer()) {
      v.expires = e->get<int64_t>();
    }
  }
  return v;
}

Json ValidationJson(const Validation& v) {
  const char* state = kStateFailed;
  switch (v.state) {
    case Validation::State::kPending:
      state = kStatePending;
      break;
    case Validation::State::kAwaitingManualAction:
      state = kStateAwaiting;
      break;
    case Validation::State::kLegacy:
    case Validation::State::kSucceeded:
      state = kStateSucceeded;
      break;
    case Validation::State::kFailed:
      break;
  }
  Json j = {{"state", state}};
  if (!v.token_hash.empty()) {
    j["tokenHash"] = v.token_hash;
    j["expires"] = v.expires;
  }
  if (!v.error.empty()) {
    j["error"] = v.error;
  }
  return j;
}

bool IsValidated(const Validation& v) {
  return v.state == Validation::State::kSucceeded || v.state == Validation::State::kLegacy;
}

std::string ProvisioningState(const Validation& v, int64_t now) {
  switch (v.state) {
    case Validation::State::kLegacy:
    case Validation::State::kSucceeded:
      return kStateSucceeded;
    case Validation::State::kPending:
      return now < v.expires ? "Creating" : kStateFailed;
    case Validation::State::kAwaitingManualAction:
      return now < v.expires ? kStateAwaiting : kStateFailed;
    case Validation::State::kFailed:
      break;
  }
  return kStateFailed;
}

std::string ValidationTokenHash(const std::string& token) {
  return HexEncode(crypto::Sha256(token));
}

HandshakeMessage EventGridValidationRequest(const std::string& name, const std::string& topic,
                                            const std::string& code,
                                            const std::string& validation_url) {
  Json event = {{"id", crypto::RandomUuid()},
                {"topic", topic},
                {"subject", ""},
                {"data", {{"validationCode", code}, {"validationUrl", validation_url}}},
                {"eventType", "Microsoft.EventGrid.SubscriptionValidationEvent"},
                {"eventTime", FormatEventTime(NowMs())},
                {"metadataVersion", "1"},
                {"dataVersion", "2"}};
  HandshakeMessage m;
  m.method = "POST";
  m.headers = {{"Content-Type", "application/json; charset=utf-8"},
               {"aeg-event-type", "SubscriptionValidation"},
               {"aeg-subscription-name", AsciiUpper(name)},
               {"aeg-delivery-count", "0"},
               {"aeg-data-version", "2"},
               {"aeg-metadata-version", "1"}};
  m.body = ToJson(Json::array({event}));
  return m;
}

HandshakeMessage CloudEventsValidationRequest(const std::string& origin,
                                              const std::string& validation_url) {
  HandshakeMessage m;
  m.method = "OPTIONS";
  m.headers = {{"WebHook-Request-Origin", origin},
               {"WebHook-Request-Callback", validation_url},
               {"WebHook-Request-Rate", "120"}};
  return m;
}

HandshakeResult JudgeEventGridValidation(const http::Response& r, const std::string& code) {
  if (r.status != 200) {
    return Failed("the endpoint answered the validation event with HTTP " +
                  std::to_string(r.status) + ", not 200");
  }
  Json body = Json::parse(r.body, nullptr, false);
  if (body.is_object() &&
      crypto::ConstantTimeEquals(StringMember(body, "validationResponse"), code)) {
    return {HandshakeResult::Outcome::kSucceeded, ""};
  }
  // Event Grid's manual mode: a 200 without the code waits for a GET of the
  // validation URL.
  return {HandshakeResult::Outcome::kAwaitingManualAction, ""};
}

HandshakeResult JudgeCloudEventsValidation(const http::Response& r, const std::string& origin) {
  if (r.status < 200 || r.status > 299) {
    return Failed("the endpoint answered the validation request (OPTIONS) with HTTP " +
                  std::to_string(r.status) + ", not 2xx");
  }
  std::string allowed = ResponseHeader(r, "webhook-allowed-origin");
  if (allowed == "*" || EqualsIgnoreCase(allowed, origin)) {
    return {HandshakeResult::Outcome::kSucceeded, ""};
  }
  return {HandshakeResult::Outcome::kAwaitingManualAction, ""};
}

}  // namespace coffer::events
