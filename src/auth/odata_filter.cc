#include "auth/odata_filter.h"

#include "common/strings.h"

namespace coffer::auth {
namespace {

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '/';
}

// The name (letters, digits, '_', '/') at the start of `s`, taken with the
// spaces after it; empty if there is none.
std::string_view TakeName(std::string_view& s) {
  size_t n = 0;
  while (n < s.size() && IsNameChar(s[n])) {
    ++n;
  }
  std::string_view name = s.substr(0, n);
  s = TrimWhitespace(s.substr(n));
  return name;
}

bool TakeChar(std::string_view& s, char c) {
  if (s.empty() || s.front() != c) {
    return false;
  }
  s = TrimWhitespace(s.substr(1));
  return true;
}

Status Unsupported() {
  return InvalidArgumentError(
      "Unsupported or invalid query filter clause specified. Coffer supports "
      "<property> eq '<value>', accountEnabled eq true|false and "
      "startswith(<property>,'<value>'), joined by 'and'.");
}

StatusOr<ODataClause> TakeClause(std::string_view& s) {
  ODataClause clause;
  std::string_view first = TakeName(s);
  if (first.empty()) {
    return Unsupported();
  }
  if (EqualsIgnoreCase(first, "startswith") && TakeChar(s, '(')) {
    clause.op = ODataClause::Op::kStartsWith;
    clause.property = std::string(TakeName(s));
    if (clause.property.empty() || !TakeChar(s, ',')) {
      return Unsupported();
    }
    auto text = TakeODataString(s);
    s = TrimWhitespace(s);
    if (!text || !TakeChar(s, ')')) {
      return Unsupported();
    }
    clause.text = std::move(*text);
    return clause;
  }
  clause.property = std::string(first);
  if (!EqualsIgnoreCase(TakeName(s), "eq")) {
    return Unsupported();
  }
  if (auto text = TakeODataString(s)) {
    clause.text = std::move(*text);
    s = TrimWhitespace(s);
    return clause;
  }
  std::string_view literal = TakeName(s);
  if (literal == "true" || literal == "false") {
    clause.boolean = literal == "true";
    return clause;
  }
  return Unsupported();
}

}  // namespace

std::optional<std::string> TakeODataString(std::string_view& s) {
  if (s.empty() || s.front() != '\'') {
    return std::nullopt;
  }
  std::string out;
  for (size_t i = 1; i < s.size(); ++i) {
    if (s[i] != '\'') {
      out.push_back(s[i]);
    } else if (i + 1 < s.size() && s[i + 1] == '\'') {
      out.push_back('\'');
      ++i;
    } else {
      s.remove_prefix(i + 1);
      return out;
    }
  }
  return std::nullopt;
}

StatusOr<std::vector<ODataClause>> ParseODataFilter(std::string_view filter) {
  if (filter.size() > kMaxODataFilter) {
    return InvalidArgumentError("The $filter is longer than " + std::to_string(kMaxODataFilter) +
                                " bytes.");
  }
  std::string_view s = TrimWhitespace(filter);
  std::vector<ODataClause> out;
  while (true) {
    ASSIGN_OR_RETURN(ODataClause clause, TakeClause(s));
    out.push_back(std::move(clause));
    if (s.empty()) {
      return out;
    }
    std::string_view word = TakeName(s);
    if (!EqualsIgnoreCase(word, "and") || s.empty()) {
      return Unsupported();
    }
  }
}

}  // namespace coffer::auth
