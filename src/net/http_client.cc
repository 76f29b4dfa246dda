#include "net/http_client.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <type_traits>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace coffer::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

struct Url {
  bool tls = true;
  std::string host;
  std::string port;
  std::string target = "/";
};

StatusOr<Url> ParseUrl(const std::string& url) {
  Url out;
  std::string rest;
  if (url.rfind("https://", 0) == 0) {
    rest = url.substr(8);
    out.port = "443";
  } else if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
    out.tls = false;
    out.port = "80";
  } else {
    return InvalidArgumentError("URL must start with https:// or http://");
  }
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  out.target = slash == std::string::npos ? "/" : rest.substr(slash);
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string::npos) {
      return InvalidArgumentError("malformed IPv6 host in URL");
    }
    out.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':') {
      out.port = authority.substr(close + 2);
    }
  } else {
    size_t colon = authority.rfind(':');
    out.host = authority.substr(0, colon);
    if (colon != std::string::npos) {
      out.port = authority.substr(colon + 1);
    }
  }
  if (out.host.empty() || out.port.empty()) {
    return InvalidArgumentError("URL has no host or port");
  }
  return out;
}

// Failure turns a network error of step `what` into a status.
Status Failure(const char* what, beast::error_code e) {
  if (e == beast::error::timeout) {
    return Status(StatusCode::kDeadlineExceeded, std::string(what) + " timed out");
  }
  return UnavailableError(std::string(what) + " failed: " + e.message());
}

// Exchange connects, (for TLS) handshakes, writes `req` and reads the
// response, all under the stream's deadline. Returns the first failure.
template <class Stream>
Status Exchange(asio::io_context& ioc, Stream& stream, const tcp::resolver::results_type& endpoints,
                bhttp::request<bhttp::string_body>& req,
                bhttp::response_parser<bhttp::string_body>& parser) {
  Status result = OkStatus();
  auto fail = [&](const char* what, beast::error_code e) { result = Failure(what, e); };
  beast::flat_buffer buffer;
  auto write_and_read = [&] {
    bhttp::async_write(stream, req, [&](beast::error_code e, size_t) {
      if (e) {
        return fail("write", e);
      }
      bhttp::async_read(stream, buffer, parser, [&](beast::error_code e2, size_t) {
        if (e2) {
          return fail("read", e2);
        }
      });
    });
  };
  beast::get_lowest_layer(stream).async_connect(endpoints, [&](beast::error_code e, auto) {
    if (e) {
      return fail("connect", e);
    }
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      write_and_read();
    } else {
      stream.async_handshake(asio::ssl::stream_base::client, [&](beast::error_code e2) {
        if (e2) {
          return fail("TLS handshake", e2);
        }
        write_and_read();
      });
    }
  });
  ioc.run();
  return result;
}

bhttp::request<bhttp::string_body> MakeRequest(const ClientRequest& request, const Url& url) {
  bool default_port = url.port == (url.tls ? "443" : "80");
  bhttp::request<bhttp::string_body> req;
  req.method_string(request.method);
  req.target(url.target);
  req.version(11);
  req.set(bhttp::field::host, default_port ? url.host : url.host + ":" + url.port);
  req.set(bhttp::field::user_agent, "coffer/0.1");
  for (const auto& [k, v] : request.headers) {
    req.set(k, v);
  }
  req.body() = request.body;
  req.prepare_payload();
  return req;
}

