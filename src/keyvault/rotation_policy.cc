#include "keyvault/rotation_policy.h"

#include <cctype>

#include "common/strings.h"

namespace coffer::keyvault {
namespace {

constexpr int64_t kDay = 86400;
constexpr int64_t kMinTrigger = 7 * kDay;
constexpr int64_t kMinExpiry = 28 * kDay;
constexpr char kTimeAfterCreate[] = "timeAfterCreate";
constexpr char kTimeBeforeExpiry[] = "timeBeforeExpiry";

Status Bad(const std::string& message) {
  return InvalidArgumentError(message, "BadParameter");
}

// The trigger of an action: its field and duration text.
struct Trigger {
  std::string field;
  std::string duration;
};

std::optional<Trigger> TriggerOf(const Json& action) {
  const Json& trigger = action["trigger"];
  for (const char* field : {kTimeAfterCreate, kTimeBeforeExpiry}) {
    if (trigger.contains(field)) {
      return Trigger{field, trigger[field].get<std::string>()};
    }
  }
  return std::nullopt;
}

}  // namespace

StatusOr<int64_t> ParseIsoDuration(std::string_view text) {
  Status bad = Bad("'" + std::string(text.substr(0, 32)) +
                   "' is not an ISO 8601 duration such as P90D, P1Y or PT48H.");
  if (text.size() < 3 || text.size() > 32 || (text[0] != 'P' && text[0] != 'p')) {
    return bad;
  }
  int64_t total = 0;
  bool in_time = false;
  bool any = false;
  bool any_time = false;
  int64_t number = -1;
  for (size_t i = 1; i < text.size(); ++i) {
    char c = static_cast<char>(std::toupper(static_cast<unsigned char>(text[i])));
    if (c >= '0' && c <= '9') {
      number = (number < 0 ? 0 : number) * 10 + (c - '0');
      if (number > 100000) {
        return bad;
      }
      continue;
    }
    if (c == 'T' && !in_time && number < 0) {
      in_time = true;
      continue;
    }
    if (number < 0) {
      return bad;
    }
    int64_t unit = 0;
    if (!in_time) {
      unit = c == 'Y'   ? 365 * kDay
             : c == 'M' ? 30 * kDay
             : c == 'W' ? 7 * kDay
             : c == 'D' ? kDay
                        : 0;
    } else {
      unit = c == 'H' ? 3600 : c == 'M' ? 60 : c == 'S' ? 1 : 0;
    }
    if (unit == 0) {
      return bad;
    }
    total += number * unit;
    number = -1;
    any = true;
    any_time = any_time || in_time;
  }
  if (!any || number >= 0 || (in_time && !any_time)) {
    return bad;
  }
  return total;
}

StatusOr<Json> ValidateRotationPolicy(const Json& body, const std::optional<Json>& current,
                                      int64_t now) {
  if (!body.is_object()) {
    return Bad("The rotation policy must be a JSON object.");
  }
  Json actions = Json::array();
  bool has_rotate = false;
  bool has_notify = false;
  if (auto it = body.find("lifetimeActions"); it != body.end() && !it->is_null()) {
    if (!it->is_array()) {
      return Bad("Property 'lifetimeActions' must be an array.");
    }
    for (const Json& a : *it) {
      if (!a.is_object() || !a.value("action", Json()).is_object() ||
          !a["action"].value("type", Json()).is_string() ||
          !a.value("trigger", Json()).is_object()) {
        return Bad("Each lifetime action needs a trigger and an action with a type.");
      }
      std::string type = a["action"]["type"].get<std::string>();
      bool rotate = EqualsIgnoreCase(type, "Rotate");
      if (!rotate && !EqualsIgnoreCase(type, "Notify")) {
        return Bad("Lifetime action types are Rotate and Notify.");
      }
      if ((rotate && has_rotate) || (!rotate && has_notify)) {
        return Bad("A rotation policy has at most one Rotate and one Notify action.");
      }
      (rotate ? has_rotate : has_notify) = true;
      Json trigger = Json::object();
      for (const auto& [field, value] : a["trigger"].items()) {
        if (value.is_null()) {
          continue;
        }
        if ((field != kTimeAfterCreate && field != kTimeBeforeExpiry) || !value.is_string()) {
          return Bad("Triggers are timeAfterCreate or timeBeforeExpiry, as ISO 8601 durations.");
        }
        ASSIGN_OR_RETURN(int64_t seconds, ParseIsoDuration(value.get<std::string>()));
        if (seconds < kMinTrigger) {
          return Bad("A lifetime action's trigger must be at least 7 days (P7D).");
        }
        if (field == kTimeAfterCreate && !rotate) {
          return Bad("timeAfterCreate applies to the Rotate action only.");
        }
        trigger[field] = AsciiUpper(value.get<std::string>());
      }
      if (trigger.size() != 1) {
        return Bad("Each lifetime action has exactly one trigger.");
      }
      actions.push_back(Json{{"trigger", std::move(trigger)},
                             {"action", {{"type", rotate ? "Rotate" : "Notify"}}}});
    }
  }
  if (!has_notify) {
    actions.push_back(
        Json{{"trigger", {{kTimeBeforeExpiry, "P30D"}}}, {"action", {{"type", "Notify"}}}});
  }
  Json attributes = Json::object();
  if (auto it = body.find("attributes"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) {
      return Bad("Property 'attributes' must be an object.");
    }
    if (auto e = it->find("expiryTime"); e != it->end() && !e->is_null()) {
      if (!e->is_string()) {
        return Bad("Property 'attributes.expiryTime' must be an ISO 8601 duration.");
      }
      ASSIGN_OR_RETURN(int64_t seconds, ParseIsoDuration(e->get<std::string>()));
      if (seconds < kMinExpiry) {
        return Bad("The policy's expiryTime must be at least 28 days (P28D).");
      }
      attributes["expiryTime"] = AsciiUpper(e->get<std::string>());
    }
  }
  int64_t created = now;
  if (current && current->contains("attributes") && (*current)["attributes"].contains("created")) {
    created = (*current)["attributes"]["created"].get<int64_t>();
  }
  attributes["created"] = created;
  attributes["updated"] = now;
  return Json{{"lifetimeActions", std::move(actions)}, {"attributes", std::move(attributes)}};
}

Json DefaultRotationPolicy() {
  return Json{{"lifetimeActions", Json::array({Json{{"trigger", {{kTimeBeforeExpiry, "P30D"}}},
                                                    {"action", {{"type", "Notify"}}}}})},
              {"attributes", Json::object()}};
}

std::optional<int64_t> RotationDue(const Json& policy, int64_t created,
                                   std::optional<int64_t> exp) {
  for (const Json& a : policy.value("lifetimeActions", Json::array())) {
    if (a["action"].value("type", "") != "Rotate") {
      continue;
    }
    auto trigger = TriggerOf(a);
    if (!trigger) {
      return std::nullopt;
    }
    auto seconds = ParseIsoDuration(trigger->duration);
    if (!seconds.ok()) {
      return std::nullopt;
    }
    if (trigger->field == kTimeAfterCreate) {
      return created + *seconds;
    }
    return exp ? std::optional<int64_t>(*exp - *seconds) : std::nullopt;
  }
  return std::nullopt;
}

std::optional<int64_t> NotifyLead(const Json& policy) {
  for (const Json& a : policy.value("lifetimeActions", Json::array())) {
    if (a["action"].value("type", "") != "Notify") {
      continue;
    }
    auto trigger = TriggerOf(a);
    if (!trigger || trigger->field != kTimeBeforeExpiry) {
      return std::nullopt;
    }
    auto seconds = ParseIsoDuration(trigger->duration);
    return seconds.ok() ? std::optional<int64_t>(*seconds) : std::nullopt;
  }
  return std::nullopt;
}

std::optional<int64_t> RotatedExpiry(const Json& policy, int64_t now) {
  const Json& attributes = policy.value("attributes", Json::object());
  if (!attributes.is_object() || !attributes.contains("expiryTime")) {
    return std::nullopt;
  }
  auto seconds = ParseIsoDuration(attributes["expiryTime"].get<std::string>());
  return seconds.ok() ? std::optional<int64_t>(now + *seconds) : std::nullopt;
}

}  // namespace coffer::keyvault
