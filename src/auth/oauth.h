#pragma once

#include <map>
#include <string>
#include <string_view>

#include "common/status.h"
#include "http/message.h"

namespace coffer::auth {

// OAuthError is Entra's OAuth error body, {"error", "error_description"
// (AADSTS<code>: ... Trace ID: ...), "error_codes", "timestamp",
// "trace_id", "correlation_id"}, with `status`.
http::Response OAuthError(int status, const std::string& error, int aadsts,
                          const std::string& description, int64_t now);

// ParseForm parses an application/x-www-form-urlencoded body; a repeated
// name keeps its first value. kInvalidArgument for a bad percent escape.
StatusOr<std::map<std::string, std::string>> ParseForm(std::string_view body);

// FormField is a parsed form's value of `name`, or "" when absent.
std::string FormField(const std::map<std::string, std::string>& form, const char* name);

}  // namespace coffer::auth
