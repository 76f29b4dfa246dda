#include "net/http_server.h"

#include <atomic>
#include <chrono>
#include <thread>
#include <type_traits>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "common/log.h"
#include "common/strings.h"

namespace coffer::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

std::vector<std::unique_ptr<asio::io_context>> MakeContexts(int n) {
  std::vector<std::unique_ptr<asio::io_context>> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(std::make_unique<asio::io_context>(1));
  }
  return out;
}

}  // namespace

class HttpServer::Impl {
 public:
  Impl(ServerOptions options, Handler handler, HeadHook head_hook, FastPath fast_path)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        head_hook_(std::move(head_hook)),
        fast_path_(std::move(fast_path)),
        ssl_ctx_(asio::ssl::context::tls_server),
        pool_(static_cast<size_t>(options_.worker_threads)),
        iocs_(MakeContexts(options_.io_threads)) {}

  Status Init();
  void Start();
  void Stop();
  uint16_t port() const { return port_; }

  const ServerOptions& options() const { return options_; }
  asio::ssl::context& ssl_ctx() { return ssl_ctx_; }
  asio::thread_pool& pool() { return pool_; }
  std::atomic<size_t>& queued() { return queued_; }

  http::Response RunHandler(http::Request& request) {
    try {
      return handler_(request);
    } catch (const std::exception& e) {
      // Third-party code threw inside a handler; the request fails, the
      // server keeps serving.
      COFFER_LOG(kError) << "handler raised an exception: " << e.what();
      return http::ErrorResponse(InternalError("internal error"));
    }
  }
  std::optional<http::Response> RunHeadHook(const http::Request& request) {
    return head_hook_ ? head_hook_(request) : std::nullopt;
  }
  std::optional<http::Response> RunFastPath(http::Request& request) {
    if (!fast_path_) {
      return std::nullopt;
    }
    try {
      return fast_path_(request);
    } catch (const std::exception& e) {
      COFFER_LOG(kError) << "fast path raised an exception: " << e.what();
      return http::ErrorResponse(InternalError("internal error"));
    }
  }

 private:
  Status Listen();
  void DoAccept(tcp::acceptor& acceptor);

  const ServerOptions options_;
  Handler handler_;
  HeadHook head_hook_;
  FastPath fast_path_;
  asio::ssl::context ssl_ctx_;
  asio::thread_pool pool_;
  // One single-threaded io_context per I/O thread, nginx-style: a
  // connection lives on one thread, so its handlers need no strand and
  // completions never wake another thread.
  std::vector<std::unique_ptr<asio::io_context>> iocs_;
  // Keeps each context's run() going while it has no connection yet.
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::atomic<size_t> next_ioc_{0};
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors_;
  std::vector<std::thread> threads_;
  std::atomic<size_t> queued_{0};
  std::atomic<bool> stopped_{false};
  uint16_t port_ = 0;
};

namespace {

// One connection. `Stream` is a TLS stream, or a plain TCP stream for
// loopback-only listeners (ServerOptions::tls).
template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;
  using std::enable_shared_from_this<Session<Stream>>::shared_from_this;

 public:
  Session(tcp::socket&& socket, HttpServer::Impl& server)
      : stream_(MakeStream(std::move(socket), server)), server_(server) {
    beast::error_code ec;
    auto ep = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
    if (!ec) {
      remote_ = ep.address().to_string();
    }
  }

  void Run() {
    asio::dispatch(stream_.get_executor(),
                   beast::bind_front_handler(&Session::OnRun, shared_from_this()));
  }

 private:
  const ServerOptions& opts() const { return server_.options(); }

  static Stream MakeStream(tcp::socket&& socket, HttpServer::Impl& server) {
    if constexpr (kTls) {
      return Stream(std::move(socket), server.ssl_ctx());
    } else {
      return Stream(std::move(socket));
    }
  }

  void OnRun() {
    if constexpr (kTls) {
      beast::get_lowest_layer(stream_).expires_after(
          std::chrono::seconds(opts().read_timeout_seconds));
      stream_.async_handshake(asio::ssl::stream_base::server,
                              beast::bind_front_handler(&Session::OnHandshake, shared_from_this()));
    } else {
      DoRead();
    }
  }

  void OnHandshake(beast::error_code ec) {
    if (ec) {
      return;  // handshake failures are the client's; nothing to answer
    }
    if constexpr (kTls) {
      const char* v = SSL_get_version(stream_.native_handle());
      tls_version_ = v != nullptr ? v : "";
    }
    DoRead();
  }

  static bool PeerClosed(beast::error_code ec) {
    return ec == bhttp::error::end_of_stream || ec == beast::error::timeout ||
           ec == asio::ssl::error::stream_truncated;
  }

