#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "http/message.h"

namespace coffer::net {

struct ClientRequest {
  std::string method = "GET";
  // https://host[:port]/path?query, or http:// (plain text, for loopback
  // services such as the IMDS endpoint).
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // PEM file of the CA to trust; empty means the system store.
  std::string ca_file;
  int timeout_seconds = 30;
  // A longer response body fails the request (kUnavailable).
  size_t max_response_bytes = 8 * 1024 * 1024;
};

// SendRequest sends one request over a fresh connection (TLS 1.2+ with the
// certificate and host name verified for https://, plain TCP for http://)
// and returns the response, whatever its status. kInvalidArgument for a malformed URL, kUnavailable
// when the server cannot be reached or the TLS handshake fails, kDeadlineExceeded on timeout.
// Thread-safe.
StatusOr<http::Response> SendRequest(const ClientRequest& request);

}  // namespace coffer::net
