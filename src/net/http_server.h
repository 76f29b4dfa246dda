#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "http/message.h"

namespace coffer::net {

struct ServerOptions {
  std::vector<std::string> addresses = {"127.0.0.1", "::1"};
  uint16_t port = 8443;  // 0 picks a free port (same port on every address)
  int io_threads = 2;
  int worker_threads = 16;
  // Requests waiting for a worker beyond this get 503 at once.
  size_t max_queued_requests = 4096;
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 2 * 1024 * 1024;
  // Time allowed for the TLS handshake and for each whole request to arrive.
  int read_timeout_seconds = 30;
  // Idle time allowed between keep-alive requests.
  int idle_timeout_seconds = 120;
  // A streamed response (http::Response::stream) whose unsent data would
  // exceed this is closed: its consumer is too slow.
  size_t max_stream_backlog_bytes = 1024 * 1024;
  // TLS (the default) needs the certificate and key. Without TLS the
  // server speaks plain HTTP and may listen on loopback addresses only.
  bool tls = true;
  std::string certificate_chain_pem;
  std::string private_key_pem;
};

// A handler runs on a worker thread and may block (storage, hashing).
using Handler = std::function<http::Response(http::Request&)>;
// A head hook runs on the I/O thread once the request line and headers are
// read, before any of the body is. Returning a response short-circuits the
// request: the body is not read (the connection is closed if one was sent).
// It must not block. `request.body` is empty when it runs.
using HeadHook = std::function<std::optional<http::Response>(const http::Request&)>;
// A fast path runs on the I/O thread once the whole request is read. It may
// answer from memory (returning a response) but must never block; returning
// nullopt sends the request to the worker pool and the handler.
using FastPath = std::function<std::optional<http::Response>(http::Request&)>;

// HttpServer serves HTTP/1.1 with keep-alive, over TLS 1.2+ or, on loopback
// only, in plain text (as Azure's IMDS and App Service identity endpoints).
//
// Every read has a deadline and a size limit: a client that is slow to send
// its request, or sends oversized headers or body, gets an error response or
// a closed connection and never holds a worker. Handlers run on a bounded
// worker pool so that I/O threads never block.
//
// A response with `stream` set stays open after the handler returns and holds
// no thread: an idle stream costs one socket and its TLS state. Stop closes
// open streams; their writers report closed() from then on.
//
// Thread-safe: Start and Stop may be called from any thread, once each.
class HttpServer {
 public:
  // Create validates the options and the certificate, and raises the
  // process's soft limit on open files to its hard limit (every connection is
  // a file descriptor). kInvalidArgument for a bad certificate or key or a
  // plain-HTTP address that is not loopback, kUnavailable if an address
  // cannot be bound.
  static StatusOr<std::unique_ptr<HttpServer>> Create(ServerOptions options, Handler handler,
                                                      HeadHook head_hook,
                                                      FastPath fast_path = nullptr);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The bound port (useful with port 0).
  uint16_t port() const;
  // Start begins accepting on I/O threads; returns at once.
  void Start();
  // Stop stops accepting, ends connections (closing streams at once) and joins
  // all threads.
  void Stop();

  class Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace coffer::net
