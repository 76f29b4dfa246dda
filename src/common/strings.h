#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace coffer {

inline char AsciiToLower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}
std::string AsciiLower(std::string_view s);
std::string AsciiUpper(std::string_view s);
bool EqualsIgnoreCase(std::string_view a, std::string_view b);
bool StartsWith(std::string_view s, std::string_view prefix);
bool EndsWith(std::string_view s, std::string_view suffix);
bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix);
// Splits on every occurrence of `sep`; keeps empty pieces.
std::vector<std::string_view> Split(std::string_view s, char sep);
std::string_view TrimWhitespace(std::string_view s);
// QuoteForError returns `text` double-quoted for an error message, with
// control and non-ASCII bytes escaped and at most 64 bytes kept. Only for
// values that are not secret (names, keys, types, flags).
std::string QuoteForError(std::string_view text);

// ParseInt64 parses a whole decimal int64 (an optional '-', digits,
// nothing else); false for anything else or out of range.
bool ParseInt64(std::string_view text, int64_t* out);

// ParseEnvLines reads "[export ]NAME=VALUE" lines (a dev.env file); other
// lines are skipped, and the first of two lines naming one NAME counts.
std::map<std::string, std::string> ParseEnvLines(std::string_view text);

// IsValidUtf8 is true when `s` is well-formed UTF-8 (by lead and
// continuation bytes).
bool IsValidUtf8(std::string_view s);

}  // namespace coffer
