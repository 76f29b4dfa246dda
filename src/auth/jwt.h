#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace coffer::auth {

// A compact JWS split and decoded, not yet verified.
struct Jwt {
  Json header;                // a JSON object
  Json claims;                // a JSON object
  std::string signing_input;  // "<header>.<payload>" as received
  std::string signature;      // raw bytes
};

// ParseJwt decodes a compact JWS of at most `max_bytes`: three base64url
// parts whose first two are JSON objects (depth-bounded). kInvalidArgument
// with a short reason (never the token) otherwise.
StatusOr<Jwt> ParseJwt(std::string_view token, size_t max_bytes = 16 * 1024);

// NumericDate reads an RFC 7519 NumericDate claim: an integer or a number
// with a fraction (MSAL for Python sends those), within +-2^40 seconds.
std::optional<int64_t> NumericDate(const Json& claims, const char* name);

// AudienceMatches reports whether the `aud` claim (a string or an array of
// strings) holds one of `wanted`.
bool AudienceMatches(const Json& claims, const std::vector<std::string>& wanted);

}  // namespace coffer::auth
