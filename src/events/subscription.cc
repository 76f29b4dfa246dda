#include "events/subscription.h"

#include <algorithm>

#include "common/encoding.h"
#include "common/strings.h"
#include "crypto/primitives.h"
#include "events/event_format.h"
#include "events/webhook_target.h"
#include "http/message.h"

namespace coffer::events {

namespace {

constexpr size_t kMaxTypes = 25;
constexpr size_t kMaxSubjectFilter = 1024;

Status Bad(const std::string& message) {
  return InvalidArgumentError(message, "InvalidRequest");
}

const std::vector<std::string>& CofferTypes() {
  static const std::vector<std::string> kTypes = {
      "Coffer.KeyVault.SecretUpdated", "Coffer.KeyVault.SecretDeleted",
      "Coffer.KeyVault.SecretRecovered", "Coffer.KeyVault.SecretPurged"};
  return kTypes;
}

bool KnownType(const std::string& type) {
  return IsKeyVaultEventType(type) ||
         std::find(CofferTypes().begin(), CofferTypes().end(), type) != CofferTypes().end();
}

bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && EqualsIgnoreCase(s.substr(0, prefix.size()), prefix);
}

bool EndsWithIgnoreCase(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && EqualsIgnoreCase(s.substr(s.size() - suffix.size()), suffix);
}

StatusOr<int> IntIn(const Json& object, const char* name, int low, int high, int fallback) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) {
    return fallback;
  }
  if (!it->is_number_integer() || it->get<int64_t>() < low || it->get<int64_t>() > high) {
    return Bad(std::string("retryPolicy.") + name + " must be an integer from " +
               std::to_string(low) + " to " + std::to_string(high) + ".");
  }
  return static_cast<int>(it->get<int64_t>());
}

}  // namespace

bool Subscription::Matches(const storage::ChangeRecord& change) const {
  if (change.seq <= start_seq || !EqualsIgnoreCase(change.vault, vault)) {
    return false;
  }
  std::string type = EventType(change);
  if (included_types.empty()) {
    if (!IsKeyVaultEventType(type)) {
      return false;
    }
  } else if (std::find(included_types.begin(), included_types.end(), type) ==
             included_types.end()) {
    return false;
  }
  const std::string& subject = change.name.empty() ? change.vault : change.name;
  return StartsWithIgnoreCase(subject, subject_begins_with) &&
         EndsWithIgnoreCase(subject, subject_ends_with);
}

