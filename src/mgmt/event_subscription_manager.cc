#include "mgmt/event_subscription_manager.h"

#include "common/encoding.h"
#include "common/strings.h"
#include "crypto/primitives.h"
#include "events/webhook_validation.h"
#include "mgmt/arm.h"

namespace coffer::mgmt {

namespace {

constexpr size_t kMaxSubscriptionsPerVault = 100;
// Handshakes block a request thread for up to the delivery timeout each.
constexpr int kMaxHandshakes = 4;

// Event Grid's rule for subscription names: 3-64 letters, digits and '-'.
bool ValidName(const std::string& name) {
  if (name.size() < 3 || name.size() > 64) {
    return false;
  }
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') {
      return false;
    }
  }
  return true;
}

std::string BaseUrl(const std::string& url) {
  size_t q = url.find_first_of("?#");
  return q == std::string::npos ? url : url.substr(0, q);
}

http::Response Error(int status, const std::string& code, const std::string& message) {
  return http::ErrorResponse(status, code, message);
}

// The properties as stored: what ParseSubscription accepted, normalised,
// with the endpoint URL sealed.
Json Normalized(const events::Subscription& s, const std::string& sealed_url,
                const events::Validation& validation) {
  Json types = s.included_types.empty() ? Json(nullptr) : Json(s.included_types);
  return Json{
      {"destination",
       {{"endpointType", "WebHook"},
        {"properties",
         {{"endpointUrlSealed", sealed_url}, {"endpointBaseUrl", BaseUrl(s.endpoint_url)}}}}},
      {"filter",
       {{"includedEventTypes", types},
        {"subjectBeginsWith", s.subject_begins_with},
        {"subjectEndsWith", s.subject_ends_with},
        {"isSubjectCaseSensitive", false}}},
      {"eventDeliverySchema", s.cloud_events ? "CloudEventSchemaV1_0" : "EventGridSchema"},
      {"retryPolicy",
       {{"maxDeliveryAttempts", s.max_delivery_attempts},
        {"eventTimeToLiveInMinutes", s.event_ttl_minutes}}},
      {"validation", events::ValidationJson(validation)}};
}

// What a PUT or PATCH makes of the subscription `old` (none: a create).
struct Plan {
  events::Subscription parsed;
  // The endpoint must (again) prove that it wants the events: the
  // subscription is new, its URL or schema changes, or it was never
  // validated.
  bool revalidate = true;
  events::Validation old_validation;
};

StatusOr<Plan> MakePlan(const http::Request& req, const Json& props,
                        const std::optional<storage::EventSubscriptionRecord>& old,
                        const events::UrlSeal& seal, const std::string& name) {
  Plan plan;
  Json merged = props;
  std::optional<Json> stored;
  if (old) {
    ASSIGN_OR_RETURN(stored, seal.Unseal(*old));
  }
  if (req.method == "PATCH") {
    if (!stored) {
      return NotFoundError("Event subscription '" + name + "' does not exist.", "ResourceNotFound");
    }
    merged = *stored;
    merged.merge_patch(props);
  }
  RETURN_IF_ERROR(events::ParseSubscription(merged, plan.parsed));
  if (stored) {
    // SECURITY: the state comes from the stored record, never from the
    // request body (a PATCH could carry a "validation" member).
    plan.old_validation = events::ReadValidation(*stored);
    events::Subscription before;
    bool same_endpoint = events::ParseSubscription(*stored, before).ok() &&
                         before.endpoint_url == plan.parsed.endpoint_url &&
                         before.cloud_events == plan.parsed.cloud_events;
    plan.revalidate = !same_endpoint || !events::IsValidated(plan.old_validation);
  }
  return plan;
}

// Counts a handshake in flight for as long as it lives.
class HandshakeSlot {
 public:
  explicit HandshakeSlot(std::atomic<int>& count) : count_(count) {
    taken_ = count_.fetch_add(1) < kMaxHandshakes;
  }
  ~HandshakeSlot() { count_.fetch_sub(1); }
  bool taken() const { return taken_; }

 private:
  std::atomic<int>& count_;
  bool taken_ = false;
};

}  // namespace

EventSubscriptionManager::EventSubscriptionManager(std::string subscription_id,
                                                   storage::Store& store, const Clock& clock,
                                                   Hooks hooks)
    : subscription_id_(std::move(subscription_id)),
      store_(store),
      clock_(clock),
      hooks_(std::move(hooks)) {}

