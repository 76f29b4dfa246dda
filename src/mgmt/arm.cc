#include "mgmt/arm.h"

#include "common/strings.h"

namespace coffer::mgmt {

Status CheckArmTags(const Json& tags) {
  if (!tags.is_object() || tags.size() > 50) {
    return InvalidArgumentError("tags must be an object of at most 50 string values.",
                                "InvalidRequestContent");
  }
  for (const auto& [k, v] : tags.items()) {
    if (!v.is_string()) {
      return InvalidArgumentError("The value of tag '" + k.substr(0, 64) + "' is not a string.",
                                  "InvalidRequestContent");
    }
    if (k.size() > 512 || v.get<std::string>().size() > 256) {
      return InvalidArgumentError("Tag names must be at most 512 and values 256 characters.",
                                  "InvalidRequestContent");
    }
  }
  return OkStatus();
}

std::optional<http::Response> CheckArmRequest(const http::Request& req,
                                              const std::string& subscription_id) {
  if (req.Query("api-version").empty()) {
    return http::ErrorResponse(
        400, "MissingApiVersionParameter",
        "The api-version query parameter (?api-version=) is required for all requests.");
  }
  if (req.segments.size() < 2 || !EqualsIgnoreCase(req.segments[1], subscription_id)) {
    std::string sub = req.segments.size() > 1 ? req.segments[1].substr(0, 64) : "";
    return http::ErrorResponse(404, "SubscriptionNotFound",
                               "The subscription '" + sub + "' could not be found.");
  }
  return std::nullopt;
}

std::string ResourceGroupOf(const std::string& resource_id) {
  auto parts = Split(resource_id, '/');
  return parts.size() > 4 ? std::string(parts[4]) : std::string();
}

std::string NameOf(const std::string& resource_id) {
  size_t slash = resource_id.rfind('/');
  return slash == std::string::npos ? resource_id : resource_id.substr(slash + 1);
}

bool ValidResourceGroup(const std::string& rg) {
  if (rg.empty() || rg.size() > 90 || rg.back() == '.') {
    return false;
  }
  for (char c : rg) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-' || c == '_' || c == '.' || c == '(' || c == ')';
    if (!ok) {
      return false;
    }
  }
  return true;
}

std::string ETag(int64_t version) {
  return "\"" + std::to_string(version) + "\"";
}

namespace {

// True when an If-Match / If-None-Match value names `version`: "*" or one of
// its comma-separated (optionally weak) entity tags.
bool Names(std::string_view header, std::optional<int64_t> version) {
  for (auto piece : Split(header, ',')) {
    std::string_view tag = TrimWhitespace(piece);
    if (tag == "*") {
      return version.has_value();
    }
    if (StartsWith(tag, "W/")) {
      tag.remove_prefix(2);
    }
    if (version && tag == ETag(*version)) {
      return true;
    }
  }
  return false;
}

}  // namespace

Status CheckPreconditions(const http::Request& request, std::optional<int64_t> version) {
  std::string_view match = request.Header("if-match");
  if (!match.empty() && !Names(match, version)) {
    return FailedPreconditionError(
        version ? "The resource has changed since it was read (If-Match does not hold)."
                : "The resource does not exist (If-Match does not hold).",
        "PreconditionFailed");
  }
  std::string_view none = request.Header("if-none-match");
  if (!none.empty() && Names(none, version)) {
    return FailedPreconditionError("The resource exists (If-None-Match does not hold).",
                                   "PreconditionFailed");
  }
  return OkStatus();
}

Precondition PreconditionOf(const http::Request& request) {
  return
      [&request](std::optional<int64_t> version) { return CheckPreconditions(request, version); };
}

http::Response ArmError(const Status& s) {
  if (s.reason() == "PreconditionFailed") {
    return http::ErrorResponse(412, s.reason(), s.message());
  }
  int status = http::HttpStatusFor(s.code()).http_status;
  std::string code = !s.reason().empty() ? std::string(s.reason())
                     : status == 400     ? "BadRequest"
                     : status == 404     ? "ResourceNotFound"
                     : status >= 500     ? "InternalServerError"
                                         : "Conflict";
  return http::ErrorResponse(status, code, s.message());
}

}  // namespace coffer::mgmt
