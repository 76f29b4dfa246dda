#include "auth/jwt.h"

#include <algorithm>

#include "common/encoding.h"
#include "common/strings.h"

namespace coffer::auth {

StatusOr<Jwt> ParseJwt(std::string_view token, size_t max_bytes) {
  if (token.size() > max_bytes) {
    return InvalidArgumentError("the token is too large");
  }
  auto parts = Split(token, '.');
  if (parts.size() != 3 || parts[0].empty() || parts[1].empty() || parts[2].empty()) {
    return InvalidArgumentError("the token is not a signed JWT");
  }
  auto header_text = Base64UrlDecode(parts[0]);
  auto payload_text = Base64UrlDecode(parts[1]);
  auto signature = Base64UrlDecode(parts[2]);
  if (!header_text || !payload_text || !signature) {
    return InvalidArgumentError("the token is not base64url");
  }
  auto header = ParseJson(*header_text, 4);
  auto claims = ParseJson(*payload_text, 8);
  if (!header || !header->is_object() || !claims || !claims->is_object()) {
    return InvalidArgumentError("the token is not a JWT");
  }
  Jwt out;
  out.header = std::move(*header);
  out.claims = std::move(*claims);
  out.signing_input = std::string(token.substr(0, parts[0].size() + 1 + parts[1].size()));
  out.signature = std::move(*signature);
  return out;
}

std::optional<int64_t> NumericDate(const Json& claims, const char* name) {
  auto it = claims.find(name);
  if (it == claims.end() || !it->is_number()) {
    return std::nullopt;
  }
  if (it->is_number_float()) {
    double d = it->get<double>();
    if (!(d > -1e12 && d < 1e12)) {  // also refuses NaN
      return std::nullopt;
    }
    return static_cast<int64_t>(d);
  }
  if (it->is_number_unsigned()) {
    if (it->get<uint64_t>() > uint64_t{1} << 40) {
      return std::nullopt;
    }
    return static_cast<int64_t>(it->get<uint64_t>());
  }
  int64_t v = it->get<int64_t>();
  if (v < -(int64_t{1} << 40)) {
    return std::nullopt;
  }
  return v;
}

bool AudienceMatches(const Json& claims, const std::vector<std::string>& wanted) {
  auto it = claims.find("aud");
  if (it == claims.end()) {
    return false;
  }
  const Json aud = it->is_array() ? *it : Json::array({*it});
  for (const auto& a : aud) {
    if (a.is_string() &&
        std::find(wanted.begin(), wanted.end(), a.get<std::string>()) != wanted.end()) {
      return true;
    }
  }
  return false;
}

}  // namespace coffer::auth
