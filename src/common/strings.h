#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace coffer {

std::string AsciiLower(std::string_view s);
bool EqualsIgnoreCase(std::string_view a, std::string_view b);
bool StartsWith(std::string_view s, std::string_view prefix);
bool EndsWith(std::string_view s, std::string_view suffix);
// Splits on every occurrence of `sep`; keeps empty pieces.
std::vector<std::string_view> Split(std::string_view s, char sep);
std::string_view TrimWhitespace(std::string_view s);

}  // namespace coffer
