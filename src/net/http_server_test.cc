// Streamed responses over real loopback sockets, plain and TLS, against the
// real client. Waits are bounded polls, never timing assertions.

#include "net/http_server.h"

#include <spawn.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/testing/temp_dir.h"
#include "common/testing/wait.h"
#include "net/http_client.h"

#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>

extern char** environ;

namespace coffer::net {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using std::chrono::milliseconds;
using std::chrono::seconds;

using test::WaitUntil;

struct PemPair {
  std::string certificate;
  std::string private_key;
};

std::string DrainBio(BIO* bio) {
  std::string out(BIO_ctrl_pending(bio), '\0');
  int n = BIO_read(bio, out.data(), static_cast<int>(out.size()));
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

// SelfSigned makes a P-256 certificate for 127.0.0.1 and localhost.
PemPair SelfSigned() {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
  if (!key || !cert) {
    return {};
  }
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  std::string san = "DNS:localhost,IP:127.0.0.1";
  std::unique_ptr<X509_EXTENSION, decltype(&X509_EXTENSION_free)> ext(
      X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san.data()), X509_EXTENSION_free);
  if (!ext) {
    return {};
  }
  X509_add_ext(cert.get(), ext.get(), -1);
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) {
    return {};
  }
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  PemPair out;
  PEM_write_bio_X509(bio.get(), cert.get());
  out.certificate = DrainBio(bio.get());
  PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  out.private_key = DrainBio(bio.get());
  return out;
}

// StreamHub keeps the writers the server hands to the test's handler.
class StreamHub {
 public:
  // Runs for each new stream, on the server's I/O thread.
  std::function<void(http::StreamWriter&)> on_add;

  void Add(std::shared_ptr<http::StreamWriter> writer) {
    if (on_add) {
      on_add(*writer);
    }
    std::lock_guard<std::mutex> lock(mu_);
    writers_.push_back(std::move(writer));
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return writers_.size();
  }
  // Wait returns the first `n` writers, or an empty vector if they do not come.
  std::vector<std::shared_ptr<http::StreamWriter>> Wait(size_t n) const {
    if (!WaitUntil([&] { return size() >= n; })) {
      return {};
    }
    std::lock_guard<std::mutex> lock(mu_);
    return {writers_.begin(), writers_.begin() + static_cast<std::ptrdiff_t>(n)};
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<http::StreamWriter>> writers_;
};

// StreamResponse answers with an event stream whose writer goes to `hub`.
http::Response StreamResponse(StreamHub& hub, std::string first) {
  http::Response response;
  response.SetHeader("Content-Type", "text/event-stream");
  response.body = std::move(first);
  response.stream = [&hub](std::shared_ptr<http::StreamWriter> writer) {
    hub.Add(std::move(writer));
  };
  return response;
}

http::Response Route(http::Request& request, StreamHub& hub) {
  if (request.segments.size() == 1 && request.segments[0] == "hello") {
    http::Response response;
    response.body = "hello";
    return response;
  }
  if (request.segments.size() == 1 && request.segments[0] == "stream") {
    return StreamResponse(hub, std::string(request.Query("first")));
  }
  if (request.segments.size() == 1 && request.segments[0] == "burst") {
    return StreamResponse(hub, std::string(256 * 1024, 'b'));
  }
  return http::ErrorResponse(404, "NotFound", "no such path");
}

std::unique_ptr<HttpServer> StartServer(bool tls, const PemPair& pem, StreamHub& hub,
                                        size_t max_backlog = 1024 * 1024) {
  ServerOptions options;
  options.addresses = {"127.0.0.1"};
  options.port = 0;
  options.io_threads = 2;
  options.worker_threads = 2;
  options.tls = tls;
  options.certificate_chain_pem = pem.certificate;
  options.private_key_pem = pem.private_key;
  options.max_stream_backlog_bytes = max_backlog;
  auto server = HttpServer::Create(
      options, [&hub](http::Request& request) { return Route(request, hub); }, nullptr,
      [&hub](http::Request& request) -> std::optional<http::Response> {
        // Streams may also start on the I/O thread.
        if (request.segments.size() == 1 && request.segments[0] == "fast-stream") {
          return StreamResponse(hub, "");
        }
        return std::nullopt;
      });
  if (!server.ok()) {
    ADD_FAILURE() << server.status().ToString();
    return nullptr;
  }
  (*server)->Start();
  return std::move(*server);
}

// StreamReader runs StreamRequest on its own thread and collects the data.
class StreamReader {
 public:
  explicit StreamReader(ClientRequest request)
      : thread_([this, request = std::move(request)] {
          auto result = StreamRequest(
              request,
              [this](std::string_view piece) {
                std::lock_guard<std::mutex> lock(mu_);
                data_.append(piece);
                return true;
              },
              &cancel_, 10);
          std::lock_guard<std::mutex> lock(mu_);
          result_.emplace(std::move(result));
        }) {}
  ~StreamReader() {
    cancel_ = true;
    thread_.join();
  }

