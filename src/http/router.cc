#include "http/router.h"

#include <cstdlib>

#include "common/log.h"
#include "common/strings.h"

namespace coffer::http {

std::string_view PathParams::Get(std::string_view name) const {
  for (const auto& [n, v] : items_) {
    if (n == name) {
      return v;
    }
  }
  return {};
}

void PathParams::Set(std::string_view name, std::string value) {
  items_.emplace_back(name, std::move(value));
}

RouteTable::RouteTable(const std::vector<Entry>& entries, bool ignore_case)
    : ignore_case_(ignore_case) {
  for (const auto& e : entries) {
    Pattern p;
    p.method = std::string(e.method);
    for (auto piece : Split(e.pattern, '/')) {
      if (piece.empty()) {
        continue;
      }
      Segment s;
      if (piece.size() > 2 && piece.front() == '{' && piece.back() == '}') {
        s.param = true;
        s.text = std::string(piece.substr(1, piece.size() - 2));
        if (EndsWith(s.text, "?")) {
          s.may_be_empty = true;
          s.text.pop_back();
        } else if (EndsWith(s.text, "...")) {
          s.rest = true;
          s.text.resize(s.text.size() - 3);
          if (p.has_rest) {
            // Route tables are code: a malformed one is a programming error.
            COFFER_LOG(kError) << "route pattern with two rest parameters: " << e.pattern;
            std::abort();
          }
          p.has_rest = true;
        }
      } else {
        s.text = std::string(piece);
        ++p.literals;
      }
      p.segments.push_back(std::move(s));
    }
    patterns_.push_back(std::move(p));
  }
}

bool RouteTable::Matches(const Pattern& p, const std::vector<std::string_view>& path,
                         PathParams& params, size_t& rest_taken) const {
  const size_t n = p.segments.size();
  if (p.has_rest ? path.size() < n : path.size() != n) {
    return false;
  }
  rest_taken = p.has_rest ? path.size() - n + 1 : 0;
  // Pattern segment i matches path segment i before the rest parameter and
  // i + rest_taken - 1 after it.
  size_t shift = 0;
  for (size_t i = 0; i < n; ++i) {
    const Segment& s = p.segments[i];
    if (s.rest) {
      std::string joined;
      for (size_t k = 0; k < rest_taken; ++k) {
        if (path[i + k].empty()) {
          return false;
        }
        joined += "/";
        joined += path[i + k];
      }
      params.Set(s.text, std::move(joined));
      shift = rest_taken - 1;
      continue;
    }
    std::string_view value = path[i + shift];
    if (s.param) {
      if (value.empty() && !s.may_be_empty) {
        return false;
      }
      params.Set(s.text, std::string(value));
    } else if (ignore_case_ ? !EqualsIgnoreCase(value, s.text) : value != s.text) {
      return false;
    }
  }
  return true;
}

RouteTable::Match RouteTable::Find(std::string_view method,
                                   const std::vector<std::string>& segments) const {
  std::vector<std::string_view> path(segments.begin(), segments.end());
  while (!path.empty() && path.front().empty()) {
    path.erase(path.begin());
  }
  if (!path.empty() && path.back().empty()) {
    path.pop_back();
  }
  Match best;
  bool found = false;
  size_t best_literals = 0;
  size_t best_rest = 0;
  std::string best_shape;  // the pattern text of the best match, methods aside
  for (size_t i = 0; i < patterns_.size(); ++i) {
    const Pattern& p = patterns_[i];
    PathParams params;
    size_t rest = 0;
    if (!Matches(p, path, params, rest)) {
      continue;
    }
    bool better =
        !found || p.literals > best_literals || (p.literals == best_literals && rest < best_rest);
    bool same = found && p.literals == best_literals && rest == best_rest;
    if (better && !same) {
      found = true;
      best_literals = p.literals;
      best_rest = rest;
      best = Match{};
      best.status = 405;
    }
    if (better || same) {
      if (p.method == method || p.method == "*") {
        best.status = 200;
        best.index = i;
        best.params = std::move(params);
      }
      if (best.allowed.find(p.method) == std::string::npos) {
        best.allowed += (best.allowed.empty() ? "" : ", ") + p.method;
      }
    }
  }
  if (!found) {
    best.status = 404;
  }
  return best;
}

}  // namespace coffer::http
