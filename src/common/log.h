#pragma once

#include <sstream>
#include <string_view>

namespace coffer {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// SetLogLevel sets the minimum level written. Thread-safe.
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);
// WriteLog writes one line to stderr with a UTC timestamp. Thread-safe.
void WriteLog(LogLevel level, std::string_view message);

// SECURITY: log lines carry operations, names and statuses only. Request and
// response bodies, tokens and secret values are never passed here.
class LogLine {
 public:
  explicit LogLine(LogLevel level) : level_(level) {}
  ~LogLine() { WriteLog(level_, stream_.str()); }
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;
  template <typename T>
  LogLine& operator<<(const T& v) {
    stream_ << v;
    return *this;
  }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};

}  // namespace coffer

#define COFFER_LOG(level)                                 \
  if (!::coffer::LogEnabled(::coffer::LogLevel::level)) { \
  } else                                                  \
    ::coffer::LogLine(::coffer::LogLevel::level)
