#include "net/http_server.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
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
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/log.h"
#include "common/strings.h"
#include "net/connection_limits.h"

#include <sys/resource.h>
#include <sys/socket.h>

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

// StreamSink is what a stream's writer and the server see of a connection
// that streams a response.
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  // Sends what the writer queued, or acts on its Close or overflow. Runs on
  // the connection's I/O thread.
  virtual void Drain() = 0;
  // Closes the socket at once. Only while no I/O thread runs (Stop).
  virtual void CloseNow() = 0;
};

// StreamChannel is the writer handed to the application. It holds the queued
// chunks; the connection takes them on its I/O thread. It refers to the
// connection weakly, and once detached (connection gone, server stopping) it
// never touches the connection's executor again, so it may outlive both.
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

  // For the connection, on its I/O thread.
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
  // Detach is Abort, and the connection is never posted to again.
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
        pool_(static_cast<size_t>(options_.worker_threads)),
        limits_(options_.max_connections, options_.max_connections_per_address),
        iocs_(MakeContexts(options_.io_threads)) {}

  Status Init();
  void Start();
  void Stop();
  uint16_t port() const { return port_; }

  const ServerOptions& options() const { return options_; }
  // The TLS context new connections get; a connection keeps the one it
  // was made with (SetCertificate replaces it for later ones only).
  std::shared_ptr<asio::ssl::context> ssl_ctx() {
    std::lock_guard<std::mutex> lock(ssl_mu_);
    return ssl_ctx_;
  }
  Status SetCertificate(const std::string& chain_pem, const std::string& key_pem);
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
  // The body limit of one request: the route's, when it sets a lower one.
  size_t BodyLimit(const http::Request& request) const {
    size_t limit = options_.body_limit ? options_.body_limit(request) : 0;
    return limit != 0 && limit < options_.max_body_bytes ? limit : options_.max_body_bytes;
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
  void Refused(const std::string& address);

  const ServerOptions options_;
  Handler handler_;
  HeadHook head_hook_;
  FastPath fast_path_;
  std::mutex ssl_mu_;
  std::shared_ptr<asio::ssl::context> ssl_ctx_;  // GUARDED_BY(ssl_mu_)
  // Contexts replaced by SetCertificate, kept for the life of the server
  // (replacements are rare: an operator's or a renewal's).
  std::vector<std::shared_ptr<asio::ssl::context>> retired_ctx_;  // GUARDED_BY(ssl_mu_)
  asio::thread_pool pool_;
  // Counts every open connection, streams included. Declared before iocs_:
  // connections left in a stopped context release their count when it is
  // destroyed.
  ConnectionLimits limits_;
  std::atomic<int64_t> last_refusal_log_{-60};  // steady-clock seconds
  // Connections streaming a response, for Stop to close. Declared before iocs_:
  // connections left in a stopped context unregister when it is destroyed.
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

struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
using SslPtr = std::unique_ptr<SSL, SslFree>;

// SendNow sends what the socket takes at once. It looks the descriptor up at
// each call, so once the socket is closed it fails (EBADF) rather than write
// to whatever connection reuses the number. MSG_NOSIGNAL: a peer that went
// away must not raise SIGPIPE.
ssize_t SendNow(tcp::socket& socket, const void* data, size_t size) {
  return ::send(socket.native_handle(), data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
}

// TryLater: the socket is full (or empty), or a signal came first.
bool TryLater(int error) {
  return error == EAGAIN || error == EWOULDBLOCK || error == EINTR;
}

// A BIO over an Asio socket, for OpenSSL to read and write it directly and
// never block. (OpenSSL's own socket BIO writes with write(2), which raises
// SIGPIPE.) The socket must outlive the BIO.
tcp::socket& BioSocket(BIO* bio) {
  return *static_cast<tcp::socket*>(BIO_get_data(bio));
}

int SocketBioWrite(BIO* bio, const char* data, int size) {
  BIO_clear_retry_flags(bio);
  ssize_t n = SendNow(BioSocket(bio), data, static_cast<size_t>(size));
  if (n < 0 && TryLater(errno)) {
    BIO_set_retry_write(bio);
  }
  return static_cast<int>(n);
}

int SocketBioRead(BIO* bio, char* data, int size) {
  BIO_clear_retry_flags(bio);
  ssize_t n = ::recv(BioSocket(bio).native_handle(), data, static_cast<size_t>(size), MSG_DONTWAIT);
  if (n < 0 && TryLater(errno)) {
    BIO_set_retry_read(bio);
  }
  return static_cast<int>(n);
}

long SocketBioCtrl(BIO*, int cmd, long, void*) {
  // Nothing is buffered here, so a flush (after each record) has nothing to do.
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

// NewSocketBio returns a BIO over `socket`, or null if OpenSSL is out of memory.
BIO* NewSocketBio(tcp::socket& socket) {
  static BIO_METHOD* const method = []() -> BIO_METHOD* {
    int index = BIO_get_new_index();
    BIO_METHOD* m =
        index == -1 ? nullptr : BIO_meth_new(index | BIO_TYPE_SOURCE_SINK, "coffer socket");
    if (m != nullptr) {
      BIO_meth_set_write(m, SocketBioWrite);
      BIO_meth_set_read(m, SocketBioRead);
      BIO_meth_set_ctrl(m, SocketBioCtrl);
    }
    return m;
  }();
  BIO* bio = method != nullptr ? BIO_new(method) : nullptr;
  if (bio != nullptr) {
    BIO_set_data(bio, &socket);
    BIO_set_init(bio, 1);
  }
  return bio;
}

// StreamConnection carries a streamed response from the moment its request is
// answered. It keeps only what an idle stream needs: the socket, the writer's
// channel and, over TLS, OpenSSL's connection. Asio's TLS stream would keep
// about 70 KB per connection that an idle stream never uses (two 17 KiB
// buffers of its own and a BIO pair with two more), so the session hands the
// SSL* over and is freed; OpenSSL then reads and writes the socket itself,
// without blocking, and Asio only waits for the socket to be ready.
//
// Everything runs on the socket's I/O thread. Pending waits own the
// connection; closing the socket ends them, and with them the connection.
class StreamConnection final : public std::enable_shared_from_this<StreamConnection>,
                               public StreamSink {
  struct Token {};

 public:
  using StartFn = std::function<void(std::shared_ptr<http::StreamWriter>)>;

  // Create takes over `socket` and, for TLS, `ssl`: a connection past its
  // handshake whose previous owner has nothing in progress and no output left
  // unsent. Null `ssl` for plain HTTP. `slot` counts the connection until it
  // closes. kResourceExhausted if OpenSSL cannot allocate.
  static StatusOr<std::shared_ptr<StreamConnection>> Create(tcp::socket socket, SslPtr ssl,
                                                            ConnectionLimits::Slot slot,
                                                            HttpServer::Impl& server) {
    auto connection = std::make_shared<StreamConnection>(Token(), std::move(socket), std::move(ssl),
                                                         std::move(slot), server);
    if (SSL* native = connection->ssl_.get()) {
      BIO* bio = NewSocketBio(connection->socket_);
      if (bio == nullptr) {
        ERR_clear_error();
        return ResourceExhaustedError("cannot allocate a BIO for a TLS stream");
      }
      // This frees the connection's end of Asio's BIO pair; Asio frees the
      // other end, and drops its reference to the SSL, with its stream.
      SSL_set_bio(native, bio, bio);
    }
    return connection;
  }

  StreamConnection(Token, tcp::socket socket, SslPtr ssl, ConnectionLimits::Slot slot,
                   HttpServer::Impl& server)
      : socket_(std::move(socket)), ssl_(std::move(ssl)), slot_(std::move(slot)), server_(server) {}

  ~StreamConnection() override {
    if (channel_) {
      channel_->Detach();
      server_.UnregisterStream(registration_);
    }
  }

  // Start sends `head` (status line and headers) and `first` (the first chunk
  // unless empty), and hands the writer to `start`.
  void Start(std::string head, std::string first, const StartFn& start) {
    channel_ = std::make_shared<StreamChannel>(socket_.get_executor(),
                                               std::weak_ptr<StreamSink>(weak_from_this()),
                                               server_.options().max_stream_backlog_bytes);
    registration_ = server_.RegisterStream(this);
    if (!first.empty()) {
      channel_->Write(std::move(first));
    }
    start(channel_);
    // The head goes out with whatever `start` queued, in one write.
    TakeBatch(std::move(head));
    // A streaming client sends nothing more, so the socket becoming readable
    // (EOF, reset, stray bytes) means it is gone; TLS messages that are not
    // data (a KeyUpdate) are the exception. Waiting rather than reading keeps
    // no buffer while idle.
    WaitReadable();
    Pump();
  }

  void Drain() override {
    if (done_) {
      return;
    }
    if (channel_->aborted()) {
      return Abort();
    }
    if (!writing_) {
      Pump();
    }
  }

  void CloseNow() override {
    done_ = true;
    channel_->Detach();
    beast::error_code ec;
    socket_.close(ec);
  }

 private:
  enum class Io { kDone, kWantRead, kWantWrite, kFailed };

  // TakeBatch puts `prefix` and the queued chunks in out_, with the
  // terminating chunk if the writer closed. False if there is nothing to send.
  bool TakeBatch(std::string prefix) {
    StreamChannel::Batch batch = channel_->Take();
    if (prefix.empty()) {
      out_ = std::move(batch.bytes);
    } else {
      out_ = std::move(prefix);
      out_.append(batch.bytes);
    }
    out_offset_ = 0;
    last_batch_ = batch.finish;
    if (last_batch_) {
      out_.append("0\r\n\r\n");
    }
    return !out_.empty();
  }

  // Pump writes out_, then whatever was queued meanwhile, until nothing is
  // left, the stream ends, or the socket is full (a wait resumes it then).
  void Pump() {
    writing_ = false;
    for (;;) {
      if (out_offset_ == out_.size()) {
        std::string().swap(out_);  // an idle stream keeps no buffer
        out_offset_ = 0;
        channel_->Sent();
        if (last_batch_) {
          return Finish();
        }
        if (channel_->aborted()) {
          return Abort();
        }
        if (!TakeBatch({})) {
          if (probe_deferred_) {
            probe_deferred_ = false;
            WaitReadable();
          }
          return;
        }
      }
      size_t n = 0;
      Io io = WriteSome(n);
      if (io == Io::kDone) {
        out_offset_ += n;
        continue;
      }
      if (io == Io::kFailed) {
        return Abort();
      }
      // OpenSSL keeps the record it could not finish; the retry passes the
      // same bytes again, as it requires.
      writing_ = true;
      Wait(io == Io::kWantRead ? tcp::socket::wait_read : tcp::socket::wait_write,
           &StreamConnection::OnWritable);
      return;
    }
  }

  Io WriteSome(size_t& written) {
    const char* data = out_.data() + out_offset_;
    size_t size = out_.size() - out_offset_;
    if (!ssl_) {
      ssize_t n = SendNow(socket_, data, size);
      if (n < 0) {
        return TryLater(errno) ? Io::kWantWrite : Io::kFailed;
      }
      written = static_cast<size_t>(n);
      return Io::kDone;
    }
    ERR_clear_error();
    if (SSL_write_ex(ssl_.get(), data, size, &written) == 1) {
      return Io::kDone;
    }
    return SslWants(SSL_get_error(ssl_.get(), 0));
  }

  static Io SslWants(int ssl_error) {
    switch (ssl_error) {
      case SSL_ERROR_WANT_READ:
        return Io::kWantRead;
      case SSL_ERROR_WANT_WRITE:
        return Io::kWantWrite;
      default:
        // The thread's error queue is shared with its other connections.
        ERR_clear_error();
        return Io::kFailed;
    }
  }

  void OnWritable(beast::error_code ec) {
    if (done_) {
      return;
    }
    if (ec) {
      return Abort();
    }
    Pump();
  }

  void WaitReadable() { Wait(tcp::socket::wait_read, &StreamConnection::OnReadable); }

  void OnReadable(beast::error_code ec) {
    if (done_) {
      return;
    }
    if (ec || !ssl_) {
      return Abort();  // plain HTTP: EOF, reset or stray bytes, the stream is over
    }
    if (writing_) {
      // OpenSSL must not take input while a record waits to go out: input
      // such as a KeyUpdate calls for output of its own. The write's end
      // looks again; a peer that is gone fails the write meanwhile.
      probe_deferred_ = true;
      return;
    }
    char buffer[256];
    size_t n = 0;
    ERR_clear_error();
    if (SSL_read_ex(ssl_.get(), buffer, sizeof(buffer), &n) == 1) {
      return Abort();  // application data, which a streaming client never sends
    }
    switch (SslWants(SSL_get_error(ssl_.get(), 0))) {
      case Io::kWantRead:  // a message that is not data, handled by OpenSSL
        return WaitReadable();
      case Io::kWantWrite:  // its answer (a KeyUpdate) waits for room
        return Wait(tcp::socket::wait_write, &StreamConnection::OnReadable);
      default:  // close_notify, EOF, reset or a TLS error
        return Abort();
    }
  }

  void Wait(tcp::socket::wait_type type, void (StreamConnection::*on_ready)(beast::error_code)) {
    socket_.async_wait(type, beast::bind_front_handler(on_ready, shared_from_this()));
  }

  // Finish ends a response whose terminating chunk is out.
  void Finish() {
    if (ssl_) {
      // A close_notify if the socket takes it now: a peer that reads no more
      // does not get to hold the connection open for it.
      ERR_clear_error();
      SSL_shutdown(ssl_.get());
      ERR_clear_error();
    }
    done_ = true;
    beast::error_code ec;
    socket_.close(ec);
  }

  // Abort drops the connection at once: the peer went away, a write failed,
  // or the writer overflowed its backlog.
  void Abort() {
    if (done_) {
      return;
    }
    done_ = true;
    channel_->Abort();
    beast::error_code ec;
    socket_.close(ec);
  }

  tcp::socket socket_;
  SslPtr ssl_;  // null for plain HTTP; its BIO refers to socket_
  ConnectionLimits::Slot slot_;
  HttpServer::Impl& server_;
  std::shared_ptr<StreamChannel> channel_;
  HttpServer::Impl::StreamRegistration registration_;
  std::string out_;  // being written, from out_offset_ on
  size_t out_offset_ = 0;
  bool writing_ = false;         // out_ waits for the socket
  bool last_batch_ = false;      // out_ ends with the terminating chunk
  bool probe_deferred_ = false;  // input arrived while writing_
  bool done_ = false;            // the socket is closed
};

// One connection. `Stream` is a TLS stream, or a plain TCP stream for
// loopback-only listeners (ServerOptions::tls). A streamed response moves the
// connection to a StreamConnection and ends the session.
template <class Stream>
class Session final : public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;
  // What the wait for an idle connection's next request reads at once.
  static constexpr size_t kFirstReadBytes = 4096;
  using std::enable_shared_from_this<Session<Stream>>::shared_from_this;

 public:
  // `slot` counts the connection, from `remote` (the peer's address), until
  // it closes.
  Session(tcp::socket&& socket, std::string remote, ConnectionLimits::Slot slot,
          HttpServer::Impl& server)
      : stream_(MakeStream(std::move(socket), server)),
        server_(server),
        slot_(std::move(slot)),
        remote_(std::move(remote)) {}

  void Run() {
    asio::dispatch(stream_.get_executor(),
                   beast::bind_front_handler(&Session::OnRun, shared_from_this()));
  }

 private:
  const ServerOptions& opts() const { return server_.options(); }

  static Stream MakeStream(tcp::socket&& socket, HttpServer::Impl& server) {
    if constexpr (kTls) {
      // The SSL object holds its own reference to the context's SSL_CTX.
      return Stream(std::move(socket), *server.ssl_ctx());
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

  // WaitForNextRequest gives a kept-alive connection the idle timeout until
  // the first byte of its next request; DoRead then gives the request the
  // read timeout.
  void WaitForNextRequest() {
    if (buffer_.size() > 0) {
      return DoRead();  // a pipelined request is already here
    }
    beast::get_lowest_layer(stream_).expires_after(
        std::chrono::seconds(opts().idle_timeout_seconds));
    stream_.async_read_some(buffer_.prepare(kFirstReadBytes),
                            beast::bind_front_handler(&Session::OnIdleRead, shared_from_this()));
  }

  void OnIdleRead(beast::error_code ec, size_t n) {
    buffer_.commit(n);
    if (ec) {
      // Idle too long, or the peer closed: nothing is lost either way.
      return Close();
    }
    DoRead();
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
      body_limit_ = opts().max_body_bytes;
      return SendTooLarge();
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
    body_limit_ = server_.BodyLimit(request_);
    if (body_limit_ < opts().max_body_bytes) {
      // SECURITY: a route with a lower limit refuses a larger announced body
      // before reading any of it; a chunked one stops at the limit.
      if (parser_->content_length() && *parser_->content_length() > body_limit_) {
        return SendTooLarge();
      }
      parser_->body_limit(body_limit_);
    }
    if (parser_->is_done()) {
      return Dispatch();
    }
    bhttp::async_read(stream_, buffer_, *parser_,
                      beast::bind_front_handler(&Session::OnBody, shared_from_this()));
  }

  void OnBody(beast::error_code ec, size_t) {
    if (ec == bhttp::error::body_limit) {
      return SendTooLarge();
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

  // The rest of the body is never read, so the connection closes.
  void SendTooLarge() {
    SendError(413, "RequestEntityTooLarge",
              "request body exceeds " + std::to_string(body_limit_) + " bytes", true);
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
    WaitForNextRequest();
  }

  // SendStream hands the connection to a StreamConnection, which sends the
  // head and the chunks. The session then has no operation pending and is
  // freed, Asio stream and buffers with it.
  void SendStream(http::Response response) {
    bhttp::response<bhttp::empty_body> head;
    head.result(static_cast<unsigned>(response.status));
    head.version(11);
    for (auto& [k, v] : response.headers) {
      head.set(k, v);
    }
    head.erase(bhttp::field::content_length);
    head.chunked(true);
    head.keep_alive(false);
    bhttp::fields::writer head_writer(head, head.version(), head.result_int());
    std::string head_bytes = beast::buffers_to_string(head_writer.get());
    SslPtr ssl;
    if constexpr (kTls) {
      // The request is answered and nothing else is in progress, so Asio has
      // sent all of OpenSSL's output: the SSL* can change hands. Asio keeps a
      // reference until its stream goes. Bytes Asio read that OpenSSL has not
      // can only be ones a streaming client should not send; they are lost,
      // and the stream ends at the client's next record, as they would have
      // ended it.
      SSL* native = stream_.native_handle();
      SSL_up_ref(native);
      ssl.reset(native);
    }
    // The socket leaves the session's timer behind: streams have no deadline,
    // as a watcher may rightly sit idle for hours (the application sends its
    // own heartbeats).
    auto connection = StreamConnection::Create(std::move(beast::get_lowest_layer(stream_).socket()),
                                               std::move(ssl), std::move(slot_), server_);
    if (!connection.ok()) {
      COFFER_LOG(kError) << "cannot stream a response: " << connection.status().ToString();
      return;  // the connection closes with the session
    }
    (*connection)->Start(std::move(head_bytes), std::move(response.body), response.stream);
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
  ConnectionLimits::Slot slot_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::shared_ptr<void> response_;
  http::Request request_;
  std::string remote_;
  std::string tls_version_;
  size_t body_limit_ = 0;  // of the request being read
  bool keep_alive_ = true;
  bool close_after_write_ = false;
};

// RaiseOpenFileLimit raises the soft limit on open files to the hard limit
// and returns the soft limit then in force (0 if unknown). Each connection,
// idle streams included, is a file descriptor; the default soft limit (often
// 1,024) is far below what a server holds.
size_t RaiseOpenFileLimit() {
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) != 0) {
    return 0;
  }
  if (files.rlim_cur < files.rlim_max) {
    rlim_t raised = files.rlim_max;
    files.rlim_cur = raised;
    if (setrlimit(RLIMIT_NOFILE, &files) != 0) {
      COFFER_LOG(kWarning) << "cannot raise the open-file limit to " << raised;
      getrlimit(RLIMIT_NOFILE, &files);
    }
  }
  return files.rlim_cur == RLIM_INFINITY ? 0 : static_cast<size_t>(files.rlim_cur);
}

}  // namespace

Status HttpServer::Impl::Init() {
  beast::error_code ec;
  port_ = options_.port;
  if (!options_.tls) {
    // SECURITY: plain HTTP is for loopback only (tokens travel on it).
    for (const auto& address : options_.addresses) {
      auto addr = asio::ip::make_address(address, ec);
      if (ec || (!addr.is_loopback() && !options_.plain_any_address)) {
        return InvalidArgumentError("plain HTTP may listen on loopback addresses only, not '" +
                                    address + "'");
      }
    }
    return Listen();
  }
  RETURN_IF_ERROR(SetCertificate(options_.certificate_chain_pem, options_.private_key_pem));
  return Listen();
}

namespace {

// A TLS server context with the certificate chain and key.
StatusOr<std::shared_ptr<asio::ssl::context>> MakeTlsContext(const std::string& chain_pem,
                                                             const std::string& key_pem) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
  // SECURITY: TLS 1.2 is the floor, as for Key Vault itself, and TLS 1.2
  // offers only forward-secret AEAD suites (TLS 1.3's are all of that kind).
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  if (SSL_CTX_set_cipher_list(ctx->native_handle(), "ECDHE+AESGCM:ECDHE+CHACHA20") != 1) {
    return InternalError("cannot set the TLS 1.2 cipher suites");
  }
  SSL_CTX_set_options(ctx->native_handle(), SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Asio sets SSL_MODE_RELEASE_BUFFERS on each connection, so idle streams
  // hold no OpenSSL record buffers; they hold no Asio buffers either
  // (StreamConnection).
  beast::error_code ec;
  ctx->use_certificate_chain(asio::buffer(chain_pem), ec);
  if (ec) {
    return InvalidArgumentError("cannot load TLS certificate chain: " + ec.message());
  }
  // OpenSSL also checks here that the key is the certificate's.
  ctx->use_private_key(asio::buffer(key_pem), asio::ssl::context::pem, ec);
  if (ec) {
    return InvalidArgumentError("cannot load TLS private key: " + ec.message());
  }
  return ctx;
}

}  // namespace

Status HttpServer::Impl::SetCertificate(const std::string& chain_pem, const std::string& key_pem) {
  if (!options_.tls) {
    return FailedPreconditionError("this server speaks plain HTTP");
  }
  ASSIGN_OR_RETURN(auto ctx, MakeTlsContext(chain_pem, key_pem));
  std::lock_guard<std::mutex> lock(ssl_mu_);
  if (ssl_ctx_ != nullptr) {
    retired_ctx_.push_back(std::move(ssl_ctx_));
  }
  ssl_ctx_ = std::move(ctx);
  return OkStatus();
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
      auto endpoint = socket.remote_endpoint(ec);
      std::string remote = ec ? std::string() : endpoint.address().to_string();
      // SECURITY: a connection over the caps is closed before any TLS work,
      // so that holding many connections open costs the server nothing more.
      ConnectionLimits::Slot slot = limits_.TryAcquire(remote);
      if (!slot) {
        Refused(remote);
        socket.close(ec);
      } else {
        socket.set_option(tcp::no_delay(true), ec);
        if (options_.tls) {
          std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(
              std::move(socket), std::move(remote), std::move(slot), *this)
              ->Run();
        } else {
          std::make_shared<Session<beast::tcp_stream>>(std::move(socket), std::move(remote),
                                                       std::move(slot), *this)
              ->Run();
        }
      }
    }
    DoAccept(acceptor);
  });
}

void HttpServer::Impl::Refused(const std::string& address) {
  // One line a minute at most: a client hammering the caps must not flood
  // the log.
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::steady_clock::now().time_since_epoch())
                    .count();
  int64_t last = last_refusal_log_.load();
  if (now - last >= 60 && last_refusal_log_.compare_exchange_strong(last, now)) {
    auto cap = [](size_t n) { return n == 0 ? std::string("none") : std::to_string(n); };
    COFFER_LOG(kWarning) << "refused a connection from " << address << ": "
                         << limits_.for_address(address) << " open from that address (cap "
                         << cap(options_.max_connections_per_address) << "), " << limits_.total()
                         << " in all (cap " << cap(options_.max_connections) << ")";
  }
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
  if (options.read_timeout_seconds < 1 || options.idle_timeout_seconds < 1) {
    return InvalidArgumentError("timeouts must be at least 1 second");
  }
  if (size_t files = RaiseOpenFileLimit(); files != 0) {
    // Accepting stops working at the open-file limit (and an accept loop
    // failing with EMFILE spins): the cap keeps descriptors back for the
    // store, the logs and outgoing connections.
    size_t usable = files - std::min<size_t>(256, files / 2);
    if (options.max_connections == 0 || options.max_connections > usable) {
      COFFER_LOG(kInfo) << "connection cap set to " << usable << " (open-file limit " << files
                        << ")";
      options.max_connections = usable;
    }
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
Status HttpServer::SetCertificate(const std::string& chain_pem, const std::string& key_pem) {
  return impl_->SetCertificate(chain_pem, key_pem);
}

}  // namespace coffer::net