// WithStream resolves the URL's host and calls
// `fn(ioc, stream, endpoints) -> StatusOr<http::Response>` with an
// unconnected stream: plain TCP for http://, TLS 1.2+ with the certificate and
// host name verified for https://.
template <class Fn>
StatusOr<http::Response> WithStream(const ClientRequest& request, const Url& url, Fn&& fn) {
  asio::io_context ioc;
  beast::error_code ec;
  tcp::resolver resolver(ioc);
  auto endpoints = resolver.resolve(url.host, url.port, ec);
  if (ec) {
    return UnavailableError("cannot resolve " + url.host + ": " + ec.message());
  }
  if (!url.tls) {
    beast::tcp_stream stream(ioc);
    return fn(ioc, stream, endpoints);
  }
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  if (request.ca_file.empty()) {
    ctx.set_default_verify_paths(ec);
  } else {
    ctx.load_verify_file(request.ca_file, ec);
  }
  if (ec) {
    return InvalidArgumentError("cannot load CA file '" + request.ca_file + "': " + ec.message());
  }
  ctx.set_verify_mode(asio::ssl::verify_peer);
  beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
  // SSL_set_tlsext_host_name is a macro with a C cast; call what it expands to.
  if (SSL_ctrl(stream.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(url.host.c_str())) != 1) {
    return InvalidArgumentError("cannot set SNI host name");
  }
  stream.set_verify_callback(asio::ssl::host_name_verification(url.host));
  return fn(ioc, stream, endpoints);
}

template <bool isRequest, class Fields>
http::Response StatusAndHeaders(const bhttp::header<isRequest, Fields>& header) {
  http::Response out;
  out.status = static_cast<int>(header.result_int());
  for (const auto& field : header) {
    out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  return out;
}

// Poller runs a client's io_context until an operation completes, and between
// polls checks whether the caller has cancelled.
class Poller {
 public:
  Poller(asio::io_context& ioc, const std::atomic<bool>* cancel, int poll_ms)
      : ioc_(ioc), cancel_(cancel), poll_(std::max(poll_ms, 1)) {}

  bool cancelled() const { return cancel_ != nullptr && cancel_->load(); }

  // Wait runs the context until `done`. On cancellation it closes `stream`,
  // lets the aborted operation finish and returns false.
  template <class Stream>
  bool Wait(Stream& stream, const bool& done) {
    while (!done) {
      if (ioc_.stopped()) {
        ioc_.restart();
      }
      size_t ran = cancel_ == nullptr ? ioc_.run_one() : ioc_.run_one_for(poll_);
      if (ran == 0 && ioc_.stopped() && !done) {
        return false;  // nothing left to run: cannot happen with an operation pending
      }
      if (!done && cancelled()) {
        beast::get_lowest_layer(stream).close();
        while (!done) {
          if (ioc_.stopped()) {
            ioc_.restart();
          }
          if (ioc_.run_one() == 0 && ioc_.stopped()) {
            break;
          }
        }
        return false;
      }
    }
    return true;
  }

 private:
  asio::io_context& ioc_;
  const std::atomic<bool>* const cancel_;
  const std::chrono::milliseconds poll_;
};

// StreamExchange is Exchange for a streamed response; see StreamRequest.
template <class Stream>
StatusOr<http::Response> StreamExchange(Stream& stream,
                                        const tcp::resolver::results_type& endpoints,
                                        const ClientRequest& request, const Url& url,
                                        const std::function<bool(std::string_view)>& on_data,
                                        Poller& poller) {
  bhttp::request<bhttp::string_body> req = MakeRequest(request, url);
  bhttp::response_parser<bhttp::buffer_body> parser;
  // The stream is unbounded; an error body is bounded below. (Not
  // boost::none: Boost 1.74 then refuses any Content-Length body.)
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  beast::flat_buffer buffer;
  beast::error_code ec;
  bool done = false;
  const char* step = "connect";
  auto finish = [&](beast::error_code e) {
    ec = e;
    done = true;
  };
  // Each step runs alone, so the caller can cancel between polls and between
  // steps (a busy stream may never leave a poll idle).
  auto run = [&](const char* what, auto start) {
    step = what;
    if (poller.cancelled()) {
      ec = asio::error::operation_aborted;
      return false;
    }
    done = false;
    start();
    if (!poller.Wait(stream, done) && !ec) {
      ec = asio::error::operation_aborted;
    }
    return !ec;
  };
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(request.timeout_seconds));
  bool ok = run("connect", [&] {
    beast::get_lowest_layer(stream).async_connect(endpoints,
                                                  [&](beast::error_code e, auto) { finish(e); });
  });
  if constexpr (!std::is_same_v<Stream, beast::tcp_stream>) {
    ok = ok && run("TLS handshake",
                   [&] { stream.async_handshake(asio::ssl::stream_base::client, finish); });
  }
  ok = ok && run("write", [&] {
         bhttp::async_write(stream, req, [&](beast::error_code e, size_t) { finish(e); });
       });
  ok = ok && run("read", [&] {
         bhttp::async_read_header(stream, buffer, parser,
                                  [&](beast::error_code e, size_t) { finish(e); });
       });
  if (!ok) {
    if (poller.cancelled() && !parser.is_header_done()) {
      return Status(StatusCode::kCancelled, "request cancelled during " + std::string(step));
    }
    return Failure(step, ec);
  }
  http::Response out = StatusAndHeaders(parser.get().base());
  const bool success = out.status >= 200 && out.status < 300;
  if (success) {
    // Connection and headers are bounded by the timeout; the stream is not.
    beast::get_lowest_layer(stream).expires_never();
  }
  char piece[16 * 1024];
  while (!parser.is_done()) {
    auto& body = parser.get().body();
    body.data = piece;
    body.size = sizeof(piece);
    if (!run("read", [&] {
          bhttp::async_read_some(stream, buffer, parser,
                                 [&](beast::error_code e, size_t) { finish(e); });
        })) {
      if (ec == bhttp::error::need_buffer) {
        ec = {};  // `piece` is full; hand it on and read on
      } else if (poller.cancelled()) {
        if (!success) {
          return Status(StatusCode::kCancelled, "request cancelled while reading the response");
        }
        return out;
      } else {
        return Failure(success ? "stream read" : "read", ec);
      }
    }
    size_t n = sizeof(piece) - parser.get().body().size;
    if (n == 0) {
      continue;
    }
    if (!success) {
      if (out.body.size() + n > request.max_response_bytes) {
        return UnavailableError("response body exceeds " +
                                std::to_string(request.max_response_bytes) + " bytes");
      }
      out.body.append(piece, n);
    } else if (!on_data(std::string_view(piece, n))) {
      return out;
    }
  }
  return out;
}

}  // namespace