Status ParseSubscription(const Json& p, Subscription& out) {
  if (!p.is_object()) {
    return Bad("properties must be an object.");
  }
  auto dest = p.find("destination");
  if (dest == p.end() || !dest->is_object()) {
    return Bad("properties.destination is required.");
  }
  std::string endpoint_type = StringMember(*dest, "endpointType");
  if (!EqualsIgnoreCase(endpoint_type, "WebHook")) {
    return Bad(
        "properties.destination.endpointType must be 'WebHook'; Coffer delivers to "
        "webhooks only.");
  }
  auto dp = dest->find("properties");
  if (dp == dest->end() || !dp->is_object()) {
    return Bad("properties.destination.properties.endpointUrl is required.");
  }
  out.endpoint_url = StringMember(*dp, "endpointUrl");
  // A URL that does not parse says why (a query before the path, user
  // information, ...); one that parses must still be https, or http to a
  // loopback address.
  if (auto host = ParseTargetHost(out.endpoint_url); !host.ok() && !out.endpoint_url.empty()) {
    return Bad("properties.destination.properties.endpointUrl: " +
               std::string(host.status().message()) + ".");
  }
  if (out.endpoint_url.empty() || !http::IsTrustworthyUrl(out.endpoint_url)) {
    return Bad(
        "properties.destination.properties.endpointUrl must be an https:// URL (or "
        "http:// to a loopback address) of at most 2,048 characters.");
  }
  out.included_types.clear();
  out.subject_begins_with.clear();
  out.subject_ends_with.clear();
  if (auto f = p.find("filter"); f != p.end() && !f->is_null()) {
    if (!f->is_object()) {
      return Bad("properties.filter must be an object.");
    }
    if (auto t = f->find("includedEventTypes"); t != f->end() && !t->is_null()) {
      if (!t->is_array() || t->size() > kMaxTypes) {
        return Bad("properties.filter.includedEventTypes must be an array of at most 25 types.");
      }
      for (const auto& type : *t) {
        if (!type.is_string() || !KnownType(type.get<std::string>())) {
          return Bad("properties.filter.includedEventTypes holds an unknown event type: " +
                     (type.is_string() ? type.get<std::string>().substr(0, 100)
                                       : std::string("(not a string)")) +
                     ".");
        }
        out.included_types.push_back(type.get<std::string>());
      }
    }
    for (auto [field, target] :
         {std::pair<const char*, std::string*>{"subjectBeginsWith", &out.subject_begins_with},
          {"subjectEndsWith", &out.subject_ends_with}}) {
      auto it = f->find(field);
      if (it == f->end() || it->is_null()) {
        continue;
      }
      if (!it->is_string() || it->get<std::string>().size() > kMaxSubjectFilter) {
        return Bad(std::string("properties.filter.") + field +
                   " must be a string of at most 1,024 characters.");
      }
      *target = it->get<std::string>();
    }
  }
  std::string schema = StringMember(p, "eventDeliverySchema");
  if (schema.empty() || EqualsIgnoreCase(schema, "EventGridSchema")) {
    out.cloud_events = false;
  } else if (EqualsIgnoreCase(schema, "CloudEventSchemaV1_0")) {
    out.cloud_events = true;
  } else {
    return Bad(
        "properties.eventDeliverySchema must be 'EventGridSchema' or "
        "'CloudEventSchemaV1_0'.");
  }
  out.max_delivery_attempts = 30;
  out.event_ttl_minutes = 1440;
  if (auto r = p.find("retryPolicy"); r != p.end() && !r->is_null()) {
    if (!r->is_object()) {
      return Bad("properties.retryPolicy must be an object.");
    }
    ASSIGN_OR_RETURN(out.max_delivery_attempts, IntIn(*r, "maxDeliveryAttempts", 1, 30, 30));
    ASSIGN_OR_RETURN(out.event_ttl_minutes, IntIn(*r, "eventTimeToLiveInMinutes", 1, 1440, 1440));
  }
  return OkStatus();
}

std::string UrlSeal::Seal(const std::string& vault, const std::string& name,
                          const std::string& url) const {
  return Base64Encode(crypto::AesGcmSeal(key_, url, AsciiLower(vault) + "/" + AsciiLower(name)));
}

StatusOr<std::string> UrlSeal::Open(const std::string& vault, const std::string& name,
                                    const std::string& sealed) const {
  auto bytes = Base64Decode(sealed);
  if (!bytes) {
    return DataLossError("the stored endpoint URL is not base64");
  }
  return crypto::AesGcmOpen(key_, *bytes, AsciiLower(vault) + "/" + AsciiLower(name));
}

StatusOr<Json> UrlSeal::Unseal(const storage::EventSubscriptionRecord& r) const {
  Json props = Json::parse(r.properties_json, nullptr, false);
  if (!props.is_object() || !props.contains("destination") || !props["destination"].is_object() ||
      !props["destination"].contains("properties") ||
      !props["destination"]["properties"].is_object()) {
    return DataLossError("stored event subscription properties are malformed");
  }
  Json& dp = props["destination"]["properties"];
  std::string sealed = StringMember(dp, "endpointUrlSealed");
  if (!sealed.empty()) {
    ASSIGN_OR_RETURN(std::string url, Open(r.vault, r.name, sealed));
    dp.erase("endpointUrlSealed");
    dp["endpointUrl"] = url;
  }
  return props;
}

}  // namespace coffer::events