  std::string data() const {
    std::lock_guard<std::mutex> lock(mu_);
    return data_;
  }
  bool WaitForData(const std::string& want) const {
    return WaitUntil([&] { return data().find(want) != std::string::npos; });
  }
  bool finished() const {
    std::lock_guard<std::mutex> lock(mu_);
    return result_.has_value();
  }
  void Cancel() { cancel_ = true; }
  // Result waits (bounded) for the request to end.
  StatusOr<http::Response> Result() const {
    if (!WaitUntil([&] { return finished(); })) {
      return Status(StatusCode::kDeadlineExceeded, "stream request did not end");
    }
    std::lock_guard<std::mutex> lock(mu_);
    return *result_;
  }

 private:
  mutable std::mutex mu_;
  std::string data_;
  std::optional<StatusOr<http::Response>> result_;
  std::atomic<bool> cancel_{false};
  std::thread thread_;  // last: starts once the rest exists
};

class HttpStreamTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (tls()) {
      pem_ = SelfSigned();
      ASSERT_FALSE(pem_.certificate.empty());
      auto dir = test::TempDir::Create("coffer-net-test-");
      ASSERT_TRUE(dir.ok()) << dir.status().ToString();
      dir_ = std::move(*dir);
      ca_file_ = dir_.Join("ca.pem");
      std::ofstream(ca_file_) << pem_.certificate;
    }
    server_ = StartServer(tls(), pem_, hub_, max_backlog_);
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override { server_.reset(); }

  bool tls() const { return GetParam(); }
  ClientRequest Get(const std::string& target) const {
    ClientRequest request;
    request.url = std::string(tls() ? "https" : "http") +
                  "://127.0.0.1:" + std::to_string(server_->port()) + target;
    request.ca_file = ca_file_;
    request.timeout_seconds = 20;
    return request;
  }

  size_t max_backlog_ = 1024 * 1024;
  PemPair pem_;
  test::TempDir dir_;
  std::string ca_file_;
  StreamHub hub_;  // outlives the server, which calls into it
  std::unique_ptr<HttpServer> server_;
};

INSTANTIATE_TEST_SUITE_P(PlainAndTls, HttpStreamTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& param_info) {
                           return param_info.param ? "Tls" : "Plain";
                         });

TEST_P(HttpStreamTest, ChunksArriveInOrderAndCloseEndsTheResponse) {
  StreamReader reader(Get("/stream?first=start;"));
  auto writers = hub_.Wait(1);
  ASSERT_EQ(writers.size(), 1u);
  std::string expected = "start;";
  // Writes from several threads are sent in the order they were made.
  for (int i = 0; i < 200; ++i) {
    std::string event = "data: " + std::to_string(i) + "\n\n";
    expected += event;
    std::thread([&] { EXPECT_TRUE(writers[0]->Write(event)); }).join();
  }
  EXPECT_TRUE(writers[0]->Write(""));
  writers[0]->Close();
  EXPECT_TRUE(writers[0]->closed());
  EXPECT_FALSE(writers[0]->Write("late"));
  auto result = reader.Result();
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->status, 200);
  EXPECT_TRUE(result->body.empty());
  bool event_stream = false;
  for (const auto& [name, value] : result->headers) {
    event_stream |= name == "Content-Type" && value == "text/event-stream";
    EXPECT_NE(name, "Content-Length");
  }
  EXPECT_TRUE(event_stream);
  EXPECT_EQ(reader.data(), expected);
}

