#include "auth/oauth.h"

#include "common/encoding.h"
#include "common/json.h"
#include "common/strings.h"
#include "common/time_format.h"
#include "crypto/primitives.h"

namespace coffer::auth {
namespace {

// Entra's `timestamp`: ISO 8601 with a space for the "T".
std::string EntraTimestamp(int64_t now) {
  std::string t = FormatIsoTime(now);
  t[10] = ' ';
  return t;
}

}  // namespace

http::Response OAuthError(int status, const std::string& error, int aadsts,
                          const std::string& description, int64_t now) {
  std::string trace = crypto::RandomUuid();
  Json body = {{"error", error},
               {"error_description",
                "AADSTS" + std::to_string(aadsts) + ": " + description + " Trace ID: " + trace},
               {"error_codes", Json::array({aadsts})},
               {"timestamp", EntraTimestamp(now)},
               {"trace_id", trace},
               {"correlation_id", crypto::RandomUuid()}};
  return http::JsonResponse(status, ToJson(body));
}

StatusOr<std::map<std::string, std::string>> ParseForm(std::string_view body) {
  std::map<std::string, std::string> out;
  for (std::string_view pair : Split(body, '&')) {
    if (pair.empty()) {
      continue;
    }
    size_t eq = pair.find('=');
    auto name = PercentDecode(pair.substr(0, eq), true);
    auto value = PercentDecode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true);
    if (!name || !value) {
      return InvalidArgumentError("malformed form body");
    }
    out.emplace(std::move(*name), std::move(*value));
  }
  return out;
}

std::string FormField(const std::map<std::string, std::string>& form, const char* name) {
  auto it = form.find(name);
  return it == form.end() ? std::string() : it->second;
}

}  // namespace coffer::auth
