#include "net/http_client.h"

#include <fcntl.h>
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <type_traits>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "http/url.h"

#include <sys/stat.h>

namespace coffer::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

using http::Url;

// Failure turns a network error of step `what` into a status.
Status Failure(const char* what, beast::error_code e) {
  if (e == beast::error::timeout) {
    return Status(StatusCode::kDeadlineExceeded, std::string(what) + " timed out");
  }
  return UnavailableError(std::string(what) + " failed: " + e.message());
}

bhttp::request<bhttp::string_body> MakeRequest(const ClientRequest& request, const Url& url) {
  bhttp::request<bhttp::string_body> req;
  req.method_string(request.method);
  req.target(url.path_and_query);
  req.version(11);
  req.set(bhttp::field::host, url.Authority());
  req.set(bhttp::field::user_agent, "coffer/0.1");
  for (const auto& [k, v] : request.headers) {
    req.set(k, v);
  }
  req.body() = request.body;
  req.prepare_payload();
  return req;
}

// A TLS client context per CA file (TLS 1.2+, peer verified), loaded once
// and again when the file changes (its size or mtime), so a request does
// not parse the CA bundle each time.
StatusOr<std::shared_ptr<asio::ssl::context>> ClientContext(const std::string& ca_file) {
  std::string stamp;
  if (!ca_file.empty()) {
    struct stat st {};
    if (::stat(ca_file.c_str(), &st) == 0) {
      stamp = std::to_string(st.st_size) + "/" + std::to_string(st.st_mtim.tv_sec) + "." +
              std::to_string(st.st_mtim.tv_nsec);
    }
  }
  static std::mutex mu;
  // Leaked on purpose: connections in the pool hold contexts until exit.
  static auto* cache =
      new std::map<std::string, std::pair<std::string, std::shared_ptr<asio::ssl::context>>>();
  {
    std::lock_guard<std::mutex> lock(mu);
    auto found = cache->find(ca_file);
    if (found != cache->end() && found->second.first == stamp) {
      return found->second.second;
    }
  }
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  beast::error_code ec;
  if (ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
  } else {
    ctx->load_verify_file(ca_file, ec);
  }
  if (ec) {
    return InvalidArgumentError("cannot load CA file '" + ca_file + "': " + ec.message());
  }
  ctx->set_verify_mode(asio::ssl::verify_peer);
  std::lock_guard<std::mutex> lock(mu);
  if (cache->size() >= 16) {
    cache->clear();
  }
  (*cache)[ca_file] = {stamp, ctx};
  return ctx;
}

// CloseOnExec keeps client sockets out of the processes this one starts
// (coffer exec's child, an agent's reload command).
void CloseOnExec(beast::tcp_stream& stream) {
  int fd = stream.socket().native_handle();
  int flags = ::fcntl(fd, F_GETFD);
  if (flags >= 0) {
    ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
  }
}

// A client connection: its own io_context (the calling thread runs it), the
// TLS context it was made with, and the stream.
struct Connection {
  asio::io_context ioc;
  std::shared_ptr<asio::ssl::context> tls_ctx;
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  std::chrono::steady_clock::time_point idle_since;

  beast::tcp_stream& lowest() { return plain ? *plain : beast::get_lowest_layer(*tls); }
};

// Run runs a connection's context until its one pending operation is done.
void Run(Connection& c) {
  c.ioc.restart();
  c.ioc.run();
}

// Resolve gives the addresses to connect to: the request's connect_address
// alone (numeric only: never a name lookup) when it has one, else the URL's
// host's.
tcp::resolver::results_type Resolve(tcp::resolver& resolver, const ClientRequest& request,
                                    const Url& url, beast::error_code& ec) {
  if (!request.connect_address.empty()) {
    return resolver.resolve(request.connect_address, std::to_string(url.port),
                            tcp::resolver::numeric_host | tcp::resolver::numeric_service, ec);
  }
  return resolver.resolve(url.host, std::to_string(url.port), ec);
}