StatusOr<http::Response> SendRequest(const ClientRequest& request) {
  ASSIGN_OR_RETURN(Url url, ParseUrl(request.url));
  bhttp::request<bhttp::string_body> req = MakeRequest(request, url);
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(request.max_response_bytes);
  auto deadline = std::chrono::seconds(request.timeout_seconds);
  auto exchange = [&](asio::io_context& ioc, auto& stream,
                      const tcp::resolver::results_type& endpoints) -> StatusOr<http::Response> {
    beast::get_lowest_layer(stream).expires_after(deadline);
    RETURN_IF_ERROR(Exchange(ioc, stream, endpoints, req, parser));
    auto& res = parser.get();
    http::Response out = StatusAndHeaders(res.base());
    out.body = std::move(res.body());
    return out;
  };
  return WithStream(request, url, exchange);
}

StatusOr<http::Response> StreamRequest(const ClientRequest& request,
                                       const std::function<bool(std::string_view)>& on_data,
                                       const std::atomic<bool>* cancel, int poll_ms) {
  ASSIGN_OR_RETURN(Url url, ParseUrl(request.url));
  auto exchange = [&](asio::io_context& ioc, auto& stream,
                      const tcp::resolver::results_type& endpoints) -> StatusOr<http::Response> {
    Poller poller(ioc, cancel, poll_ms);
    return StreamExchange(stream, endpoints, request, url, on_data, poller);
  };
  return WithStream(request, url, exchange);
}

}  // namespace coffer::net
