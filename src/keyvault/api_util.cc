#include "keyvault/api_util.h"

#include <charconv>

#include "common/encoding.h"
#include "common/strings.h"

namespace coffer::keyvault {
namespace {

constexpr int kMaxPageSize = 25;
constexpr char kSkipTokenPrefix[] = "c1:";

}  // namespace

Status BadParameter(const std::string& message) {
  return InvalidArgumentError(message, "BadParameter");
}

Status TypeError(const std::string& field, const char* expected) {
  return BadParameter("Property '" + field + "' must be " + expected + ".");
}

std::string BaseUrl(const http::Request& r) {
  return "https://" + r.host;
}

VaultOperation ApiRoute(std::string_view method, std::string_view pattern,
                        std::string_view operation, std::string_view object,
                        std::function<http::Response(const VaultCall&)> handler) {
  VaultOperation o;
  o.method = method;
  o.pattern = pattern;
  o.operation = operation;
  o.object_param = object;
  o.handle = [handler = std::move(handler)](const VaultCall& call) {
    if (call.request.Query("api-version").empty()) {
      return http::ErrorResponse(BadParameter("The 'api-version' query parameter is missing."));
    }
    return handler(call);
  };
  return o;
}

StatusOr<Paging> ReadPaging(const http::Request& req) {
  Paging p;
  std::string_view max = req.Query("maxresults");
  if (!max.empty()) {
    int n = 0;
    auto [ptr, ec] = std::from_chars(max.data(), max.data() + max.size(), n);
    if (ec != std::errc() || ptr != max.data() + max.size() || n < 1 || n > kMaxPageSize) {
      return BadParameter("maxresults must be an integer from 1 to 25.");
    }
    p.limit = n;
  }
  std::string_view token = req.Query("$skiptoken");
  if (!token.empty()) {
    auto decoded = Base64UrlDecode(token);
    if (!decoded || !StartsWith(*decoded, kSkipTokenPrefix)) {
      return BadParameter("$skiptoken is not valid.");
    }
    p.cursor = decoded->substr(sizeof(kSkipTokenPrefix) - 1);
  }
  return p;
}

std::string NextLink(const http::Request& req, const std::string& path, const std::string& cursor,
                     int limit) {
  if (cursor.empty()) {
    return "null";
  }
  std::string version(req.Query("api-version"));
  std::string out;
  AppendJsonString(out, BaseUrl(req) + path + "?api-version=" + PercentEncode(version) +
                            "&$skiptoken=" + Base64UrlEncode(kSkipTokenPrefix + cursor) +
                            "&maxresults=" + std::to_string(limit));
  return out;
}

StatusOr<Json> ParseBody(const http::Request& req) {
  if (req.body.empty()) {
    return BadParameter("The request body is missing.");
  }
  auto body = ParseJson(req.body);
  if (!body || !body->is_object()) {
    return BadParameter("The request body is not a valid JSON object.");
  }
  return *body;
}

Status ReadTime(const Json& attrs, const char* field, std::optional<std::optional<int64_t>>& out) {
  auto it = attrs.find(field);
  if (it == attrs.end()) {
    return OkStatus();
  }
  if (it->is_null()) {
    out = std::optional<int64_t>();
    return OkStatus();
  }
  if (!it->is_number_integer()) {
    return TypeError(std::string("attributes.") + field, "an integer (Unix seconds)");
  }
  out = std::optional<int64_t>(it->get<int64_t>());
  return OkStatus();
}

StatusOr<std::string> ReadBinary(const Json& body, const char* field) {
  auto it = body.find(field);
  if (it == body.end() || !it->is_string()) {
    return BadParameter(std::string("Property '") + field + "' is required and must be base64url.");
  }
  std::string text = it->get<std::string>();
  while (!text.empty() && text.back() == '=') {
    text.pop_back();
  }
  auto decoded = Base64UrlDecode(text);
  if (!decoded) {
    return BadParameter(std::string("Content of '") + field + "' is not base64url.");
  }
  return *decoded;
}

http::Response BackupAnswer(const StatusOr<std::string>& blob) {
  return blob.ok() ? http::JsonResponse(200, ToJson(Json{{"value", Base64UrlEncode(*blob)}}))
                   : http::ErrorResponse(blob.status());
}

StatusOr<std::string> ReadBackupBlob(const http::Request& req) {
  ASSIGN_OR_RETURN(Json body, ParseBody(req));
  return ReadBinary(body, "value");
}

StatusOr<std::optional<bool>> ReadEnabled(const Json& body) {
  auto it = body.find("attributes");
  if (it == body.end() || it->is_null()) {
    return std::optional<bool>();
  }
  if (!it->is_object()) {
    return TypeError("attributes", "an object");
  }
  auto e = it->find("enabled");
  if (e == it->end() || e->is_null()) {
    return std::optional<bool>();
  }
  if (!e->is_boolean()) {
    return TypeError("attributes.enabled", "a boolean");
  }
  return std::optional<bool>(e->get<bool>());
}

}  // namespace coffer::keyvault
