#include "http/message.h"

#include "common/encoding.h"
#include "common/json.h"
#include "common/strings.h"
#include "http/url.h"

namespace coffer::http {

std::string_view Request::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string_view() : std::string_view(it->second);
}

std::string_view Request::Query(const std::string& name) const {
  auto it = query.find(name);
  return it == query.end() ? std::string_view() : std::string_view(it->second);
}

void Response::SetHeader(std::string name, std::string value) {
  for (auto& [k, v] : headers) {
    if (EqualsIgnoreCase(k, name)) {
      v = std::move(value);
      return;
    }
  }
  headers.emplace_back(std::move(name), std::move(value));
}

Status ParseTarget(std::string_view target, Request& request) {
  if (target.empty() || target.front() != '/') {
    return InvalidArgumentError("request target must be an absolute path", "BadParameter");
  }
  std::string_view path = target;
  std::string_view query;
  size_t q = target.find('?');
  if (q != std::string_view::npos) {
    path = target.substr(0, q);
    query = target.substr(q + 1);
  }
  request.segments.clear();
  for (std::string_view raw : Split(path.substr(1), '/')) {
    auto decoded = PercentDecode(raw, false);
    if (!decoded) {
      return InvalidArgumentError("malformed percent escape in path", "BadParameter");
    }
    request.segments.push_back(std::move(*decoded));
  }
  request.query.clear();
  if (!query.empty()) {
    for (std::string_view pair : Split(query, '&')) {
      if (pair.empty()) {
        continue;
      }
      size_t eq = pair.find('=');
      std::string_view raw_name = pair.substr(0, eq);
      std::string_view raw_value = eq == std::string_view::npos ? "" : pair.substr(eq + 1);
      auto name = PercentDecode(raw_name, true);
      auto value = PercentDecode(raw_value, true);
      if (!name || !value) {
        return InvalidArgumentError("malformed percent escape in query", "BadParameter");
      }
      request.query.emplace(std::move(*name), std::move(*value));
    }
  }
  return OkStatus();
}

Response JsonResponse(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  r.headers.emplace_back("Content-Type", "application/json; charset=utf-8");
  return r;
}

HttpError HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return {200, "OK"};
    case StatusCode::kInvalidArgument:
      return {400, "BadParameter"};
    case StatusCode::kOutOfRange:
      return {400, "BadParameter"};
    case StatusCode::kUnauthenticated:
      return {401, "Unauthorized"};
    case StatusCode::kPermissionDenied:
      return {403, "Forbidden"};
    case StatusCode::kNotFound:
      return {404, "NotFound"};
    case StatusCode::kAlreadyExists:
      return {409, "Conflict"};
    case StatusCode::kFailedPrecondition:
      return {409, "Conflict"};
    case StatusCode::kAborted:
      return {409, "Conflict"};
    case StatusCode::kResourceExhausted:
      return {429, "Throttled"};
    case StatusCode::kUnimplemented:
      return {501, "NotImplemented"};
    case StatusCode::kUnavailable:
      return {503, "ServiceUnavailable"};
    case StatusCode::kDeadlineExceeded:
      return {504, "GatewayTimeout"};
    case StatusCode::kCancelled:
    case StatusCode::kUnknown:
    case StatusCode::kInternal:
    case StatusCode::kDataLoss:
      return {500, "InternalServerError"};
  }
  return {500, "InternalServerError"};
}

Response ErrorResponse(int http_status, std::string_view code, std::string_view message) {
  Json body;
  body["error"]["code"] = std::string(code);
  body["error"]["message"] = std::string(message);
  return JsonResponse(http_status, ToJson(body));
}

Response EmptyResponse(int http_status) {
  Response r;
  r.status = http_status;
  return r;
}

Response ErrorResponse(const Status& status) {
  HttpError e = HttpStatusFor(status.code());
  std::string_view reason = status.reason();
  size_t slash = reason.find('/');
  if (slash == std::string_view::npos) {
    return ErrorResponse(e.http_status, reason.empty() ? e.code : reason, status.message());
  }
  Json body;
  body["error"]["code"] = std::string(reason.substr(0, slash));
  body["error"]["message"] = status.message();
  body["error"]["innererror"]["code"] = std::string(reason.substr(slash + 1));
  return JsonResponse(e.http_status, ToJson(body));
}

bool IsTrustworthyUrl(std::string_view url) {
  if (url.size() > kMaxTrustworthyUrlLength) {
    return false;
  }
  StatusOr<Url> parsed = ParseUrl(url);
  return parsed.ok() && (parsed->tls() || parsed->IsLoopback());
}

}  // namespace coffer::http
