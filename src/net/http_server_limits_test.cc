// The server's connection caps, idle timeout and per-route body limit, over
// real loopback sockets. Waits are bounded by generous socket timeouts and
// polls, never timing assertions.

#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "net/connection_limits.h"
#include "net/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

namespace coffer::net {
namespace {

constexpr int kReceiveTimeoutSeconds = 60;
constexpr size_t kTokenBodyLimit = 64 * 1024;

// Client is a plain-HTTP connection from a chosen loopback source address
// (127.0.0.0/8 is all loopback, so each address is a distinct client).
class Client {
 public:
  Client(uint16_t port, const char* source) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in from{};
    from.sin_family = AF_INET;
    inet_pton(AF_INET, source, &from.sin_addr);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    connected_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&from), sizeof(from)) == 0 &&
                 ::connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == 0;
    // A read that gets nothing gives up rather than hang the test.
    timeval timeout{kReceiveTimeoutSeconds, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  }
  ~Client() { Close(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return connected_; }

  bool Send(const std::string& data) {
    size_t sent = 0;
    while (sent < data.size()) {
      ssize_t n = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) {
        return false;
      }
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  // Get sends a keep-alive GET and returns the response's status, or -1 when
  // the connection ends (or the receive timeout passes) before a response.
  int Get(const std::string& target) {
    if (!Send("GET " + target + " HTTP/1.1\r\nHost: localhost\r\n\r\n")) {
      return -1;
    }
    return ReadResponse();
  }

  // ReadResponse reads one response with a Content-Length body; its status,
  // or -1 as for Get.
  int ReadResponse() {
    size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!Receive()) {
        return -1;
      }
    }
    std::string head = buffer_.substr(0, end);
    size_t length = 0;
    if (size_t at = head.find("Content-Length: "); at != std::string::npos) {
      length = std::stoul(head.substr(at + 16));
    }
    while (buffer_.size() < end + 4 + length) {
      if (!Receive()) {
        return -1;
      }
    }
    buffer_.erase(0, end + 4 + length);
    if (head.compare(0, 9, "HTTP/1.1 ") != 0) {
      return -1;
    }
    return std::stoi(head.substr(9, 3));
  }

  // WaitClosed reads until the server ends the connection: true then, false
  // if the receive timeout passes first. Any data read is discarded.
  bool WaitClosed() {
    char chunk[4096];
    for (;;) {
      ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
      if (n > 0) {
        continue;
      }
      return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
    }
  }

  void Close() {
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }

 private:
  bool Receive() {
    char chunk[4096];
    ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n <= 0) {
      return false;
    }
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  }

  int fd_;
  bool connected_ = false;
  std::string buffer_;
};

bool IsTokenRequest(const http::Request& request) {
  const auto& seg = request.segments;
  return request.method == "POST" && seg.size() == 4 && seg[1] == "oauth2" && seg[2] == "v2.0" &&
         seg[3] == "token";
}

// StartServer serves plain HTTP on 127.0.0.1 with `adjust` applied to the
// options. The handler answers 200 with the size of the body it got.
std::unique_ptr<HttpServer> StartServer(const std::function<void(ServerOptions&)>& adjust) {
  ServerOptions options;
  options.addresses = {"127.0.0.1"};
  options.port = 0;
  options.io_threads = 1;
  options.worker_threads = 2;
  options.tls = false;
  options.body_limit = [](const http::Request& request) -> size_t {
    return IsTokenRequest(request) ? kTokenBodyLimit : 0;
  };
  adjust(options);
  auto server = HttpServer::Create(
      options,
      [](http::Request& request) {
        http::Response response;
        response.body = std::to_string(request.body.size());
        return response;
      },
      nullptr);
  if (!server.ok()) {
    ADD_FAILURE() << server.status().ToString();
    return nullptr;
  }
  (*server)->Start();
  return std::move(*server);
}

// Eventually polls `condition` for up to a minute.
bool Eventually(const std::function<bool()>& condition) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

TEST(ConnectionLimitsTest, SlotsCountUntilReleasedAndCapsRefuseWithoutCounting) {
  ConnectionLimits limits(3, 2);
  auto a1 = limits.TryAcquire("192.0.2.1");
  auto a2 = limits.TryAcquire("192.0.2.1");
  ASSERT_TRUE(a1 && a2);
  EXPECT_FALSE(limits.TryAcquire("192.0.2.1"));  // the address's cap
  EXPECT_EQ(limits.for_address("192.0.2.1"), 2u);
  // An IPv6 client's /64 is one address.
  auto b1 = limits.TryAcquire("2001:db8::1");
  ASSERT_TRUE(b1);
  EXPECT_EQ(limits.for_address("2001:db8::2"), 1u);
  EXPECT_FALSE(limits.TryAcquire("192.0.2.9"));  // the total cap
  EXPECT_EQ(limits.total(), 3u);
  ConnectionLimits::Slot moved = std::move(a1);
  EXPECT_EQ(limits.total(), 3u);  // moving is not releasing
  moved = ConnectionLimits::Slot();
  EXPECT_EQ(limits.total(), 2u);
  EXPECT_EQ(limits.for_address("192.0.2.1"), 1u);
  EXPECT_TRUE(limits.TryAcquire("192.0.2.1"));  // released again at once
  EXPECT_EQ(limits.total(), 2u);
}

