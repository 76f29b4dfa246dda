#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace coffer {

using Json = nlohmann::json;

// ParseJson parses untrusted text without throwing. Returns nullopt for
// malformed JSON or nesting deeper than `max_depth`.
std::optional<Json> ParseJson(std::string_view text, int max_depth = 32);

// ToJson serialises without throwing: invalid UTF-8 in strings is replaced
// rather than raising.
std::string ToJson(const Json& value);

// AppendJsonString appends `text` as a quoted JSON string, escaping quotes,
// backslashes and control characters; invalid UTF-8 becomes U+FFFD, as in
// ToJson. For hot paths that build JSON text directly.
void AppendJsonString(std::string& out, std::string_view text);

// StringMember returns the string member `name` of `object`, or "" when
// `object` is not an object or the member is absent or not a string. Unlike
// Json::value it never throws.
std::string StringMember(const Json& object, const char* name);

}  // namespace coffer