Json EventSubscriptionManager::ToArm(const storage::VaultRecord& vault,
                                     const storage::EventSubscriptionRecord& r) const {
  Json p = Json::parse(r.properties_json, nullptr, false);
  if (!p.is_object()) {
    p = Json::object();
  }
  events::Validation validation = events::ReadValidation(p);
  p.erase("validation");
  std::string base = p["destination"]["properties"].value("endpointBaseUrl", "");
  p["destination"]["properties"] = {
      {"endpointBaseUrl", base}, {"maxEventsPerBatch", 1}, {"preferredBatchSizeInKilobytes", 64}};
  p["topic"] = vault.ResourceId();
  p["provisioningState"] = events::ProvisioningState(validation, clock_.NowSeconds());
  p["labels"] = Json::array();
  return Json{
      {"id", vault.ResourceId() + "/providers/Microsoft.EventGrid/eventSubscriptions/" + r.name},
      {"name", r.name},
      {"type", "Microsoft.EventGrid/eventSubscriptions"},
      {"properties", p}};
}

std::vector<ArmRoute> EventSubscriptionManager::Routes() {
  auto route = [this](std::string_view method, std::string_view pattern, std::string_view action,
                      bool collection, std::string_view verb = "") {
    return ArmRoute{method, pattern, action, collection,
                    [this, verb](const ArmCall& call) { return Handle(call, verb); }};
  };
  constexpr std::string_view kAll =
      "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{vault}/"
      "providers/Microsoft.EventGrid/eventSubscriptions";
  constexpr std::string_view kOne =
      "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{vault}/"
      "providers/Microsoft.EventGrid/eventSubscriptions/{name}";
  constexpr std::string_view kRead = "Microsoft.EventGrid/eventSubscriptions/read";
  constexpr std::string_view kWrite = "Microsoft.EventGrid/eventSubscriptions/write";
  return {
      route("GET", kAll, kRead, true),
      route("GET", kOne, kRead, false),
      route("PUT", kOne, kWrite, false),
      route("PATCH", kOne, kWrite, false),
      route("DELETE", kOne, "Microsoft.EventGrid/eventSubscriptions/delete", false),
      route("POST",
            "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{vault}/"
            "providers/Microsoft.EventGrid/eventSubscriptions/{name}/getFullUrl",
            "Microsoft.EventGrid/eventSubscriptions/getFullUrl/action", false, "getFullUrl"),
      route("POST",
            "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{vault}/"
            "providers/Microsoft.EventGrid/eventSubscriptions/{name}/getSigningKey",
            "Microsoft.EventGrid/eventSubscriptions/getSigningKey/action", false, "getSigningKey"),
      route("POST",
            "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{vault}/"
            "providers/Microsoft.EventGrid/eventSubscriptions/{name}/regenerateSigningKey",
            "Microsoft.EventGrid/eventSubscriptions/regenerateSigningKey/action", false,
            "regenerateSigningKey"),
  };
}

