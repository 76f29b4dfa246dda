#include "sdk/wire.h"

#include <algorithm>

#include "common/json.h"
#include "common/strings.h"
#include "http/url.h"

namespace coffer {
namespace {

// HostOf returns the host of a URL as http::ParseUrl reads it (lower-case,
// no port, IPv6 without brackets), or "" when it is not a URL that parser
// accepts (userinfo, a '?' in the authority, ...).
std::string HostOf(std::string_view url) {
  StatusOr<http::Url> parsed = http::ParseUrl(url);
  return parsed.ok() ? parsed->host : "";
}

// ChallengeParameter reads name="value" (or name=value) from a Bearer challenge.
std::string ChallengeParameter(std::string_view header, std::string_view name) {
  size_t pos = 0;
  while (pos < header.size()) {
    size_t eq = header.find('=', pos);
    if (eq == std::string_view::npos) {
      break;
    }
    std::string_view key = header.substr(pos, eq - pos);
    size_t sp = key.find_last_of(" ,");
    if (sp != std::string_view::npos) {
      key = key.substr(sp + 1);
    }
    size_t start = eq + 1;
    std::string value;
    size_t end;
    if (start < header.size() && header[start] == '"') {
      end = header.find('"', start + 1);
      if (end == std::string_view::npos) {
        end = header.size();
      }
      value = std::string(header.substr(start + 1, end - start - 1));
      ++end;
    } else {
      end = header.find(',', start);
      if (end == std::string_view::npos) {
        end = header.size();
      }
      value = std::string(TrimWhitespace(header.substr(start, end - start)));
    }
    if (EqualsIgnoreCase(key, name)) {
      return value;
    }
    pos = end;
  }
  return "";
}

}  // namespace

bool SplitObjectId(const std::string& id, std::string_view collection, std::string* vault_url,
                   std::string* name, std::string* version, bool* deleted) {
  vault_url->clear();
  name->clear();
  version->clear();
  StatusOr<http::Url> url = http::ParseUrl(id);
  if (!url.ok() || !url->tls() || url->Path() != url->path_and_query) {
    return false;  // not an https URL, or one with a query
  }
  auto parts = Split(std::string_view(url->path_and_query).substr(1), '/');
  if (parts.size() < 2 || parts.size() > 3) {
    return false;
  }
  bool in_deleted = parts[0].size() == collection.size() + 7 && StartsWith(parts[0], "deleted") &&
                    parts[0].substr(7) == collection;
  if (parts[0] != collection && !in_deleted) {
    return false;
  }
  if (deleted != nullptr) {
    *deleted = in_deleted;
  }
  *vault_url = url->Origin();
  *name = std::string(parts[1]);
  if (parts.size() == 3) {
    *version = std::string(parts[2]);
  }
  return true;
}

Status CheckName(const std::string& name) {
  bool ok =
      !name.empty() && name.size() <= 127 && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               c == '-';
      });
  if (!ok) {
    return InvalidArgumentError("a secret name is 1-127 characters of 0-9, a-z, A-Z and '-'",
                                "BadParameter");
  }
  return OkStatus();
}

StatusOr<std::string> ScopeFromChallenge(const HttpResponse& response,
                                         const std::string& vault_url) {
  std::string_view header = response.Header("WWW-Authenticate");
  if (response.status != 401 || !StartsWithIgnoreCase(header, "Bearer")) {
    return UnauthenticatedError("the vault at " + vault_url + " answered HTTP " +
                                std::to_string(response.status) +
                                " without a Bearer challenge; is it a Key Vault?");
  }
  std::string scope = ChallengeParameter(header, "scope");
  std::string resource = scope.empty() ? ChallengeParameter(header, "resource") : scope;
  if (resource.empty()) {
    return UnauthenticatedError("the vault's challenge names no resource or scope");
  }
  std::string want = HostOf(resource);
  std::string host = HostOf(vault_url);
  bool same_domain =
      !want.empty() &&
      (host == want || (host.size() > want.size() &&
                        host.compare(host.size() - want.size(), want.size(), want) == 0 &&
                        host[host.size() - want.size() - 1] == '.'));
  if (!same_domain) {
    return UnauthenticatedError("the challenge resource '" + resource +
                                "' does not match the vault's domain " + host +
                                "; no token is sent");
  }
  if (!scope.empty()) {
    return scope;
  }
  while (!resource.empty() && resource.back() == '/') {
    resource.pop_back();
  }
  return resource + "/.default";
}