  void DoRead() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(opts().max_header_bytes));
    parser_->body_limit(opts().max_body_bytes);
    beast::get_lowest_layer(stream_).expires_after(
        std::chrono::seconds(opts().read_timeout_seconds));
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             beast::bind_front_handler(&Session::OnHeader, shared_from_this()));
  }

  void OnHeader(beast::error_code ec, size_t) {
    if (PeerClosed(ec)) {
      return Close();
    }
    if (ec == bhttp::error::body_limit) {
      // A Content-Length over the limit is refused before any body is read.
      return SendError(413, "RequestEntityTooLarge",
                       "request body exceeds " + std::to_string(opts().max_body_bytes) + " bytes",
                       true);
    }
    if (ec == bhttp::error::header_limit) {
      return SendError(431, "RequestHeaderFieldsTooLarge", "request headers are too large", true);
    }
    if (ec) {
      return SendError(400, "BadRequest", "malformed HTTP request", true);
    }
    const auto& msg = parser_->get();
    request_ = http::Request();
    request_.method = std::string(msg.method_string());
    request_.target = std::string(msg.target());
    request_.remote_address = remote_;
    request_.tls_version = tls_version_;
    for (const auto& field : msg) {
      std::string name = AsciiLower(std::string(field.name_string()));
      request_.headers.emplace(std::move(name), std::string(field.value()));
    }
    request_.host = std::string(request_.Header("host"));
    keep_alive_ = msg.keep_alive();
    Status parsed = http::ParseTarget(request_.target, request_);
    if (!parsed.ok()) {
      return Send(http::ErrorResponse(parsed), true);
    }
    bool has_body =
        parser_->chunked() || (parser_->content_length() && *parser_->content_length() > 0);
    if (auto early = server_.RunHeadHook(request_)) {
      // SECURITY: the body of an unauthenticated request is never read. If
      // one was announced, the connection cannot be reused.
      return Send(std::move(*early), has_body);
    }
    if (parser_->is_done()) {
      return Dispatch();
    }
    bhttp::async_read(stream_, buffer_, *parser_,
                      beast::bind_front_handler(&Session::OnBody, shared_from_this()));
  }

  void OnBody(beast::error_code ec, size_t) {
    if (ec == bhttp::error::body_limit) {
      return SendError(413, "RequestEntityTooLarge",
                       "request body exceeds " + std::to_string(opts().max_body_bytes) + " bytes",
                       true);
    }
    if (PeerClosed(ec)) {
      return Close();
    }
    if (ec) {
      return SendError(400, "BadRequest", "malformed HTTP request body", true);
    }
    Dispatch();
  }

  void Dispatch() {
    request_.body = std::move(parser_->get().body());
    if (auto fast = server_.RunFastPath(request_)) {
      return Send(std::move(*fast), false);
    }
    if (server_.queued().fetch_add(1) >= opts().max_queued_requests) {
      server_.queued().fetch_sub(1);
      return SendError(503, "ServiceUnavailable", "server is overloaded, retry later", false);
    }
    // Reads of the next request wait until this one is answered, so there is
    // at most one request in flight per connection.
    beast::get_lowest_layer(stream_).expires_never();
    asio::post(server_.pool(), [self = shared_from_this()] {
      http::Response response = self->server_.RunHandler(self->request_);
      self->server_.queued().fetch_sub(1);
      asio::post(self->stream_.get_executor(),
                 [self, r = std::move(response)]() mutable { self->Send(std::move(r), false); });
    });
  }

  void SendError(int status, const char* code, const std::string& message, bool close) {
    Send(http::ErrorResponse(status, code, message), close);
  }

  void Send(http::Response response, bool close) {
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>();
    res->result(static_cast<unsigned>(response.status));
    res->version(11);
    for (auto& [k, v] : response.headers) {
      res->set(k, v);
    }
    res->body() = std::move(response.body);
    close_after_write_ = close || !keep_alive_;
    res->keep_alive(!close_after_write_);
    res->prepare_payload();
    response_ = res;
    beast::get_lowest_layer(stream_).expires_after(
        std::chrono::seconds(opts().read_timeout_seconds));
    bhttp::async_write(stream_, *res,
                       beast::bind_front_handler(&Session::OnWrite, shared_from_this()));
  }

  void OnWrite(beast::error_code ec, size_t) {
    response_.reset();
    if (ec) {
      return;
    }
    if (close_after_write_) {
      return Close();
    }
    DoRead();
  }

  void Close() {
    if constexpr (kTls) {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(5));
      stream_.async_shutdown([self = shared_from_this()](beast::error_code) {});
    } else {
      beast::error_code ec;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    }
  }

  Stream stream_;
  HttpServer::Impl& server_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::shared_ptr<void> response_;
  http::Request request_;
  std::string remote_;
  std::string tls_version_;
  bool keep_alive_ = true;
  bool close_after_write_ = false;
};

}  // namespace

