#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace coffer::audit {

// Filter selects records; an empty or zero field matches everything.
struct Filter {
  std::string vault;      // the last segment of resourceId, case-insensitive
  std::string operation;  // operationName, case-insensitive
  std::string caller;     // the oid or appid claim, case-insensitive
  std::string result;     // "Success" / "Failure", or an HTTP status code ("404")
  int64_t from_us = 0;    // time >= from_us
  int64_t to_us = 0;      // time < to_us
  size_t top = 100;       // at most this many, the newest
};

// Query returns the newest `filter.top` records of the log in `dir` that
// match `filter` and that `may_read` (when given) accepts, oldest first, as
// parsed JSON objects with their chain fields. Checkpoint lines are never
// returned; malformed lines are skipped (Verify reports them). It reads files
// newest first and stops once it has enough; with a time range it skips
// files wholly outside it.
//
// kNotFound if `dir` does not exist; kInvalidArgument for a `result` that is
// neither Success, Failure nor a status code; kUnavailable on I/O errors.
// Safe while a Log writes to `dir`: a line being written is not read.
StatusOr<std::vector<Json>> Query(const std::string& dir, const Filter& filter,
                                  const std::function<bool(const Json&)>& may_read = nullptr);

}  // namespace coffer::audit