http::Response EventSubscriptionManager::Handle(const ArmCall& call, std::string_view action) {
  const http::Request& req = call.request;
  const std::string rg(call.params.Get("rg"));
  const std::string vault_name(call.params.Get("vault"));
  auto vault = store_.GetVault(vault_name);
  if (!vault.ok() || vault->deleted() || !EqualsIgnoreCase(vault->resource_group, rg)) {
    if (vault.ok() || vault.status().code() == StatusCode::kNotFound) {
      return Error(404, "ResourceNotFound",
                   "The Resource 'Microsoft.KeyVault/vaults/" + vault_name +
                       "' under resource group '" + rg + "' was not found.");
    }
    return ArmError(vault.status());
  }
  auto subs = store_.ListEventSubscriptions(vault->name);
  if (!subs.ok()) {
    return ArmError(subs.status());
  }
  const std::string name(call.params.Get("name"));
  if (name.empty()) {
    Json items = Json::array();
    for (const auto& s : *subs) {
      items.push_back(ToArm(*vault, s));
    }
    return http::JsonResponse(200, ToJson(Json{{"value", items}}));
  }
  const storage::EventSubscriptionRecord* found = nullptr;
  for (const auto& s : *subs) {
    if (EqualsIgnoreCase(s.name, name)) {
      found = &s;
    }
  }
  if (action.empty() && (req.method == "PUT" || req.method == "PATCH")) {
    return Put(*vault, name, found, req);
  }
  if (found == nullptr) {
    return Error(404, "ResourceNotFound",
                 "Event subscription '" + name.substr(0, 100) + "' does not exist on vault '" +
                     vault->name + "'.");
  }
  if (action.empty()) {
    if (req.method == "GET") {
      return http::JsonResponse(200, ToJson(ToArm(*vault, *found)));
    }
    if (req.method == "DELETE") {
      Status deleted = store_.DeleteEventSubscription(vault->name, found->name);
      if (!deleted.ok()) {
        return ArmError(deleted);
      }
      hooks_.changed();
      return http::EmptyResponse(200);
    }
    return Error(405, "MethodNotAllowed", "Use GET, PUT, PATCH or DELETE.");
  }
  if (EqualsIgnoreCase(action, "getFullUrl")) {
    auto p = hooks_.url_seal.Unseal(*found);
    if (!p.ok()) {
      return ArmError(p.status());
    }
    return http::JsonResponse(
        200, ToJson(Json{{"endpointUrl", (*p)["destination"]["properties"]["endpointUrl"]}}));
  }
  if (EqualsIgnoreCase(action, "getSigningKey") ||
      EqualsIgnoreCase(action, "regenerateSigningKey")) {
    storage::EventSubscriptionRecord r = *found;
    if (EqualsIgnoreCase(action, "regenerateSigningKey")) {
      auto put = store_.PutEventSubscription(
          vault->name, found->name,
          [&](const std::optional<storage::EventSubscriptionRecord>& current,
              size_t) -> StatusOr<storage::EventSubscriptionRecord> {
            if (!current) {
              return NotFoundError("The event subscription was deleted.", "ResourceNotFound");
            }
            storage::EventSubscriptionRecord next = *current;
            next.key_generation++;
            next.updated = clock_.NowSeconds();
            return next;
          });
      if (!put.ok()) {
        return ArmError(put.status());
      }
      r = *put;
      hooks_.changed();
    }
    std::string key = hooks_.signing_key(r.vault, r.name, r.key_generation);
    return http::JsonResponse(200, ToJson(Json{{"signingKey", Base64UrlEncode(key)},
                                               {"keyGeneration", r.key_generation},
                                               {"header", "Coffer-Signature"}}));
  }
  return Error(404, "NotFound", "Unknown event subscription action.");
}