TEST_P(HttpStreamTest, StreamsFromTheFastPath) {
  StreamReader reader(Get("/fast-stream"));
  auto writers = hub_.Wait(1);
  ASSERT_EQ(writers.size(), 1u);
  std::string big(100 * 1024, 'x');
  EXPECT_TRUE(writers[0]->Write("a"));
  EXPECT_TRUE(writers[0]->Write(big));
  writers[0]->Close();
  auto result = reader.Result();
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(reader.data(), "a" + big);
}

TEST_P(HttpStreamTest, CancelEndsTheRequestAndTheServerNotices) {
  StreamReader reader(Get("/stream"));
  auto writers = hub_.Wait(1);
  ASSERT_EQ(writers.size(), 1u);
  EXPECT_TRUE(writers[0]->Write("one"));
  ASSERT_TRUE(reader.WaitForData("one"));
  EXPECT_FALSE(writers[0]->closed());
  reader.Cancel();
  auto result = reader.Result();
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->status, 200);
  // The idle stream notices its peer leave without writing anything.
  EXPECT_TRUE(WaitUntil([&] { return writers[0]->closed(); }));
  EXPECT_FALSE(writers[0]->Write("two"));
}

TEST_P(HttpStreamTest, CancelIsSeenWhileDataKeepsComing) {
  // The response's first chunk is large, so reads never wait: the cancel set
  // by the first piece must still stop the next read.
  std::atomic<bool> cancel{false};
  int calls = 0;
  auto result = StreamRequest(
      Get("/burst"),
      [&](std::string_view) {
        ++calls;
        cancel = true;
        return true;
      },
      &cancel);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(calls, 1);
  auto writers = hub_.Wait(1);
  ASSERT_EQ(writers.size(), 1u);
  EXPECT_TRUE(WaitUntil([&] { return writers[0]->closed(); }));
}

TEST_P(HttpStreamTest, OnDataReturningFalseStops) {
  std::atomic<int> calls{0};
  std::thread writer_thread([&] {
    auto writers = hub_.Wait(1);
    ASSERT_EQ(writers.size(), 1u);
    writers[0]->Write("first");
  });
  auto result = StreamRequest(Get("/stream"), [&](std::string_view) {
    ++calls;
    return false;
  });
  writer_thread.join();
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(calls.load(), 1);
}

TEST_P(HttpStreamTest, ErrorStatusIsReadWhole) {
  bool called = false;
  auto result = StreamRequest(Get("/missing"), [&](std::string_view) {
    called = true;
    return true;
  });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->status, 404);
  EXPECT_NE(result->body.find("NotFound"), std::string::npos);
  EXPECT_FALSE(called);
}

TEST_P(HttpStreamTest, OtherRequestsAreServedWhileStreamsAreOpen) {
  std::vector<std::unique_ptr<StreamReader>> readers;
  for (int i = 0; i < 8; ++i) {
    readers.push_back(std::make_unique<StreamReader>(Get("/stream")));
  }
  auto writers = hub_.Wait(8);
  ASSERT_EQ(writers.size(), 8u);
  for (int i = 0; i < 5; ++i) {
    auto response = SendRequest(Get("/hello"));
    ASSERT_TRUE(response.ok()) << response.status().ToString();
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->body, "hello");
  }
  for (auto& writer : writers) {
    EXPECT_TRUE(writer->Write("event"));
  }
  for (auto& reader : readers) {
    EXPECT_TRUE(reader->WaitForData("event"));
    EXPECT_FALSE(reader->finished());
  }
}

