#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace coffer::http {

// Request is a parsed HTTP request as handlers see it: plain data, no
// network-library types. Header names are lower-case.
struct Request {
  std::string method;  // upper-case, e.g. "GET"
  std::string target;  // as received
  // Path segments after the leading '/', percent-decoded, empty segments
  // kept ("/secrets/a/" gives {"secrets", "a", ""}).
  std::vector<std::string> segments;
  // Query parameters with percent-decoded names and values (clients send
  // "api%2Dversion"). A repeated name keeps the first value.
  std::map<std::string, std::string> query;
  std::map<std::string, std::string> headers;
  std::string body;
  std::string host;  // Host header as sent, with port
  std::string remote_address;
  std::string tls_version;

  // Header returns the value of a lower-case header name, or "".
  std::string_view Header(const std::string& lower_name) const;
  std::string_view Query(const std::string& name) const;
};

// StreamWriter pushes the body of a long-lived response (server-sent events,
// watch streams) after the handler has returned. The server owns the
// connection; a writer only refers to it, so it may outlive the connection and
// the server: from then on every Write returns false.
//
// Thread-safe: any thread may call any method at any time.
class StreamWriter {
 public:
  virtual ~StreamWriter() = default;

  // Write queues `data` to be sent as one chunk, in the order of the calls,
  // and returns at once (it never blocks on the network). An empty `data`
  // sends nothing and returns !closed(). Returns false, sending nothing, once
  // the stream is closed: the peer went away, the server is stopping, Close()
  // was called, or the unsent backlog would exceed the server's limit (a slow
  // consumer is disconnected rather than buffered without bound).
  virtual bool Write(std::string data) = 0;
  // True once Write would return false. It becomes true without any Write
  // when the peer closes the connection, so an idle stream can be reaped.
  virtual bool closed() const = 0;
  // Close ends the response after the chunks already queued (terminating
  // chunk) and then the connection. Idempotent.
  virtual void Close() = 0;
};

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // When set, the response is streamed: status and headers are sent with
  // Transfer-Encoding: chunked (no Content-Length), `body` (if not empty) is
  // sent as the first chunk, then `stream` is called once with the
  // writer for the rest of the body. It runs on a server I/O thread and must
  // not block; it may keep the writer and use it from any thread. The stream
  // has no idle timeout (send heartbeats to detect dead peers sooner than TCP
  // does), and the connection is never reused for another request. If the
  // connection fails first, the writer soon reports closed(); if the server
  // stops before the headers are sent, `stream` is never called. Meant for
  // bodiless requests (GET): an unread request body ends the stream.
  std::function<void(std::shared_ptr<StreamWriter>)> stream;

  void SetHeader(std::string name, std::string value);
};

// IsTrustworthyUrl reports whether a server may fetch `url` for keys: a URL
// that http::ParseUrl accepts (http/url.h: no userinfo, '?' or '#' in the
// authority, no fragment, canonical hosts, IPv6 only in brackets), at most
// 2,048 characters, https:// or http:// to a loopback host (127.0.0.1, [::1],
// localhost). The HTTP client reads URLs with the same parser, so the host
// approved here is the host it connects to.
inline constexpr size_t kMaxTrustworthyUrlLength = 2048;
bool IsTrustworthyUrl(std::string_view url);

// ParseTarget fills `segments` and `query` from a request target.
// kInvalidArgument on a malformed percent escape or a target that does not
// start with '/'.
Status ParseTarget(std::string_view target, Request& request);

// JsonResponse makes a response with a JSON body and the content type Key
// Vault clients expect.
Response JsonResponse(int status, std::string body);

// HttpStatusFor maps a status code to the HTTP status and the default error
// code a client sees. One table for the whole server (docs/errors.md).
struct HttpError {
  int http_status;
  const char* code;
};
HttpError HttpStatusFor(StatusCode code);

// ErrorResponse renders {"error":{"code","message"}}, the error shape Key
// Vault, ARM and Graph share, with an explicit HTTP status.
Response ErrorResponse(int http_status, std::string_view code, std::string_view message);

// EmptyResponse is a response with a status and no body (204, bodiless 200).
Response EmptyResponse(int http_status);

// ErrorResponse renders `status` in Key Vault's error shape:
// {"error":{"code":..., "message":...}}. The reason of the status, when
// set, is the code; a reason "Code/Inner" also gives the error Key Vault's
// "innererror":{"code":"Inner"}.
Response ErrorResponse(const Status& status);

}  // namespace coffer::http
