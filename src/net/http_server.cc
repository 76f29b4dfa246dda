#include "net/http_server.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <list>
#include <mutex>
#include <thread>
#include <type_traits>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "common/log.h"
#include "common/strings.h"

#include <sys/resource.h>

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

// StreamSink is what a stream's writer and the server see of a session that
// streams its response.
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  // Sends what the writer queued, or acts on its Close or overflow. Runs on
  // the session's I/O thread.
  virtual void Drain() = 0;
  // Closes the socket at once. Only while no I/O thread runs (Stop).
  virtual void CloseNow() = 0;
};

// StreamChannel is the writer handed to the application. It holds the queued
// chunks; the session takes them on its I/O thread. It refers to the session
// weakly, and once detached (session gone, server stopping) it never touches
// the session's executor again, so it may outlive both.
class StreamChannel final : public http::StreamWriter {
 public:
  struct Batch {
    std::string bytes;  // framed chunks, ready for the wire
    bool finish = false;
  };

  StreamChannel(asio::any_io_executor executor, std::weak_ptr<StreamSink> sink, size_t max_backlog)
      : executor_(std::move(executor)), sink_(std::move(sink)), max_backlog_(max_backlog) {}

  bool Write(std::string data) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ != State::kOpen) {
      return false;
    }
    if (data.empty()) {
      return true;
    }
    char size_line[24];
    int n = std::snprintf(size_line, sizeof(size_line), "%zx\r\n", data.size());
    size_t framed = static_cast<size_t>(n) + data.size() + 2;
    if (pending_.size() + in_flight_ + framed > max_backlog_) {
      // A consumer this far behind is disconnected, not buffered for.
      EndLocked(State::kAborted);
      PostLocked();
      return false;
    }
    pending_.append(size_line, static_cast<size_t>(n)).append(data).append("\r\n");
    if (!drain_posted_) {
      drain_posted_ = true;
      PostLocked();
    }
    return true;
  }

  bool closed() const override { return closed_.load(std::memory_order_acquire); }

  void Close() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ != State::kOpen) {
      return;
    }
    EndLocked(State::kClosing);
    PostLocked();
  }

  // For the session, on its I/O thread.
  bool aborted() const {
    std::lock_guard<std::mutex> lock(mu_);
    return state_ == State::kAborted;
  }
  // Take moves the queued chunks out; they count against the backlog until
  // Sent. `finish` asks for the terminating chunk after them.
  Batch Take() {
    std::lock_guard<std::mutex> lock(mu_);
    Batch batch;
    batch.bytes.swap(pending_);
    batch.finish = state_ == State::kClosing;
    in_flight_ = batch.bytes.size();
    drain_posted_ = false;
    return batch;
  }
  void Sent() {
    std::lock_guard<std::mutex> lock(mu_);
    in_flight_ = 0;
  }
  // Abort marks the stream closed: the peer went away or a write failed.
  void Abort() {
    std::lock_guard<std::mutex> lock(mu_);
    EndLocked(State::kAborted);
  }
  // Detach is Abort, and the session is never posted to again.
  void Detach() {
    std::lock_guard<std::mutex> lock(mu_);
    EndLocked(State::kAborted);
    detached_ = true;
  }

 private:
  enum class State { kOpen, kClosing, kAborted };

  void EndLocked(State state) {
    if (state_ == State::kAborted) {
      return;
    }
    state_ = state;
    closed_.store(true, std::memory_order_release);
    if (state == State::kAborted) {
      std::string().swap(pending_);
    }
  }
  void PostLocked() {
    if (detached_) {
      return;
    }
    asio::post(executor_, [sink = sink_] {
      if (auto s = sink.lock()) {
        s->Drain();
      }
    });
  }

  const asio::any_io_executor executor_;
  const std::weak_ptr<StreamSink> sink_;
  const size_t max_backlog_;
  std::atomic<bool> closed_{false};
  mutable std::mutex mu_;
  // Guarded by mu_.
  State state_ = State::kOpen;
  std::string pending_;
  size_t in_flight_ = 0;
  bool drain_posted_ = false;  // a Drain is coming; no need to post another
  bool detached_ = false;
};

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

  using StreamRegistration = std::list<StreamSink*>::iterator;
  StreamRegistration RegisterStream(StreamSink* sink) {
    std::lock_guard<std::mutex> lock(streams_mu_);
    return streams_.insert(streams_.end(), sink);
  }
  void UnregisterStream(StreamRegistration registration) {
    std::lock_guard<std::mutex> lock(streams_mu_);
    streams_.erase(registration);
  }

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
  // Sessions streaming a response, for Stop to close. Declared before iocs_:
  // sessions left in a stopped context unregister when it is destroyed.
  std::mutex streams_mu_;
  std::list<StreamSink*> streams_;  // guarded by streams_mu_
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
class Session final : public std::enable_shared_from_this<Session<Stream>>, public StreamSink {
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;
  using std::enable_shared_from_this<Session<Stream>>::shared_from_this;
  using std::enable_shared_from_this<Session<Stream>>::weak_from_this;

 public:
  Session(tcp::socket&& socket, HttpServer::Impl& server)
      : stream_(MakeStream(std::move(socket), server)), server_(server) {
    beast::error_code ec;
    auto ep = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
    if (!ec) {
      remote_ = ep.address().to_string();
    }
  }

  ~Session() override {
    if (channel_) {
      channel_->Detach();
      server_.UnregisterStream(registration_);
    }
  }

