#include "audit/query.h"

#include <algorithm>
#include <charconv>
#include <optional>

#include "audit/layout.h"
#include "audit/record.h"
#include "common/files.h"
#include "common/strings.h"

namespace coffer::audit {
namespace {

// Record times are when requests began, as the server stamped them, so a
// file may hold a few records older than its first line or newer than its
// last. A file is skipped only when it lies this far outside the range.
constexpr int64_t kTimeSlackUs = int64_t{600} * 1000000;

// The oid claim appears under its short name or as the full claim URI.
constexpr const char* kCallerClaims[] = {
    "oid", "appid", "http://schemas.microsoft.com/identity/claims/objectidentifier"};

class Matcher {
 public:
  static StatusOr<Matcher> Create(const Filter& filter) {
    Matcher m(filter);
    const std::string& r = filter.result;
    if (!r.empty() && !EqualsIgnoreCase(r, "Success") && !EqualsIgnoreCase(r, "Failure")) {
      int code = 0;
      auto res = std::from_chars(r.data(), r.data() + r.size(), code);
      if (res.ec != std::errc() || res.ptr != r.data() + r.size() || code < 100 || code > 599) {
        return InvalidArgumentError("result filter must be Success, Failure or an HTTP status");
      }
      m.status_code_ = code;
    }
    return m;
  }

  bool Matches(const Json& j) const {
    if (!j.is_object() || StringMember(j, "category") == kCheckpointCategory) {
      return false;
    }
    if (!f_.vault.empty()) {
      std::string id = StringMember(j, "resourceId");
      std::string_view last = id;
      size_t slash = last.rfind('/');
      if (slash != std::string_view::npos) {
        last.remove_prefix(slash + 1);
      }
      if (!EqualsIgnoreCase(last, f_.vault)) {
        return false;
      }
    }
    if (!f_.operation.empty() &&
        !EqualsIgnoreCase(StringMember(j, "operationName"), f_.operation)) {
      return false;
    }
    if (!f_.caller.empty() && !CallerMatches(j)) {
      return false;
    }
    if (status_code_ != 0) {
      auto props = j.find("properties");
      if (props == j.end() || !props->is_object() || !props->contains("httpStatusCode") ||
          !(*props)["httpStatusCode"].is_number_integer() ||
          (*props)["httpStatusCode"].get<int64_t>() != status_code_) {
        return false;
      }
    } else if (!f_.result.empty() && !EqualsIgnoreCase(StringMember(j, "resultType"), f_.result)) {
      return false;
    }
    if (f_.from_us != 0 || f_.to_us != 0) {
      auto t = ParseAuditTime(StringMember(j, "time"));
      if (!t || (f_.from_us != 0 && *t < f_.from_us) || (f_.to_us != 0 && *t >= f_.to_us)) {
        return false;
      }
    }
    return true;
  }

 private:
  explicit Matcher(const Filter& f) : f_(f) {}

  bool CallerMatches(const Json& j) const {
    auto identity = j.find("identity");
    if (identity == j.end() || !identity->is_object()) {
      return false;
    }
    auto claim = identity->find("claim");
    if (claim == identity->end() || !claim->is_object()) {
      return false;
    }
    for (const char* name : kCallerClaims) {
      if (EqualsIgnoreCase(StringMember(*claim, name), f_.caller)) {
        return true;
      }
    }
    return false;
  }

  const Filter& f_;
  int status_code_ = 0;
};

// Whether a file can hold records in the filter's time range, judging by its
// first and last lines. Errors answer yes: the full read will report them.
bool MayOverlap(const LogFile& file, const Filter& filter, bool* older_files_too_old) {
  if (filter.from_us != 0) {
    auto tail = ReadTail(FileSystem::Default(), file.path);
    if (tail.ok()) {
      auto t = LineTimeUs(tail->last_line);
      if (t && *t < filter.from_us - kTimeSlackUs) {
        *older_files_too_old = true;
        return false;
      }
    }
  }
  if (filter.to_us != 0) {
    auto first = ReadFirstLine(FileSystem::Default(), file.path);
    if (first.ok() && first->has_value()) {
      auto t = LineTimeUs(**first);
      if (t && *t > filter.to_us + kTimeSlackUs) {
        return false;
      }
    }
  }
  return true;
}

}  // namespace

StatusOr<std::vector<Json>> Query(const std::string& dir, const Filter& filter,
                                  const std::function<bool(const Json&)>& may_read) {
  ASSIGN_OR_RETURN(Matcher matcher, Matcher::Create(filter));
  ASSIGN_OR_RETURN(std::vector<LogFile> files, ListLogFiles(FileSystem::Default(), dir));
  std::vector<Json> out;
  if (filter.top == 0) {
    return out;
  }
  for (auto f = files.rbegin(); f != files.rend() && out.size() < filter.top; ++f) {
    bool older_files_too_old = false;
    if (!MayOverlap(*f, filter, &older_files_too_old)) {
      if (older_files_too_old) {
        break;
      }
      continue;
    }
    auto content = ReadFile(f->path);
    if (!content.ok()) {
      if (content.status().code() == StatusCode::kNotFound) {
        continue;  // retention removed it after the listing
      }
      return content.status();
    }
    std::string_view text = *content;
    // Only complete lines: a trailing fragment is being written right now.
    size_t end = text.rfind('\n');
    if (end == std::string_view::npos) {
      continue;
    }
    text = text.substr(0, end + 1);
    while (!text.empty() && out.size() < filter.top) {
      size_t start = text.size() >= 2 ? text.rfind('\n', text.size() - 2) : std::string_view::npos;
      start = start == std::string_view::npos ? 0 : start + 1;
      std::string_view line = text.substr(start, text.size() - start - 1);
      text = text.substr(0, start);
      auto json = ParseJson(line);
      if (!json || !matcher.Matches(*json)) {
        continue;
      }
      if (may_read && !may_read(*json)) {
        continue;
      }
      out.push_back(std::move(*json));
    }
  }
  std::reverse(out.begin(), out.end());
  return out;
}

}  // namespace coffer::audit