TEST_P(HttpStreamTest, StopClosesOpenStreams) {
  std::vector<std::unique_ptr<StreamReader>> readers;
  for (int i = 0; i < 3; ++i) {
    readers.push_back(std::make_unique<StreamReader>(Get("/stream?first=hi")));
  }
  auto writers = hub_.Wait(3);
  ASSERT_EQ(writers.size(), 3u);
  for (auto& reader : readers) {
    ASSERT_TRUE(reader->WaitForData("hi"));
  }
  // Writers keep writing while the server stops under them.
  std::vector<std::thread> writing;
  for (auto& writer : writers) {
    writing.emplace_back([writer] {
      auto deadline = std::chrono::steady_clock::now() + seconds(20);
      while (writer->Write("tick") && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(milliseconds(1));
      }
    });
  }
  server_->Stop();
  for (auto& writer : writers) {
    EXPECT_TRUE(writer->closed());
    EXPECT_FALSE(writer->Write("after stop"));
  }
  for (auto& thread : writing) {
    thread.join();
  }
  // The clients see the connection end before the response did.
  for (auto& reader : readers) {
    auto result = reader->Result();
    EXPECT_EQ(result.status().code(), StatusCode::kUnavailable) << result.status().ToString();
  }
  // Writers outlive the server.
  server_.reset();
  for (auto& writer : writers) {
    EXPECT_FALSE(writer->Write("after destruction"));
    writer->Close();
  }
}

// Pattern makes `size` bytes that differ with `seed`, so that a lost, repeated
// or reordered piece cannot go unnoticed.
std::string Pattern(size_t seed, size_t size) {
  std::string out(size, '\0');
  for (size_t i = 0; i < size; ++i) {
    out[i] = static_cast<char>('a' + (seed * 7 + i) % 26);
  }
  return out;
}

// ShrinkServerSendBuffers gives the server's connections on `port` (the
// server runs in this process) a small send buffer, so that a reader that
// falls behind soon fills it: on loopback the kernel would buffer megabytes,
// more than a stream's backlog limit. Returns how many it found.
int ShrinkServerSendBuffers(uint16_t port) {
  int shrunk = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    int fd = std::atoi(entry.path().filename().c_str());
    sockaddr_in local{};
    sockaddr_in peer{};
    socklen_t local_size = sizeof(local);
    socklen_t peer_size = sizeof(peer);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_size) != 0 ||
        local.sin_family != AF_INET || ntohs(local.sin_port) != port ||
        getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_size) != 0) {
      continue;  // not a connection accepted on `port`
    }
    int size = 8 * 1024;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)) == 0) {
      ++shrunk;
    }
  }
  return shrunk;
}

TEST_P(HttpStreamTest, LargeChunksReachASlowReaderWhole) {
  // The reader sits on its first piece until every chunk is queued: the
  // server's socket fills, and the rest goes out piecemeal as the reader
  // catches up (partial writes, and for TLS OpenSSL's WANT_WRITE retries).
  std::mutex mu;
  std::condition_variable cv;
  bool go = false;
  std::string data;
  std::optional<StatusOr<http::Response>> result;
  std::thread reader([&] {
    auto r = StreamRequest(Get("/stream?first=start;"), [&](std::string_view piece) {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return go; });
      data.append(piece);
      return true;
    });
    std::lock_guard<std::mutex> lock(mu);
    result.emplace(std::move(r));
  });
  auto writers = hub_.Wait(1);
  std::string expected = "start;";
  if (writers.size() == 1) {
    EXPECT_EQ(ShrinkServerSendBuffers(server_->port()), 1);
    for (size_t i = 0; i < 300; ++i) {
      // Mostly small events, a 300 KB one in the middle and a few of 20 KB.
      size_t size = i == 150 ? 300 * 1024 : i % 50 == 0 ? 20 * 1024 : 1 + i % 100;
      std::string chunk = Pattern(i, size);
      expected += chunk;
      EXPECT_TRUE(writers[0]->Write(std::move(chunk))) << i;
    }
    writers[0]->Close();
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    go = true;
  }
  cv.notify_all();
  reader.join();
  ASSERT_EQ(writers.size(), 1u);
  ASSERT_TRUE(result.has_value());
  ASSERT_TRUE(result->ok()) << result->status().ToString();
  EXPECT_EQ(data.size(), expected.size());
  EXPECT_TRUE(data == expected);  // not EXPECT_EQ: a mismatch would print 700 KB
}