  void Run() {
    asio::dispatch(stream_.get_executor(),
                   beast::bind_front_handler(&Session::OnRun, shared_from_this()));
  }

  void Drain() override {
    if (aborted_) {
      return;
    }
    if (channel_->aborted()) {
      return Abort();
    }
    if (writing_ || finishing_) {
      return;  // OnChunks drains again
    }
    StreamChannel::Batch batch = channel_->Take();
    last_batch_ = batch.finish;
    if (batch.finish) {
      batch.bytes.append("0\r\n\r\n");
    }
    if (batch.bytes.empty()) {
      return;
    }
    out_ = std::move(batch.bytes);
    writing_ = true;
    asio::async_write(stream_, asio::buffer(out_),
                      beast::bind_front_handler(&Session::OnChunks, shared_from_this()));
  }

  void CloseNow() override {
    aborted_ = true;
    channel_->Detach();
    beast::get_lowest_layer(stream_).close();
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
    if (response.stream) {
      return SendStream(std::move(response));
    }
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

  // The head of a streamed response, alive while it is written.
  struct StreamHead {
    bhttp::response<bhttp::empty_body> message;
    std::optional<bhttp::response_serializer<bhttp::empty_body>> serializer;
  };

  void SendStream(http::Response response) {
    auto start = std::move(response.stream);
    // The request is answered for good; an idle stream should hold nothing
    // it no longer needs.
    request_ = http::Request();
    parser_.reset();
    buffer_.clear();
    buffer_.shrink_to_fit();
    channel_ = std::make_shared<StreamChannel>(stream_.get_executor(),
                                               std::weak_ptr<StreamSink>(weak_from_this()),
                                               opts().max_stream_backlog_bytes);
    registration_ = server_.RegisterStream(this);
    auto head = std::make_shared<StreamHead>();
    head->message.result(static_cast<unsigned>(response.status));
    head->message.version(11);
    for (auto& [k, v] : response.headers) {
      head->message.set(k, v);
    }
    head->message.erase(bhttp::field::content_length);
    head->message.chunked(true);
    head->message.keep_alive(false);
    head->serializer.emplace(head->message);
    response_ = head;
    // Streams have no deadline: a watcher may rightly sit idle for hours, and
    // the application sends its own heartbeats.
    beast::get_lowest_layer(stream_).expires_never();
    writing_ = true;
    bhttp::async_write_header(
        stream_, *head->serializer,
        beast::bind_front_handler(&Session::OnStreamHead, shared_from_this()));
    if (!response.body.empty()) {
      channel_->Write(std::move(response.body));
    }
    start(channel_);
  }

  void OnStreamHead(beast::error_code ec, size_t) {
    response_.reset();
    writing_ = false;
    if (ec || aborted_) {
      return Abort();
    }
    // A streaming client sends nothing more, so the socket becoming readable
    // (EOF, reset, stray bytes) means it is gone. Waiting on the socket rather
    // than reading keeps the TLS layer out of it: no read buffer while idle,
    // and no read in progress when the response ends with a close_notify.
    beast::get_lowest_layer(stream_).socket().async_wait(
        tcp::socket::wait_read, beast::bind_front_handler(&Session::OnProbe, shared_from_this()));
    Drain();
  }

  void OnProbe(beast::error_code) {
    if (aborted_) {
      return;
    }
    if (finishing_) {
      return Close();  // the wait was cancelled to end the response cleanly
    }
    // End of stream, an error, or bytes a streaming client has no reason to
    // send: the stream is over either way.
    Abort();
  }

  void OnChunks(beast::error_code ec, size_t) {
    writing_ = false;
    std::string().swap(out_);
    channel_->Sent();
    if (ec) {
      return Abort();
    }
    if (last_batch_) {
      // The terminating chunk is out. Cancel the pending wait; OnProbe then
      // closes the connection (with a TLS close_notify).
      finishing_ = true;
      beast::get_lowest_layer(stream_).cancel();
      return;
    }
    Drain();
  }

  // Abort drops the connection at once; pending operations complete with
  // errors and release the session.
  void Abort() {
    if (aborted_) {
      return;
    }
    aborted_ = true;
    channel_->Abort();
    beast::get_lowest_layer(stream_).close();
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
  // Set once the response is streamed.
  std::shared_ptr<StreamChannel> channel_;
  HttpServer::Impl::StreamRegistration registration_;
  std::string out_;  // chunks being written
  bool writing_ = false;
  bool last_batch_ = false;  // out_ ends with the terminating chunk
  bool finishing_ = false;
  bool aborted_ = false;
};

}  // namespace

Status HttpServer::Impl::Init() {
  // Each connection, idle streams included, is a file descriptor; the
  // default soft limit (often 1,024) is far below what a server holds.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &files) != 0) {
      COFFER_LOG(kWarning) << "cannot raise the open-file limit to " << files.rlim_max;
    }
  }
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
  // Asio already sets SSL_MODE_RELEASE_BUFFERS on each connection, so idle
  // streams hold no OpenSSL record buffers. What remains per TLS connection is
  // mostly Asio's own (2 x 17 KiB in ssl::stream plus a 2 x 17 KiB BIO pair).
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
  {
    // No I/O thread runs now, so sockets may be closed from here: peers of
    // open streams see the end at once, and their writers report closed().
    std::lock_guard<std::mutex> lock(streams_mu_);
    for (StreamSink* stream : streams_) {
      stream->CloseNow();
    }
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
