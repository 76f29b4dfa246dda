#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace coffer::http {

// PathParams are the values a route's pattern captured, by name. They view
// into the request's segments: the request must outlive them.
class PathParams {
 public:
  // The captured value, or "" when the pattern has no such parameter. A
  // "{name...}" parameter is its segments joined by '/', with a leading '/'.
  std::string_view Get(std::string_view name) const;
  void Set(std::string_view name, std::string value);

 private:
  std::vector<std::pair<std::string_view, std::string>> items_;
};

// RouteTable is the one place that turns a request's method and path into
// the operation it names, for one API (a plane of the server). Each entry
// is a method and a pattern of '/'-separated segments:
//   literal      matches itself (ignoring ASCII case when the table says so)
//   {name}       matches one non-empty segment
//   {name?}      matches one segment, which may be empty (Key Vault's
//                "/keys/{name}//decrypt" names no version)
//   {name...}    matches one or more segments; at most one per pattern,
//                anywhere in it
// An entry's method "*" takes every method (an endpoint that answers the
// others itself, in its protocol's words).
// A path that several patterns match goes to the most specific one (most
// literal segments, then the fewest segments captured by a "..."
// parameter); patterns must not tie. One trailing empty segment ("/a/") is
// ignored, and so are leading empty segments ("//subscriptions/...").
//
// Match answers the entry, or 404 when no pattern matches the path, or 405
// (with the methods the path has) when one does but not for this method. No
// handler ever sees a request that matched nothing.
//
// Immutable after construction; thread-safe.
class RouteTable {
 public:
  struct Entry {
    std::string_view method;   // "GET", "PUT", ...
    std::string_view pattern;  // "/secrets/{name}/{version}"
  };
  struct Match {
    int status = 404;     // 200 matched; 404 no such path; 405 no such method
    size_t index = 0;     // the matched entry, when status is 200
    PathParams params;    // its parameters
    std::string allowed;  // for 405: the path's methods, "GET, PUT"
  };

  RouteTable(const std::vector<Entry>& entries, bool ignore_case);

  // EntriesOf gives the entries of a plane's rows (anything with `method`
  // and `pattern` members), entry i for row i, so that Match::index names
  // the row.
  template <class Row>
  static std::vector<Entry> EntriesOf(const std::vector<Row>& rows) {
    std::vector<Entry> out;
    out.reserve(rows.size());
    for (const auto& row : rows) {
      out.push_back({row.method, row.pattern});
    }
    return out;
  }

  Match Find(std::string_view method, const std::vector<std::string>& segments) const;
  size_t size() const { return patterns_.size(); }

 private:
  struct Segment {
    std::string text;  // a literal, or the parameter's name
    bool param = false;
    bool rest = false;          // {name...}
    bool may_be_empty = false;  // {name?}
  };
  struct Pattern {
    std::string method;
    std::vector<Segment> segments;
    size_t literals = 0;
    bool has_rest = false;
  };
  // Matches `path` against `p`; fills `params` and the number of segments
  // the rest parameter took.
  bool Matches(const Pattern& p, const std::vector<std::string_view>& path, PathParams& params,
               size_t& rest_taken) const;

  std::vector<Pattern> patterns_;
  bool ignore_case_;
};

}  // namespace coffer::http
