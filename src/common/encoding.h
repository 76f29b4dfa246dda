#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace coffer {

// Standard base64 (RFC 4648 §4) with padding.
std::string Base64Encode(std::string_view bytes);
// Decodes standard base64; padding optional. Returns nullopt on any character
// outside the alphabet or a malformed tail.
std::optional<std::string> Base64Decode(std::string_view text);

// base64url (RFC 4648 §5) without padding, as JOSE and Key Vault use it.
std::string Base64UrlEncode(std::string_view bytes);
// Decodes base64url; tolerates padding. Returns nullopt on malformed input.
std::optional<std::string> Base64UrlDecode(std::string_view text);

std::string HexEncode(std::string_view bytes);
// Decodes hex digits of either case. Returns nullopt for an odd length or a
// character that is not a hex digit.
std::optional<std::string> HexDecode(std::string_view text);

// Percent-decodes `text`. When `plus_is_space` (form bodies) '+' becomes ' '.
// Returns nullopt on a malformed escape.
std::optional<std::string> PercentDecode(std::string_view text, bool plus_is_space);
// Percent-encodes everything but RFC 3986 unreserved characters.
std::string PercentEncode(std::string_view text);

}  // namespace coffer
