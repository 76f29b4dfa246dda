#include "mgmt/event_subscription_manager.h"

#include "common/encoding.h"
#include "common/strings.h"
#include "mgmt/arm.h"

namespace coffer::mgmt {

namespace {

constexpr size_t kMaxSubscriptionsPerVault = 100;

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
Json Normalized(const events::Subscription& s, const std::string& sealed_url) {
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
        {"eventTimeToLiveInMinutes", s.event_ttl_minutes}}}};
}

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
  std::string base = p["destination"]["properties"].value("endpointBaseUrl", "");
  p["destination"]["properties"] = {
      {"endpointBaseUrl", base}, {"maxEventsPerBatch", 1}, {"preferredBatchSizeInKilobytes", 64}};
  p["topic"] = vault.ResourceId();
  p["provisioningState"] = "Succeeded";
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
    return Put(*vault, name, req);
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
                                             const std::string& name, const http::Request& req) {
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
  bool created = false;
  // PATCH merges into the properties as they are when the change is
  // written; the limit counts what the vault holds then.
  auto put = store_.PutEventSubscription(
      vault.name, name,
      [&](const std::optional<storage::EventSubscriptionRecord>& old,
          size_t existing) -> StatusOr<storage::EventSubscriptionRecord> {
        Json merged = props;
        if (req.method == "PATCH") {
          if (!old) {
            return NotFoundError("Event subscription '" + name + "' does not exist.",
                                 "ResourceNotFound");
          }
          ASSIGN_OR_RETURN(merged, hooks_.url_seal.Unseal(*old));
          merged.merge_patch(props);
        }
        RETURN_IF_ERROR(
            CheckPreconditions(req, old ? std::optional<int64_t>(old->version) : std::nullopt));
        events::Subscription parsed;
        RETURN_IF_ERROR(events::ParseSubscription(merged, parsed));
        if (!old && existing >= kMaxSubscriptionsPerVault) {
          return InvalidArgumentError("A vault has at most 100 event subscriptions.",
                                      "InvalidRequest");
        }
        storage::EventSubscriptionRecord r;
        r.vault = vault.name;
        r.name = old ? old->name : name;
        r.properties_json = ToJson(
            Normalized(parsed, hooks_.url_seal.Seal(vault.name, r.name, parsed.endpoint_url)));
        r.key_generation = old ? old->key_generation : 1;
        // Events committed from now on (Event Grid delivers nothing older).
        r.start_seq = old ? old->start_seq : bounds->newest;
        r.created = old ? old->created : clock_.NowSeconds();
        r.updated = clock_.NowSeconds();
        created = !old;
        return r;
      });
  if (!put.ok()) {
    return ArmError(put.status());
  }
  hooks_.changed();
  http::Response r = http::JsonResponse(created ? 201 : 200, ToJson(ToArm(vault, *put)));
  r.SetHeader("ETag", ETag(put->version));
  return r;
}

}  // namespace coffer::mgmt