http::Response EventSubscriptionManager::Put(const storage::VaultRecord& vault,
                                             const std::string& name,
                                             const storage::EventSubscriptionRecord* found,
                                             const http::Request& req) {
  if (!ValidName(name)) {
    return Error(400, "InvalidRequest",
                 "Event subscription names have 3-64 letters, digits and '-'.");
  }
  Json body = Json::parse(req.body, nullptr, false);
  if (!body.is_object()) {
    return Error(400, "InvalidRequestContent", "The request body must be a JSON object.");
  }
  Json props = body.value("properties", Json::object());
  if (req.method == "PATCH" && !props.is_object()) {
    return Error(400, "InvalidRequestContent", "'properties' must be an object.");
  }
  auto bounds = store_.GetChangeBounds();
  if (!bounds.ok()) {
    return ArmError(bounds.status());
  }
  // What the request makes of the subscription as read: its endpoint is
  // checked before anything is written. The write makes it again from the
  // record as it is then.
  std::optional<storage::EventSubscriptionRecord> seen;
  if (found != nullptr) {
    seen = *found;
  }
  auto pre = MakePlan(req, props, seen, hooks_.url_seal, name);
  if (!pre.ok()) {
    return ArmError(pre.status());
  }
  Status precondition =
      CheckPreconditions(req, seen ? std::optional<int64_t>(seen->version) : std::nullopt);
  if (!precondition.ok()) {
    return ArmError(precondition);
  }
  std::optional<HandshakeSlot> slot;
  std::string token;
  if (pre->revalidate) {
    // The slot bounds the name lookup too: both block this thread.
    slot.emplace(handshakes_);
    if (!slot->taken()) {
      http::Response busy = Error(429, "TooManyRequests",
                                  "Too many event subscription endpoints are being validated "
                                  "at once; retry shortly.");
      busy.SetHeader("Retry-After", "5");
      return busy;
    }
    Status target = hooks_.check_target(pre->parsed.endpoint_url);
    if (!target.ok()) {
      return ArmError(target);
    }
    // SECURITY: the validation URL's token: 256 random bits, stored only as
    // its hash, cleared once used.
    token = Base64UrlEncode(crypto::RandomBytes(32));
  }
  bool created = false;
  std::optional<storage::EventSubscriptionRecord> before;
  // PATCH merges into the properties as they are when the change is
  // written; the limit counts what the vault holds then.
  auto put = store_.PutEventSubscription(
      vault.name, name,
      [&](const std::optional<storage::EventSubscriptionRecord>& old,
          size_t existing) -> StatusOr<storage::EventSubscriptionRecord> {
        ASSIGN_OR_RETURN(Plan plan, MakePlan(req, props, old, hooks_.url_seal, name));
        RETURN_IF_ERROR(
            CheckPreconditions(req, old ? std::optional<int64_t>(old->version) : std::nullopt));
        if (!old && existing >= kMaxSubscriptionsPerVault) {
          return InvalidArgumentError("A vault has at most 100 event subscriptions.",
                                      "InvalidRequest");
        }
        if (plan.revalidate != pre->revalidate ||
            plan.parsed.endpoint_url != pre->parsed.endpoint_url) {
          return AbortedError(
              "The event subscription was changed by another request meanwhile; retry.",
              "Conflict");
        }
        events::Validation validation = plan.old_validation;
        if (plan.revalidate) {
          validation = {events::Validation::State::kPending, events::ValidationTokenHash(token),
                        clock_.NowSeconds() + events::kValidationUrlSeconds, ""};
        }
        storage::EventSubscriptionRecord r;
        r.vault = vault.name;
        r.name = old ? old->name : name;
        r.properties_json = ToJson(Normalized(
            plan.parsed, hooks_.url_seal.Seal(vault.name, r.name, plan.parsed.endpoint_url),
            validation));
        r.key_generation = old ? old->key_generation : 1;
        // Events committed from now on (Event Grid delivers nothing older);
        // validation moves the start to when it succeeded.
        r.start_seq = old ? old->start_seq : bounds->newest;
        r.created = old ? old->created : clock_.NowSeconds();
        r.updated = clock_.NowSeconds();
        created = !old;
        before = old;
        return r;
      });
  if (!put.ok()) {
    return ArmError(put.status());
  }
  hooks_.changed();
  if (!pre->revalidate) {
    http::Response r = http::JsonResponse(created ? 201 : 200, ToJson(ToArm(vault, *put)));
    r.SetHeader("ETag", ETag(put->version));
    return r;
  }
  events::Subscription target = pre->parsed;
  target.vault = vault.name;
  target.name = put->name;
  return Finish(vault, before, *put, target, token, created);
}