// TlsClient is a bare TLS client that sends a GET, for what the real client
// never does. Every read gives up after 20 seconds.
class TlsClient {
 public:
  TlsClient(uint16_t port, const std::string& target)
      : ctx_(asio::ssl::context::tls_client), stream_(ioc_, ctx_) {
    ctx_.set_verify_mode(asio::ssl::verify_none);  // the server's identity is not under test
    boost::system::error_code ec;
    stream_.lowest_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
    if (!ec) {
      stream_.handshake(asio::ssl::stream_base::client, ec);
    }
    if (!ec) {
      Send("GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", ec);
    }
    EXPECT_FALSE(ec) << ec.message();
  }

  void Send(const std::string& bytes, boost::system::error_code& ec) {
    asio::write(stream_, asio::buffer(bytes), ec);
  }
  // ReadUntil reads until `want` has arrived; false on an error or timeout.
  bool ReadUntil(const std::string& want) {
    bool done = false;
    boost::system::error_code result;
    asio::async_read_until(stream_, asio::dynamic_buffer(data_), want,
                           [&](boost::system::error_code ec, size_t) {
                             result = ec;
                             done = true;
                           });
    ioc_.restart();
    ioc_.run_for(seconds(20));
    if (!done) {
      stream_.lowest_layer().close();
      ioc_.restart();
      ioc_.run();
    }
    return done && !result;
  }
  SSL* native_handle() { return stream_.native_handle(); }
  // KeyUpdate sends a TLS 1.3 KeyUpdate that asks the server for one too.
  bool KeyUpdate() {
    if (SSL_version(native_handle()) != TLS1_3_VERSION ||
        SSL_key_update(native_handle(), SSL_KEY_UPDATE_REQUESTED) != 1) {
      return false;
    }
    boost::system::error_code ec;
    stream_.handshake(asio::ssl::stream_base::client, ec);  // sends it now
    return !ec;
  }

 private:
  asio::io_context ioc_;
  asio::ssl::context ctx_;
  asio::ssl::stream<tcp::socket> stream_;
  std::string data_;
};