// Open resolves the URL's host, connects and (for https://) handshakes with
// the certificate and host name verified, all before `deadline`.
StatusOr<std::unique_ptr<Connection>> Open(const ClientRequest& request, const Url& url,
                                           std::chrono::steady_clock::time_point deadline) {
  auto c = std::make_unique<Connection>();
  beast::error_code ec;
  tcp::resolver resolver(c->ioc);
  auto endpoints = Resolve(resolver, request, url, ec);
  if (ec) {
    return UnavailableError("cannot resolve " + url.host + ": " + ec.message());
  }
  if (url.tls()) {
    ASSIGN_OR_RETURN(c->tls_ctx, ClientContext(request.ca_file));
    c->tls.emplace(c->ioc, *c->tls_ctx);
    // SSL_set_tlsext_host_name is a macro with a C cast; call what it expands to.
    if (SSL_ctrl(c->tls->native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                 const_cast<char*>(url.host.c_str())) != 1) {
      return InvalidArgumentError("cannot set SNI host name");
    }
    c->tls->set_verify_callback(asio::ssl::host_name_verification(url.host));
  } else {
    c->plain.emplace(c->ioc);
  }
  c->lowest().expires_at(deadline);
  c->lowest().async_connect(endpoints, [&](beast::error_code e, auto) { ec = e; });
  Run(*c);
  if (ec) {
    return Failure("connect", ec);
  }
  CloseOnExec(c->lowest());
  if (c->tls) {
    c->tls->async_handshake(asio::ssl::stream_base::client, [&](beast::error_code e) { ec = e; });
    Run(*c);
    if (ec) {
      return Failure("TLS handshake", ec);
    }
  }
  return c;
}

// RoundTrip writes `req` and reads the whole response before `deadline`.
// `*reusable` tells whether the connection may carry another request.
template <class Stream>
Status RoundTrip(Connection& c, Stream& stream, bhttp::request<bhttp::string_body>& req,
                 bhttp::response_parser<bhttp::string_body>& parser,
                 std::chrono::steady_clock::time_point deadline, bool* reusable) {
  Status result = OkStatus();
  beast::flat_buffer buffer;
  c.lowest().expires_at(deadline);
  bhttp::async_write(stream, req, [&](beast::error_code e, size_t) {
    if (e) {
      result = Failure("write", e);
      return;
    }
    bhttp::async_read(stream, buffer, parser, [&](beast::error_code e2, size_t) {
      if (e2) {
        result = Failure("read", e2);
      }
    });
  });
  Run(c);
  *reusable = result.ok() && parser.is_done() && parser.keep_alive() && buffer.size() == 0;
  return result;
}

// The pool of idle keep-alive connections, per scheme, host, port and CA
// file. A connection idle for longer than kMaxIdle, or that the server has
// closed (its socket is readable while no request is in flight: EOF, a TLS
// close_notify, or stray bytes), is not used again.
//
// At most one connection to a place is being opened at a time. A burst of
// requests to a place with no idle connection (a mount's parallel reads at
// start) would otherwise open one connection each, all at once: a storm of
// full TLS handshakes, which on loopback cost far more than the requests.
// Instead the others wait for that connection, or for one coming back, and
// the pool grows one connection at a time while requests wait.
class ConnectionPool {
 public:
  static constexpr auto kMaxIdle = std::chrono::seconds(30);
  static constexpr size_t kMaxPerKey = 8;
  static constexpr size_t kMaxTotal = 64;

  struct Lease {
    std::unique_ptr<Connection> connection;  // an idle one, or null: open one
    bool opener = false;                     // then call Opened(key) once opened
  };