http::Response EventSubscriptionManager::Finish(
    const storage::VaultRecord& vault,
    const std::optional<storage::EventSubscriptionRecord>& before,
    const storage::EventSubscriptionRecord& written, const events::Subscription& target,
    const std::string& token, bool created) {
  std::string validation_url = hooks_.validation_base + "/eventsubscriptions/" +
                               PercentEncode(vault.name) + "/" + PercentEncode(written.name) +
                               "/validate?token=" + token;
  events::HandshakeResult result = hooks_.validate(target, validation_url);
  auto bounds = store_.GetChangeBounds();
  if (!bounds.ok()) {
    return ArmError(bounds.status());
  }
  const std::string hash = events::ValidationTokenHash(token);
  bool restored = false;
  auto put = store_.PutEventSubscription(
      vault.name, written.name,
      [&](const std::optional<storage::EventSubscriptionRecord>& current,
          size_t) -> StatusOr<storage::EventSubscriptionRecord> {
        if (!current) {
          return NotFoundError(
              "The event subscription was deleted while its endpoint was "
              "being validated.",
              "ResourceNotFound");
        }
        Json stored = Json::parse(current->properties_json, nullptr, false);
        events::Validation v = events::ReadValidation(stored);
        if (!stored.is_object() || v.token_hash != hash) {
          // Validated through its URL meanwhile, or changed by another
          // request: that state stands.
          return AbortedError("superseded");
        }
        storage::EventSubscriptionRecord next = *current;
        next.updated = clock_.NowSeconds();
        restored = false;
        switch (result.outcome) {
          case events::HandshakeResult::Outcome::kSucceeded:
            v = {events::Validation::State::kSucceeded, "", 0, ""};
            next.start_seq = std::max(next.start_seq, bounds->newest);
            break;
          case events::HandshakeResult::Outcome::kAwaitingManualAction:
            v.state = events::Validation::State::kAwaitingManualAction;
            break;
          case events::HandshakeResult::Outcome::kFailed:
            if (before && events::IsValidated(events::ReadValidation(
                              Json::parse(before->properties_json, nullptr, false)))) {
              // A working subscription is not lost to a bad new endpoint.
              next.properties_json = before->properties_json;
              next.start_seq = before->start_seq;
              restored = true;
              return next;
            }
            v = {events::Validation::State::kFailed, "", 0, result.reason};
            break;
        }
        stored["validation"] = events::ValidationJson(v);
        next.properties_json = ToJson(stored);
        return next;
      });
  std::optional<storage::EventSubscriptionRecord> now;
  if (put.ok()) {
    hooks_.changed();
    now = *put;
  } else if (put.status().code() == StatusCode::kAborted) {
    auto subs = store_.ListEventSubscriptions(vault.name);
    if (!subs.ok()) {
      return ArmError(subs.status());
    }
    for (const auto& s : *subs) {
      if (EqualsIgnoreCase(s.name, written.name)) {
        now = s;
      }
    }
    if (!now) {
      return Error(404, "ResourceNotFound", "The event subscription was deleted meanwhile.");
    }
    result.outcome = events::HandshakeResult::Outcome::kSucceeded;  // answer what stands
  } else {
    return ArmError(put.status());
  }
  if (result.outcome == events::HandshakeResult::Outcome::kFailed) {
    return Error(400, "InvalidRequest",
                 "Webhook validation handshake failed for " + BaseUrl(target.endpoint_url) + ": " +
                     result.reason + ". " +
                     (restored ? "The event subscription is unchanged."
                               : "The event subscription is kept as 'Failed' and receives no "
                                 "events; correct the endpoint and PUT it again, or delete it."));
  }
  http::Response r = http::JsonResponse(created ? 201 : 200, ToJson(ToArm(vault, *now)));
  r.SetHeader("ETag", ETag(now->version));
  return r;
}

http::Response EventSubscriptionManager::Validate(const http::Request& req,
                                                  const std::string& vault_name,
                                                  const std::string& name) {
  // SECURITY: one answer for every wrong case, so the URL tells nothing
  // about which subscriptions exist or wait.
  http::Response invalid = Error(404, "NotFound",
                                 "This validation URL is not valid: it was used already, has "
                                 "expired, or was never issued.");
  std::string token(req.Query("token"));
  if (token.empty() || token.size() > 128) {
    return invalid;
  }
  auto vault = store_.GetVault(vault_name);
  if (!vault.ok()) {
    return vault.status().code() == StatusCode::kNotFound ? invalid : ArmError(vault.status());
  }
  if (vault->deleted()) {
    return invalid;
  }
  auto bounds = store_.GetChangeBounds();
  if (!bounds.ok()) {
    return ArmError(bounds.status());
  }
  const std::string hash = events::ValidationTokenHash(token);
  const int64_t now = clock_.NowSeconds();
  auto put = store_.PutEventSubscription(
      vault->name, name,
      [&](const std::optional<storage::EventSubscriptionRecord>& current,
          size_t) -> StatusOr<storage::EventSubscriptionRecord> {
        Status no = NotFoundError("invalid validation URL");
        if (!current) {
          return no;
        }
        Json stored = Json::parse(current->properties_json, nullptr, false);
        events::Validation v = events::ReadValidation(stored);
        bool waiting = v.state == events::Validation::State::kPending ||
                       v.state == events::Validation::State::kAwaitingManualAction;
        if (!stored.is_object() || !waiting || v.token_hash.empty() || now >= v.expires ||
            !crypto::ConstantTimeEquals(v.token_hash, hash)) {
          return no;
        }
        stored["validation"] =
            events::ValidationJson({events::Validation::State::kSucceeded, "", 0, ""});
        storage::EventSubscriptionRecord next = *current;
        next.properties_json = ToJson(stored);
        next.start_seq = std::max(next.start_seq, bounds->newest);
        next.updated = now;
        return next;
      });
  if (!put.ok()) {
    return put.status().code() == StatusCode::kNotFound ? invalid : ArmError(put.status());
  }
  hooks_.changed();
  return http::JsonResponse(200, ToJson(Json{{"subscription", put->name},
                                             {"vault", put->vault},
                                             {"provisioningState", "Succeeded"}}));
}

}  // namespace coffer::mgmt