TEST(HttpServerLimitsTest, ConnectionOverTheAddressCapIsClosedAndOthersAreServed) {
  auto server = StartServer([](ServerOptions& o) { o.max_connections_per_address = 2; });
  ASSERT_NE(server, nullptr);
  Client first(server->port(), "127.0.0.1");
  Client second(server->port(), "127.0.0.1");
  ASSERT_TRUE(first.connected() && second.connected());
  ASSERT_EQ(first.Get("/hello"), 200);
  ASSERT_EQ(second.Get("/hello"), 200);

  Client third(server->port(), "127.0.0.1");
  EXPECT_EQ(third.Get("/hello"), -1) << "a third connection from one address was served";
  Client other(server->port(), "127.0.0.2");
  EXPECT_EQ(other.Get("/hello"), 200);
  // The kept-alive connections were not disturbed.
  EXPECT_EQ(first.Get("/hello"), 200);
  EXPECT_EQ(second.Get("/hello"), 200);

  // A closed connection frees its place.
  first.Close();
  EXPECT_TRUE(Eventually([&] {
    Client again(server->port(), "127.0.0.1");
    return again.Get("/hello") == 200;
  }));
}

TEST(HttpServerLimitsTest, ConnectionOverTheGlobalCapIsClosed) {
  auto server = StartServer([](ServerOptions& o) {
    o.max_connections = 2;
    o.max_connections_per_address = 0;
  });
  ASSERT_NE(server, nullptr);
  Client first(server->port(), "127.0.0.1");
  Client second(server->port(), "127.0.0.2");
  ASSERT_EQ(first.Get("/hello"), 200);
  ASSERT_EQ(second.Get("/hello"), 200);
  Client third(server->port(), "127.0.0.3");
  EXPECT_EQ(third.Get("/hello"), -1) << "a connection over the global cap was served";
  EXPECT_EQ(first.Get("/hello"), 200);
  second.Close();
  EXPECT_TRUE(Eventually([&] {
    Client again(server->port(), "127.0.0.3");
    return again.Get("/hello") == 200;
  }));
}

TEST(HttpServerLimitsTest, IdleKeptAliveConnectionIsClosedAfterTheIdleTimeout) {
  // The read timeout is far longer than the wait below: only the idle
  // timeout can close the connection in time.
  auto server = StartServer([](ServerOptions& o) {
    o.idle_timeout_seconds = 1;
    o.read_timeout_seconds = 10 * kReceiveTimeoutSeconds;
  });
  ASSERT_NE(server, nullptr);
  Client client(server->port(), "127.0.0.1");
  ASSERT_EQ(client.Get("/hello"), 200);
  EXPECT_TRUE(client.WaitClosed())
      << "the idle connection was still open after " << kReceiveTimeoutSeconds << " s";
}

TEST(HttpServerLimitsTest, RouteBodyLimitRefusesALargeFormBeforeReadingIt) {
  auto server = StartServer([](ServerOptions&) {});
  ASSERT_NE(server, nullptr);
  // 1 MiB announced, none of it sent: the answer cannot wait for the body.
  Client client(server->port(), "127.0.0.1");
  ASSERT_TRUE(client.Send(
      "POST /t/oauth2/v2.0/token HTTP/1.1\r\nHost: localhost\r\n"
      "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1048576\r\n\r\n"));
  EXPECT_EQ(client.ReadResponse(), 413);
  EXPECT_TRUE(client.WaitClosed());

  // A chunked body stops at the route's limit too: here at a chunk that
  // announces one byte more, before its data is sent.
  Client chunked(server->port(), "127.0.0.1");
  ASSERT_TRUE(
      chunked.Send("POST /t/oauth2/v2.0/token HTTP/1.1\r\nHost: localhost\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n10001\r\n"));
  EXPECT_EQ(chunked.ReadResponse(), 413);
}

TEST(HttpServerLimitsTest, RouteBodyLimitLeavesOtherRoutesAndSmallFormsAlone) {
  auto server = StartServer([](ServerOptions&) {});
  ASSERT_NE(server, nullptr);
  Client client(server->port(), "127.0.0.1");
  std::string form(kTokenBodyLimit, 'f');
  ASSERT_TRUE(
      client.Send("POST /t/oauth2/v2.0/token HTTP/1.1\r\nHost: localhost\r\n"
                  "Content-Length: " +
                  std::to_string(form.size()) + "\r\n\r\n" + form));
  EXPECT_EQ(client.ReadResponse(), 200);
  std::string large(1024 * 1024, 'x');
  ASSERT_TRUE(client.Send("POST /secrets/a HTTP/1.1\r\nHost: localhost\r\nContent-Length: " +
                          std::to_string(large.size()) + "\r\n\r\n" + large));
  EXPECT_EQ(client.ReadResponse(), 200);
}

}  // namespace
}  // namespace coffer::net
