// SendRequest reads its URL with http::ParseUrl, the parser of the server's
// URL checks: what a check refuses the client refuses too, before any
// network, and the Host it sends is the authority the check saw.

#include <unistd.h>

#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "http/message.h"
#include "net/http_client.h"

#include <netinet/in.h>
#include <sys/socket.h>

namespace coffer::net {
namespace {

TEST(HttpClientUrl, RefusesWhatTheUrlCheckRefusesBeforeConnecting) {
  for (const char* url : {
           "http://localhost?.attacker.example/",
           "http://localhost#@attacker.example/",
           "http://127.0.0.1@attacker.example/",
           "http://localhost\\.attacker.example/",
           "http://127.1/",
           "http://::1/",
           "http://localhost:0/",
           "http://localhost/a b",
       }) {
    EXPECT_FALSE(http::IsTrustworthyUrl(url)) << url;
    ClientRequest req;
    req.url = url;
    req.timeout_seconds = 5;
    StatusOr<http::Response> res = SendRequest(req);
    ASSERT_FALSE(res.ok()) << url;
    EXPECT_EQ(res.status().code(), StatusCode::kInvalidArgument)
        << url << ": " << res.status().ToString();
  }
}

// OneShotServer accepts one connection on [::1], keeps the request head and
// answers 200.
class OneShotServer {
 public:
  OneShotServer() {
    listen_ = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in6 addr{};
    addr.sin6_family = AF_INET6;
    addr.sin6_addr = in6addr_loopback;
    socklen_t len = sizeof(addr);
    if (listen_ < 0 || ::bind(listen_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::listen(listen_, 1) != 0 ||
        ::getsockname(listen_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return;
    }
    port_ = ntohs(addr.sin6_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~OneShotServer() {
    if (thread_.joinable()) {
      ::shutdown(listen_, SHUT_RDWR);
      thread_.join();
    }
    if (listen_ >= 0) {
      ::close(listen_);
    }
  }
  int port() const { return port_; }
  // The request head; waits for the connection to be served.
  const std::string& head() {
    if (thread_.joinable()) {
      thread_.join();
    }
    return head_;
  }

 private:
  void Serve() {
    int fd = ::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      return;
    }
    char buf[4096];
    while (head_.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n <= 0) {
        break;
      }
      head_.append(buf, static_cast<size_t>(n));
    }
    const std::string answer =
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    (void)!::write(fd, answer.data(), answer.size());
    ::close(fd);
  }

  int listen_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::string head_;
};

TEST(HttpClientUrl, SendsAnIpv6HostInBrackets) {
  OneShotServer server;
  if (server.port() == 0) {
    GTEST_SKIP() << "no IPv6 loopback address ([::1]) on this machine";
  }
  ClientRequest req;
  req.url = "http://[::1]:" + std::to_string(server.port()) + "/metadata?x=1";
  req.keep_alive = false;
  req.timeout_seconds = 30;
  StatusOr<http::Response> res = SendRequest(req);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "ok");
  EXPECT_NE(server.head().find("GET /metadata?x=1 HTTP/1.1\r\n"), std::string::npos)
      << server.head();
  EXPECT_NE(server.head().find("\r\nHost: [::1]:" + std::to_string(server.port()) + "\r\n"),
            std::string::npos)
      << server.head();
}

}  // namespace
}  // namespace coffer::net