Status HttpServer::Impl::Init() {
  beast::error_code ec;
  port_ = options_.port;
  if (!options_.tls) {
    // SECURITY: plain HTTP is for loopback only (tokens travel on it).
    for (const auto& address : options_.addresses) {
      auto addr = asio::ip::make_address(address, ec);
      if (ec || !addr.is_loopback()) {
        return InvalidArgumentError("plain HTTP may listen on loopback addresses only, not '" +
                                    address + "'");
      }
    }
    return Listen();
  }
  ssl_ctx_.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
  // SECURITY: TLS 1.2 is the floor, as for Key Vault itself.
  SSL_CTX_set_min_proto_version(ssl_ctx_.native_handle(), TLS1_2_VERSION);
  ssl_ctx_.use_certificate_chain(asio::buffer(options_.certificate_chain_pem), ec);
  if (ec) {
    return InvalidArgumentError("cannot load TLS certificate chain: " + ec.message());
  }
  ssl_ctx_.use_private_key(asio::buffer(options_.private_key_pem), asio::ssl::context::pem, ec);
  if (ec) {
    return InvalidArgumentError("cannot load TLS private key: " + ec.message());
  }
  return Listen();
}

Status HttpServer::Impl::Listen() {
  beast::error_code ec;
  for (const auto& address : options_.addresses) {
    auto addr = asio::ip::make_address(address, ec);
    if (ec) {
      return InvalidArgumentError("invalid listen address '" + address + "'");
    }
    auto acceptor = std::make_unique<tcp::acceptor>(*iocs_.front());
    tcp::endpoint ep(addr, port_);
    acceptor->open(ep.protocol(), ec);
    if (!ec && addr.is_v6()) {
      acceptor->set_option(asio::ip::v6_only(true), ec);
    }
    if (!ec) {
      acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    }
    if (!ec) {
      acceptor->bind(ep, ec);
    }
    if (!ec) {
      acceptor->listen(asio::socket_base::max_listen_connections, ec);
    }
    if (ec) {
      return UnavailableError("cannot listen on " + address + ":" + std::to_string(port_) + ": " +
                              ec.message());
    }
    // With port 0 the first address picks the port and the others follow.
    port_ = acceptor->local_endpoint().port();
    acceptors_.push_back(std::move(acceptor));
  }
  return OkStatus();
}

void HttpServer::Impl::DoAccept(tcp::acceptor& acceptor) {
  asio::io_context& target = *iocs_[next_ioc_.fetch_add(1) % iocs_.size()];
  acceptor.async_accept(target, [this, &acceptor](beast::error_code ec, tcp::socket socket) {
    if (stopped_) {
      return;
    }
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      if (options_.tls) {
        std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(std::move(socket), *this)
            ->Run();
      } else {
        std::make_shared<Session<beast::tcp_stream>>(std::move(socket), *this)->Run();
      }
    }
    DoAccept(acceptor);
  });
}

void HttpServer::Impl::Start() {
  for (auto& a : acceptors_) {
    DoAccept(*a);
  }
  for (auto& ioc : iocs_) {
    work_.push_back(asio::make_work_guard(*ioc));
  }
  for (int i = 0; i < options_.io_threads; ++i) {
    threads_.emplace_back([this, i] { iocs_[static_cast<size_t>(i)]->run(); });
  }
}

void HttpServer::Impl::Stop() {
  if (stopped_.exchange(true)) {
    return;
  }
  for (auto& w : work_) {
    w.reset();
  }
  for (auto& ioc : iocs_) {
    ioc->stop();
  }
  for (auto& t : threads_) {
    t.join();
  }
  pool_.join();
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  impl_->Stop();
}

StatusOr<std::unique_ptr<HttpServer>> HttpServer::Create(ServerOptions options, Handler handler,
                                                         HeadHook head_hook, FastPath fast_path) {
  if (options.io_threads < 1 || options.worker_threads < 1) {
    return InvalidArgumentError("thread counts must be at least 1");
  }
  auto impl = std::make_unique<Impl>(std::move(options), std::move(handler), std::move(head_hook),
                                     std::move(fast_path));
  RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

uint16_t HttpServer::port() const {
  return impl_->port();
}
void HttpServer::Start() {
  impl_->Start();
}
void HttpServer::Stop() {
  impl_->Stop();
}

}  // namespace coffer::net
