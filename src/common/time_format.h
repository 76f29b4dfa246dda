#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace coffer {

// FormatIsoTime renders Unix seconds as ISO 8601 UTC, "2026-11-27T23:10:09Z",
// the form ARM and Graph use.
std::string FormatIsoTime(int64_t unix_seconds);

// ParseIsoTime reads "YYYY-MM-DDTHH:MM:SS" with an optional "Z" or "+00:00",
// or a bare date "YYYY-MM-DD" (midnight UTC). nullopt for anything else.
std::optional<int64_t> ParseIsoTime(std::string_view text);

}  // namespace coffer
