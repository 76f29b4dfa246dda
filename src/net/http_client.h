#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "http/message.h"

namespace coffer::net {

struct ClientRequest {
  std::string method = "GET";
  // https://host[:port]/path?query, or http:// (plain text, for loopback
  // services such as the IMDS endpoint), as http::ParseUrl accepts it
  // (http/url.h: no userinfo, no fragment, IPv6 only in brackets).
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // PEM file of the CA to trust; empty means the system store.
  std::string ca_file;
  int timeout_seconds = 30;
  // A longer response body fails the request (kUnavailable).
  size_t max_response_bytes = 8 * 1024 * 1024;
  // SendRequest keeps the connection open afterwards for the next request
  // to the same scheme, host, port and CA file (HTTP/1.1 keep-alive);
  // false sends `Connection: close` and uses a connection of its own.
  bool keep_alive = true;
  // When set (a numeric IPv4 or IPv6 address), the connection goes to this
  // address instead of wherever the URL's host resolves to; the Host header,
  // SNI and the certificate's host name check still use the URL's host. For
  // callers that checked the address they may connect to (webhooks): the host
  // is never resolved again, so its answer cannot change in between (DNS
  // rebinding). Kept-alive connections are pooled per address too.
  std::string connect_address;
};

// SendRequest sends one request (TLS 1.2+ with the certificate and host name
// verified for https://, plain TCP for http://) and returns the response,
// whatever its status. It reuses an idle kept-alive connection to the same
// place when there is one (at most 8 per place, 64 in all, each idle at
// most 30 s; one the server has closed is dropped); a GET, HEAD or OPTIONS
// whose reused connection fails before any response byte is sent once more on
// a new one. Client sockets are close-on-exec. kInvalidArgument for a URL http::ParseUrl
// refuses, kUnavailable
// when the server cannot be reached or the TLS handshake fails, kDeadlineExceeded on timeout.
// Thread-safe.
StatusOr<http::Response> SendRequest(const ClientRequest& request);

// StreamRequest sends one request, as SendRequest, for a long-lived streamed
// response (server-sent events). For a 2xx response it calls `on_data` with
// each piece of the body as it arrives (de-chunked; pieces need not match the
// server's chunks) until the server ends the response, `on_data` returns
// false, or `*cancel` (if `cancel` is not null) becomes true, which is checked
// at least every `poll_ms` milliseconds. It then returns the status and headers
// with an empty body: stopping by `on_data` or `cancel` is a clean end too
// (but a cancel before the headers of a 2xx response have arrived, or while an
// error body is read, gives kCancelled).
// Any other status is answered whole, as SendRequest does (body bounded by
// `max_response_bytes`), without calling `on_data`.
//
// `timeout_seconds` bounds the connection, the request and the response
// headers (and a non-2xx body), not the stream: an idle stream waits for ever.
// Errors as SendRequest; a stream that breaks before its end is kUnavailable.
// `on_data` runs on the calling thread. Thread-safe.
StatusOr<http::Response> StreamRequest(const ClientRequest& request,
                                       const std::function<bool(std::string_view)>& on_data,
                                       const std::atomic<bool>* cancel = nullptr,
                                       int poll_ms = 100);

// ConnectionWaitersForTesting is how many requests are now waiting for a
// connection that another request to the same place is opening (see
// SendRequest: at most one is opened at a time). For tests, which wait for
// it instead of for a while.
size_t ConnectionWaitersForTesting();

}  // namespace coffer::net
