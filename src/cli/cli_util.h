#pragma once

#include <initializer_list>
#include <string>

#include "client/api_client.h"
#include "common/json.h"

namespace coffer::cli {

// Shared conventions of the commands, as az's: a service error prints
// "ERROR: (Code) message" on stderr and exits 1; a usage error exits 2.
[[noreturn]] void Fail(const Status& status);
[[noreturn]] void Usage(const std::string& message);

// Print writes JSON indented by two spaces, as az's default output.
void Print(const Json& value);

// MakeClient reads the credentials from the environment (dev.env) or fails.
client::ApiClient MakeClient();

// Expect returns the parsed body when the response has one of the `ok`
// statuses (null JSON for an empty body), and fails otherwise.
Json Expect(const StatusOr<http::Response>& response, std::initializer_list<int> ok);

}  // namespace coffer::cli