TEST(HttpStreamTlsTest, KeyUpdateKeepsTheStreamAndStrayDataEndsIt) {
  StreamHub hub;
  PemPair pem = SelfSigned();
  auto server = StartServer(true, pem, hub);
  ASSERT_NE(server, nullptr);
  TlsClient client(server->port(), "/stream?first=hello");
  auto writers = hub.Wait(1);
  ASSERT_EQ(writers.size(), 1u);
  ASSERT_TRUE(client.ReadUntil("hello"));
  // A KeyUpdate is input that is not data: the stream goes on, under new keys
  // both ways (the server answers with its own).
  ASSERT_TRUE(client.KeyUpdate());
  EXPECT_TRUE(writers[0]->Write("after-update"));
  EXPECT_TRUE(client.ReadUntil("after-update"));
  EXPECT_FALSE(writers[0]->closed());
  // Again while the server waits to write a large chunk the client does not
  // read yet: the server takes the KeyUpdate once the chunk is out.
  EXPECT_EQ(ShrinkServerSendBuffers(server->port()), 1);
  EXPECT_TRUE(writers[0]->Write(Pattern(1, 300 * 1024) + "end-of-large"));
  ASSERT_TRUE(client.KeyUpdate());
  EXPECT_TRUE(client.ReadUntil("end-of-large"));
  EXPECT_TRUE(writers[0]->Write("after-second-update"));
  EXPECT_TRUE(client.ReadUntil("after-second-update"));
  EXPECT_FALSE(writers[0]->closed());
  // Data from a streaming client is not expected: the stream ends.
  boost::system::error_code ec;
  client.Send("stray", ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_TRUE(WaitUntil([&] { return writers[0]->closed(); }));
  EXPECT_FALSE(writers[0]->Write("late"));
}

// RawClient is a plain-HTTP client that sends a GET and reads only when told.
class RawClient {
 public:
  RawClient(uint16_t port, const std::string& target) : socket_(ioc_) {
    boost::system::error_code ec;
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
    EXPECT_FALSE(ec) << ec.message();
    // Reads give up rather than hang the test.
    timeval timeout{20, 0};
    setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    std::string request = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    asio::write(socket_, asio::buffer(request), ec);
    EXPECT_FALSE(ec) << ec.message();
  }

  // ReadToEnd reads until the server ends the connection; false if it does
  // not within the socket's receive timeout.
  bool ReadToEnd() {
    char buffer[64 * 1024];
    for (;;) {
      boost::system::error_code ec;
      socket_.read_some(asio::buffer(buffer), ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) {
        return false;
      }
      if (ec) {
        return true;
      }
    }
  }
  void Close() {
    boost::system::error_code ec;
    socket_.close(ec);
  }

 private:
  asio::io_context ioc_;
  tcp::socket socket_;
};

TEST(HttpStreamRawTest, PeerDisconnectClosesTheWriter) {
  StreamHub hub;
  auto server = StartServer(false, {}, hub);
  ASSERT_NE(server, nullptr);
  RawClient client(server->port(), "/stream");
  auto writers = hub.Wait(1);
  ASSERT_EQ(writers.size(), 1u);
  EXPECT_TRUE(writers[0]->Write("x"));
  client.Close();
  EXPECT_TRUE(WaitUntil([&] { return writers[0]->closed(); }));
  EXPECT_FALSE(writers[0]->Write("y"));
}

TEST(HttpStreamRawTest, SlowConsumerIsDisconnected) {
  StreamHub hub;
  auto server = StartServer(false, {}, hub, 64 * 1024);
  ASSERT_NE(server, nullptr);
  RawClient client(server->port(), "/stream");
  auto writers = hub.Wait(1);
  ASSERT_EQ(writers.size(), 1u);
  // The client reads nothing: kernel buffers fill, then the backlog does.
  std::string event(8 * 1024, 'e');
  bool refused = WaitUntil([&] { return !writers[0]->Write(event); });
  ASSERT_TRUE(refused);
  EXPECT_TRUE(writers[0]->closed());
  EXPECT_TRUE(client.ReadToEnd());
  // A fresh stream on another connection is unaffected.
  RawClient other(server->port(), "/stream");
  auto both = hub.Wait(2);
  ASSERT_EQ(both.size(), 2u);
  EXPECT_TRUE(both[1]->Write("ok"));
}

// ----------------------------------------------------------------------------
// Memory of idle TLS streams, measured in a child process that runs only the
// server. Not run by default (it opens thousands of connections):
//   net_test --gtest_also_run_disabled_tests --gtest_filter='*IdleTlsStreamMemory*'
// COFFER_STREAM_RSS_N sets the number of streams (default 2,000), and
// COFFER_STREAM_RSS_EVENTS a number of 1 KiB events each stream carries before
// it goes idle (default 0). Meaningful only in a build without sanitizers.

constexpr char kChildEnv[] = "COFFER_STREAM_RSS_PORT_FILE";

long RssKiB(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::strtol(line.c_str() + 6, nullptr, 10);
    }
  }
  return -1;
}

size_t EnvNumber(const char* name, size_t fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? std::strtoul(value, nullptr, 10) : fallback;
}

void RunRssChild(const char* port_file) {
  StreamHub hub;
  const size_t events = EnvNumber("COFFER_STREAM_RSS_EVENTS", 0);
  hub.on_add = [events](http::StreamWriter& writer) {
    for (size_t i = 0; i < events; ++i) {
      writer.Write(std::string(1024, 'e'));
    }
    writer.Write("end");
  };
  auto server = StartServer(true, SelfSigned(), hub);
  ASSERT_NE(server, nullptr);
  std::string tmp = std::string(port_file) + ".tmp";
  std::ofstream(tmp) << server->port() << "\n";
  std::rename(tmp.c_str(), port_file);
  char c;
  while (read(0, &c, 1) > 0) {
  }
}

