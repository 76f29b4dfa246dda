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
  // A lower body limit for some requests, decided from the request line and
  // headers before any of the body is read (`body` is empty): a larger
  // Content-Length gets 413 at once, a chunked body stops at the limit.
  // Returns 0 to keep max_body_bytes. Runs on the I/O thread after the head
  // hook, must not block, and may be empty.
  std::function<size_t(const http::Request&)> body_limit;
  // Connections open at once, in all and from one client address (an IPv6
  // client's /64 counts as one address; http/client_address.h). A connection
  // over either cap is closed as soon as it is accepted, before any TLS.
  // Streamed responses count. 0 means no cap. Create lowers max_connections
  // to what the open-file limit allows.
  size_t max_connections = 16384;
  size_t max_connections_per_address = 4096;
  // Time allowed for the TLS handshake and for each whole request to arrive.
  int read_timeout_seconds = 30;
  // Time a kept-alive connection may wait, after a response, for the first
  // byte of its next request; it is then closed. The rest of that request has
  // read_timeout_seconds.
  int idle_timeout_seconds = 120;
  // A streamed response (http::Response::stream) whose unsent data would
  // exceed this is closed: its consumer is too slow.
  size_t max_stream_backlog_bytes = 1024 * 1024;
  // TLS (the default) needs the certificate and key. Without TLS the
  // server speaks plain HTTP and may listen on loopback addresses only.
  bool tls = true;
  // Plain HTTP on any address, for a listener whose answers carry no
  // credential and that takes none (the server's metrics). Never for one
  // that tokens travel to.
  bool plain_any_address = false;
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
// a closed connection and never holds a worker. A kept-alive connection that
// sends nothing is closed after the idle timeout, and connections beyond the
// caps (in all, per client address) are closed at once. Handlers run on a
// bounded worker pool so that I/O threads never block.
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
  // a file descriptor). kInvalidArgument for a bad certificate or key, a
  // plain-HTTP address that is not loopback, or a timeout below one second;
  // kUnavailable if an address cannot be bound.
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
  // SetCertificate replaces the certificate chain and key (PEM) for the
  // connections accepted from now on; established ones keep theirs. On
  // kInvalidArgument (a chain or key that does not load, or a key that is
  // not the certificate's) nothing changes. Thread-safe.
  Status SetCertificate(const std::string& chain_pem, const std::string& key_pem);

  class Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace coffer::net
