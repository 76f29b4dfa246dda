#pragma once

// The seam between Coffer's SDK clients and the network. The default
// transport speaks HTTPS (TLS 1.2+, certificate and host name verified) and
// plain HTTP for loopback managed-identity endpoints. Tests and programs with
// their own networking can pass another implementation in the options of a
// credential or a client.

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "coffer/status.h"

namespace coffer {

struct HttpRequest {
  std::string method = "GET";
  std::string url;  // https://host[:port]/path?query (or http:// on loopback)
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  // Header returns the first header of that name (case-insensitive), or "".
  std::string_view Header(std::string_view name) const;
};

// HttpTransport sends requests. Implementations must be thread-safe.
class HttpTransport {
 public:
  virtual ~HttpTransport() = default;

  // Send returns the response whatever its status. kInvalidArgument for a
  // malformed URL, kUnavailable when the server cannot be reached,
  // kDeadlineExceeded on timeout.
  virtual StatusOr<HttpResponse> Send(const HttpRequest& request) = 0;

  // Stream sends a request for a long-lived streamed response (server-sent
  // events). For a 2xx answer it calls `on_data` with each piece of the body
  // until the server ends it, `on_data` returns false or `*cancel` becomes
  // true, and returns the status and headers with an empty body. Any other
  // answer comes back whole, without calling `on_data`.
  virtual StatusOr<HttpResponse> Stream(const HttpRequest& request,
                                        const std::function<bool(std::string_view)>& on_data,
                                        const std::atomic<bool>* cancel) = 0;
};

struct TransportOptions {
  // PEM file of the CA to trust; "" means $COFFER_CA_FILE, then
  // $REQUESTS_CA_BUNDLE, then the system store.
  std::string ca_file;
  int timeout_seconds = 30;
};

// MakeDefaultTransport returns the SDK's own HTTPS transport.
std::shared_ptr<HttpTransport> MakeDefaultTransport(TransportOptions options = {});

}  // namespace coffer