std::chrono::milliseconds RetryAfter(const HttpResponse& response) {
  auto number = [](std::string_view s) -> int64_t {
    s = TrimWhitespace(s);
    if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string_view::npos) {
      return -1;
    }
    return std::stoll(std::string(s));
  };
  constexpr int64_t kHourMs = 3600 * 1000;
  for (const char* ms_header : {"retry-after-ms", "x-ms-retry-after-ms"}) {
    int64_t ms = number(response.Header(ms_header));
    if (ms >= 0) {
      return std::chrono::milliseconds(std::min(ms, kHourMs));
    }
  }
  int64_t s = number(response.Header("Retry-After"));
  if (s >= 0) {
    return std::chrono::milliseconds(std::min(s * 1000, kHourMs));
  }
  return std::chrono::milliseconds::zero();
}

Status ErrorFromResponse(const HttpResponse& response) {
  StatusCode code;
  switch (response.status) {
    case 400:
      code = StatusCode::kInvalidArgument;
      break;
    case 401:
      code = StatusCode::kUnauthenticated;
      break;
    case 403:
      code = StatusCode::kPermissionDenied;
      break;
    case 404:
    case 410:
      code = StatusCode::kNotFound;
      break;
    case 409:
      code = StatusCode::kFailedPrecondition;
      break;
    case 429:
      code = StatusCode::kResourceExhausted;
      break;
    default:
      code = response.status >= 500 ? StatusCode::kUnavailable : StatusCode::kUnknown;
  }
  std::string reason = "HTTP" + std::to_string(response.status);
  std::string message = "the vault answered HTTP " + std::to_string(response.status);
  auto body = ParseJson(response.body);
  if (body && body->is_object() && body->contains("error") && (*body)["error"].is_object()) {
    const Json& e = (*body)["error"];
    std::string c = StringMember(e, "code");
    std::string m = StringMember(e, "message");
    if (!c.empty()) {
      reason = c;
    }
    if (!m.empty()) {
      message = m;
    }
  }
  if (code == StatusCode::kFailedPrecondition && reason == "Conflict") {
    code = StatusCode::kAlreadyExists;
  }
  return Status(code, message, reason);
}

Status SseParser::Feed(std::string_view piece,
                       const std::function<bool(const SseEvent&)>& on_event) {
  if (overflowed_) {
    return ResourceExhaustedError("the event stream sent an event longer than 1 MiB");
  }
  for (char c : piece) {
    if (c != '\n') {
      line_ += c;
      if (++event_bytes_ > kMaxEventBytes) {
        overflowed_ = true;
        return ResourceExhaustedError("the event stream sent an event longer than 1 MiB");
      }
      continue;
    }
    std::string_view line = line_;
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    if (line.empty()) {
      bool go_on = true;
      if (has_field_) {
        go_on = on_event(current_);
      }
      current_ = SseEvent();
      has_field_ = false;
      event_bytes_ = 0;
      line_.clear();
      if (!go_on) {
        return OkStatus();
      }
      continue;
    }
    if (line[0] != ':') {
      size_t colon = line.find(':');
      std::string_view field = line.substr(0, colon);
      std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
      if (!value.empty() && value[0] == ' ') {
        value.remove_prefix(1);
      }
      if (field == "id") {
        current_.id = value;
        has_field_ = true;
      } else if (field == "event") {
        current_.event = value;
        has_field_ = true;
      } else if (field == "data") {
        if (!current_.data.empty()) {
          current_.data += '\n';
        }
        current_.data += value;
        has_field_ = true;
      }
    }
    line_.clear();
  }
  return OkStatus();
}

SecretChange ChangeFromEvent(const SseEvent& event) {
  SecretChange change;
  change.token = event.id;
  change.type = event.event;
  auto body = ParseJson(event.data);
  if (!body || !body->is_object()) {
    return change;
  }
  if (change.type.starts_with("coffer.")) {
    // The stream's own events (ready, resync, closed) carry the token in
    // their data too.
    std::string token = StringMember(*body, "token");
    if (!token.empty()) {
      change.token = token;
    }
    return change;
  }
  if (change.type.empty()) {
    change.type = StringMember(*body, "eventType");
  }
  change.name = StringMember(*body, "subject");
  if (body->contains("data") && (*body)["data"].is_object()) {
    const Json& d = (*body)["data"];
    std::string object = StringMember(d, "ObjectName");
    if (!object.empty()) {
      change.name = object;
    }
    change.version = StringMember(d, "Version");
    change.object_type = StringMember(d, "ObjectType");
  }
  return change;
}

}  // namespace coffer