TEST(HttpServerMemoryTest, DISABLED_IdleTlsStreamMemory) {
  if (const char* port_file = std::getenv(kChildEnv)) {
    return RunRssChild(port_file);
  }
  const size_t n = EnvNumber("COFFER_STREAM_RSS_N", 2000);
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  setrlimit(RLIMIT_NOFILE, &files);

  auto dir = test::TempDir::Create("coffer-rss-");
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  std::string port_file = dir->Join("port");
  char exe[4096];
  ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  ASSERT_GT(len, 0);
  exe[len] = '\0';
  std::string filter = "--gtest_filter=HttpServerMemoryTest.DISABLED_IdleTlsStreamMemory";
  std::string also = "--gtest_also_run_disabled_tests";
  std::vector<char*> argv = {exe, filter.data(), also.data(), nullptr};
  std::vector<std::string> env_strings = {std::string(kChildEnv) + "=" + port_file};
  for (char** e = environ; *e != nullptr; ++e) {
    env_strings.emplace_back(*e);
  }
  std::vector<char*> envp;
  for (auto& e : env_strings) {
    envp.push_back(e.data());
  }
  envp.push_back(nullptr);
  int to_child[2];
  ASSERT_EQ(pipe(to_child), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, to_child[0], 0);
  posix_spawn_file_actions_addclose(&actions, to_child[1]);
  pid_t child = 0;
  int spawned = posix_spawn(&child, exe, &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(to_child[0]);
  ASSERT_EQ(spawned, 0);

  uint16_t port = 0;
  EXPECT_TRUE(WaitUntil([&] {
    std::ifstream in(port_file);
    int p = 0;
    if (in >> p) {
      port = static_cast<uint16_t>(p);
    }
    return port != 0;
  }));

  asio::io_context ioc;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.set_verify_mode(asio::ssl::verify_none);  // measuring, not verifying
  using TlsSocket = asio::ssl::stream<tcp::socket>;
  std::vector<std::unique_ptr<TlsSocket>> sockets;
  auto open = [&](size_t count) {
    for (size_t i = 0; i < count; ++i) {
      auto s = std::make_unique<TlsSocket>(ioc, ctx);
      boost::system::error_code ec;
      s->lowest_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
      if (!ec) {
        s->handshake(asio::ssl::stream_base::client, ec);
      }
      std::string request = "GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
      if (!ec) {
        asio::write(*s, asio::buffer(request), ec);
      }
      std::string head;
      if (!ec) {
        asio::read_until(*s, asio::dynamic_buffer(head), "end\r\n", ec);
      }
      if (ec) {
        ADD_FAILURE() << "stream " << sockets.size() << ": " << ec.message();
        return false;
      }
      sockets.push_back(std::move(s));
    }
    return true;
  };
  bool opened = port != 0 && open(50);  // warm up: one-time allocations
  std::this_thread::sleep_for(milliseconds(500));
  long before = RssKiB(child);
  opened = opened && open(n);
  std::this_thread::sleep_for(milliseconds(500));
  long after = RssKiB(child);
  close(to_child[1]);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  ASSERT_TRUE(opened);
  double per_stream = static_cast<double>(after - before) * 1024.0 / static_cast<double>(n);
  std::printf(
      "server RSS %ld KiB -> %ld KiB for %zu idle TLS streams (%zu KiB sent on each): %.0f "
      "bytes each\n",
      before, after, n, EnvNumber("COFFER_STREAM_RSS_EVENTS", 0), per_stream);
  // The target: 2,000 idle TLS streams in under 100 MB.
  EXPECT_LT(per_stream, 100.0 * 1000 * 1000 / 2000);
}

}  // namespace
}  // namespace coffer::net
