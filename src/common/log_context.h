#pragma once

#include <string_view>

namespace coffer {

// The form of each log line (common/log.h): text ("<time> <LEVEL>
// <message>"), or one JSON object per line: {"time","level","message"} and,
// on a line written while a request is handled, "requestId" and
// "correlationId". Thread-safe; set it before serving.
enum class LogFormat { kText, kJson };
void SetLogFormat(LogFormat format);

// LogContext names the request the current thread handles, for the lines it
// writes until the LogContext is destroyed (JSON lines carry them; text
// lines do not change). Nested contexts restore the outer one. The views
// must outlive the LogContext; `correlation_id` is written only when it is
// printable ASCII of at most 128 bytes (a client chooses it).
class LogContext {
 public:
  LogContext(std::string_view request_id, std::string_view correlation_id);
  ~LogContext();
  LogContext(const LogContext&) = delete;
  LogContext& operator=(const LogContext&) = delete;

 private:
  std::string_view saved_request_id_;
  std::string_view saved_correlation_id_;
};

}  // namespace coffer