  // Acquire returns an idle connection to `key`, or none when the caller is
  // to open one: because nobody else is opening one, or because `deadline`
  // passed while waiting.
  Lease Acquire(const std::string& key, std::chrono::steady_clock::time_point deadline) {
    std::vector<std::unique_ptr<Connection>> dropped;  // closed after the lock is released
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      if (std::unique_ptr<Connection> c = TakeLocked(key, &dropped)) {
        return {std::move(c), false};
      }
      if (opening_.insert(key).second) {
        return {nullptr, true};
      }
      ++waiting_;
      const std::cv_status woke = cv_.wait_until(lock, deadline);
      --waiting_;
      if (woke == std::cv_status::timeout) {
        return {nullptr, false};
      }
    }
  }

  size_t waiting() {
    std::lock_guard<std::mutex> lock(mu_);
    return waiting_;
  }

  // Opened ends the opening that Acquire handed to the caller, whether the
  // connection could be opened or not.
  void Opened(const std::string& key) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      opening_.erase(key);
    }
    cv_.notify_all();
  }

  void Give(const std::string& key, std::unique_ptr<Connection> c) {
    c->lowest().expires_never();
    const auto now = std::chrono::steady_clock::now();
    c->idle_since = now;
    std::vector<std::unique_ptr<Connection>> dropped;  // closed after the lock is released
    {
      std::lock_guard<std::mutex> lock(mu_);
      // Connections to places no longer asked for would otherwise hold
      // their slots for ever, and the pool would stop keeping any.
      EvictLocked(now, &dropped);
      auto& list = idle_[key];
      if (list.size() >= kMaxPerKey) {
        dropped.push_back(std::move(c));
        return;
      }
      if (total_ >= kMaxTotal) {
        EvictOldestLocked(&dropped);
      }
      list.push_back(std::move(c));
      ++total_;
    }
    cv_.notify_all();
  }

  size_t idle() {
    std::lock_guard<std::mutex> lock(mu_);
    return total_;
  }

 private:
  std::unique_ptr<Connection> TakeLocked(const std::string& key,
                                         std::vector<std::unique_ptr<Connection>>* dropped) {
    auto found = idle_.find(key);
    if (found == idle_.end()) {
      return nullptr;
    }
    auto& list = found->second;
    const auto now = std::chrono::steady_clock::now();
    while (!list.empty()) {
      std::unique_ptr<Connection> c = std::move(list.back());
      list.pop_back();
      --total_;
      if (now - c->idle_since < kMaxIdle && Quiet(*c)) {
        return c;
      }
      dropped->push_back(std::move(c));
    }
    return nullptr;
  }

  // Drops every connection idle for kMaxIdle or longer, whatever its place.
  void EvictLocked(std::chrono::steady_clock::time_point now,
                   std::vector<std::unique_ptr<Connection>>* dropped) {
    for (auto it = idle_.begin(); it != idle_.end();) {
      auto& list = it->second;
      for (auto c = list.begin(); c != list.end();) {
        if (now - (*c)->idle_since >= kMaxIdle) {
          dropped->push_back(std::move(*c));
          c = list.erase(c);
          --total_;
        } else {
          ++c;
        }
      }
      it = list.empty() ? idle_.erase(it) : std::next(it);
    }
  }

  // Drops the connection that has been idle longest.
  void EvictOldestLocked(std::vector<std::unique_ptr<Connection>>* dropped) {
    std::vector<std::unique_ptr<Connection>>* oldest_list = nullptr;
    size_t oldest_index = 0;
    for (auto& [key, list] : idle_) {
      for (size_t i = 0; i < list.size(); ++i) {
        if (oldest_list == nullptr ||
            list[i]->idle_since < (*oldest_list)[oldest_index]->idle_since) {
          oldest_list = &list;
          oldest_index = i;
        }
      }
    }
    if (oldest_list != nullptr) {
      dropped->push_back(std::move((*oldest_list)[oldest_index]));
      oldest_list->erase(oldest_list->begin() + static_cast<std::ptrdiff_t>(oldest_index));
      --total_;
    }
  }

  static bool Quiet(Connection& c) {
    pollfd p{c.lowest().socket().native_handle(), POLLIN, 0};
    return ::poll(&p, 1, 0) == 0;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::vector<std::unique_ptr<Connection>>> idle_;  // GUARDED_BY(mu_)
  std::set<std::string> opening_;                                         // GUARDED_BY(mu_)
  size_t total_ = 0;                                                      // GUARDED_BY(mu_)
  size_t waiting_ = 0;  // GUARDED_BY(mu_): Acquire calls waiting for an opening
};

ConnectionPool& Pool() {
  static auto* pool = new ConnectionPool();  // leaked on purpose: used until exit
  return *pool;
}

