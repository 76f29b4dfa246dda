#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "http/message.h"

namespace coffer::net {

struct ClientRequest {
  std::string method = "GET";
  std::string url;  // https://host[:port]/path?query
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // PEM file of the CA to trust; empty means the system store.
  std::string ca_file;
  int timeout_seconds = 30;
};

// HttpsRequest sends one request over a fresh TLS connection (TLS 1.2+,
// certificate and host name verified) and returns the response, whatever its
// status. kInvalidArgument for a malformed URL, kUnavailable when the server
// cannot be reached or the TLS handshake fails, kDeadlineExceeded on timeout.
// Thread-safe.
StatusOr<http::Response> HttpsRequest(const ClientRequest& request);

}  // namespace coffer::net
