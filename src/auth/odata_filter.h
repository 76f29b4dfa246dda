#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace coffer::auth {

// One clause of the OData $filter subset Graph clients send for users
// (docs/users.md): `<property> eq '<text>'`, `<property> eq true|false`,
// or `startswith(<property>,'<text>')`.
struct ODataClause {
  enum class Op { kEq, kStartsWith };
  std::string property;  // as written
  Op op = Op::kEq;
  std::string text;             // the string literal, unescaped
  std::optional<bool> boolean;  // set instead of `text` for eq true|false
};

// The longest $filter parsed, in bytes.
inline constexpr size_t kMaxODataFilter = 2048;

// ParseODataFilter parses clauses joined by `and` (keywords and property
// names in any case). kInvalidArgument for anything else: another
// operator, `or`, `not`, parentheses, a number, a bad literal, or more
// than kMaxODataFilter bytes.
StatusOr<std::vector<ODataClause>> ParseODataFilter(std::string_view filter);

// TakeODataString takes the OData string literal at the start of `s`
// ('it''s' is "it's") and leaves the rest in `s`; nullopt if `s` starts
// with none.
std::optional<std::string> TakeODataString(std::string_view& s);

}  // namespace coffer::auth
