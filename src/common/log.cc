#include "common/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <string>
#include <string_view>

#include "common/log_context.h"

namespace coffer {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<int> g_format{static_cast<int>(LogFormat::kText)};
// The request the thread handles (LogContext). Plain thread_locals: the
// sanitizer build's crash at exit that once seemed to follow them is
// LeakSanitizer's, whatever the layout (docs/development.md).
thread_local std::string_view t_request_id;
thread_local std::string_view t_correlation_id;
std::mutex g_mu;

// A client's correlation id is written only when it is a short printable id.
bool PrintableId(std::string_view v) {
  if (v.size() > 128) {
    return false;
  }
  for (char c : v) {
    if (c < 0x21 || c > 0x7e) {
      return false;
    }
  }
  return true;
}

// A JSON string literal of `s`: quotes and backslashes escaped, every byte
// outside printable ASCII written as \u00XX, so that every line parses
// whatever a message holds (a Host header in a debug line need not be UTF-8).
void AppendJsonString(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
}

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarning:
      return "WARN";
    case LogLevel::kError:
      return "ERROR";
  }
  return "?";
}

}  // namespace

void SetLogLevel(LogLevel level) {
  g_level.store(static_cast<int>(level));
}

void SetLogFormat(LogFormat format) {
  g_format.store(static_cast<int>(format));
}

LogContext::LogContext(std::string_view request_id, std::string_view correlation_id)
    : saved_request_id_(t_request_id), saved_correlation_id_(t_correlation_id) {
  t_request_id = request_id;
  t_correlation_id = PrintableId(correlation_id) ? correlation_id : std::string_view();
}

LogContext::~LogContext() {
  t_request_id = saved_request_id_;
  t_correlation_id = saved_correlation_id_;
}

bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) >= g_level.load();
}

void WriteLog(LogLevel level, std::string_view message) {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
  if (g_format.load() == static_cast<int>(LogFormat::kJson)) {
    char time[48];
    std::snprintf(time, sizeof(time), "%s.%03dZ", stamp, static_cast<int>(ms));
    std::string line = "{\"time\":\"";
    line += time;
    line += "\",\"level\":\"";
    line += LevelName(level);
    line += "\",\"message\":";
    AppendJsonString(line, message);
    if (!t_request_id.empty()) {
      line += ",\"requestId\":";
      AppendJsonString(line, t_request_id);
    }
    if (!t_correlation_id.empty()) {
      line += ",\"correlationId\":";
      AppendJsonString(line, t_correlation_id);
    }
    line += "}\n";
    std::lock_guard<std::mutex> lock(g_mu);
    std::fwrite(line.data(), 1, line.size(), stderr);
    return;
  }
  std::lock_guard<std::mutex> lock(g_mu);
  std::fprintf(stderr, "%s.%03dZ %-5s %.*s\n", stamp, static_cast<int>(ms), LevelName(level),
               static_cast<int>(message.size()), message.data());
}

}  // namespace coffer