// WithStream resolves the URL's host and calls
// `fn(ioc, stream, endpoints) -> StatusOr<http::Response>` with an
// unconnected stream of its own: plain TCP for http://, TLS 1.2+ with the
// certificate and host name verified for https://.
template <class Fn>
StatusOr<http::Response> WithStream(const ClientRequest& request, const Url& url, Fn&& fn) {
  asio::io_context ioc;
  beast::error_code ec;
  tcp::resolver resolver(ioc);
  auto endpoints = Resolve(resolver, request, url, ec);
  if (ec) {
    return UnavailableError("cannot resolve " + url.host + ": " + ec.message());
  }
  if (!url.tls()) {
    beast::tcp_stream stream(ioc);
    return fn(ioc, stream, endpoints);
  }
  ASSIGN_OR_RETURN(std::shared_ptr<asio::ssl::context> ctx, ClientContext(request.ca_file));
  beast::ssl_stream<beast::tcp_stream> stream(ioc, *ctx);
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

// StreamExchange connects, sends the request and streams the response; see
// StreamRequest.
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
  if (ok) {
    CloseOnExec(beast::get_lowest_layer(stream));
  }
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

size_t ConnectionWaitersForTesting() {
  return Pool().waiting();
}

StatusOr<http::Response> SendRequest(const ClientRequest& request) {
  // SECURITY: the URL is read by the parser the server's URL checks use
  // (http/url.h), so the host a check approved is the host connected to.
  ASSIGN_OR_RETURN(Url url, http::ParseUrl(request.url));
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(request.timeout_seconds);
  const std::string key = url.scheme + "|" + url.host + "|" + std::to_string(url.port) + "|" +
                          request.ca_file + "|" + request.connect_address;
  // A request that changes nothing may be sent again when a kept-alive
  // connection turns out to have been closed under it before any byte of the
  // response came back.
  const bool replayable =
      request.method == "GET" || request.method == "HEAD" || request.method == "OPTIONS";
  for (int attempt = 0;; ++attempt) {
    std::unique_ptr<Connection> c;
    bool opener = false;
    if (request.keep_alive && attempt == 0) {
      ConnectionPool::Lease lease = Pool().Acquire(key, deadline);
      c = std::move(lease.connection);
      opener = lease.opener;
    }
    const bool reused = c != nullptr;
    if (!reused) {
      StatusOr<std::unique_ptr<Connection>> opened = Open(request, url, deadline);
      if (opener) {
        Pool().Opened(key);
      }
      if (!opened.ok()) {
        return opened.status();
      }
      c = std::move(opened).value();
    }
    bhttp::request<bhttp::string_body> req = MakeRequest(request, url);
    if (!request.keep_alive) {
      req.keep_alive(false);
    }
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(request.max_response_bytes);
    bool reusable = false;
    Status sent = c->tls ? RoundTrip(*c, *c->tls, req, parser, deadline, &reusable)
                         : RoundTrip(*c, *c->plain, req, parser, deadline, &reusable);
    if (!sent.ok()) {
      if (reused && replayable && !parser.got_some() && sent.code() == StatusCode::kUnavailable) {
        continue;
      }
      return sent;
    }
    auto& res = parser.get();
    http::Response out = StatusAndHeaders(res.base());
    out.body = std::move(res.body());
    if (reusable && request.keep_alive) {
      Pool().Give(key, std::move(c));
    }
    return out;
  }
}

StatusOr<http::Response> StreamRequest(const ClientRequest& request,
                                       const std::function<bool(std::string_view)>& on_data,
                                       const std::atomic<bool>* cancel, int poll_ms) {
  ASSIGN_OR_RETURN(Url url, http::ParseUrl(request.url));
  auto exchange = [&](asio::io_context& ioc, auto& stream,
                      const tcp::resolver::results_type& endpoints) -> StatusOr<http::Response> {
    Poller poller(ioc, cancel, poll_ms);
    return StreamExchange(stream, endpoints, request, url, on_data, poller);
  };
  return WithStream(request, url, exchange);
}

}  // namespace coffer::net
