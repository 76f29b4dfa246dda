// SendRequest's kept-alive connections, against a scripted HTTP/1.1 server
// on a loopback socket that counts the connections it accepts and can
// misbehave as real servers do: close an idle connection, answer
// `Connection: close`, or drop a request on a reused connection unanswered.
// Waits are bounded polls, never timing assertions.

#include "net/http_client.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/testing/wait.h"

#include <netinet/in.h>
#include <sys/socket.h>

namespace coffer::net {
namespace {

enum class Mode {
  kKeepAlive,          // answers every request and keeps the connection
  kCloseWhenIdle,      // closes each connection right after its first answer
  kConnectionClose,    // answers with `Connection: close`, then closes
  kDropSecondRequest,  // reads the second request of a connection, closes unanswered
};

class ScriptedServer {
 public:
  explicit ScriptedServer(Mode mode) : mode_(mode) {
    listen_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(listen_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::listen(listen_, 16) != 0 ||
        ::getsockname(listen_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "cannot listen on loopback";
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Loop(); });
  }
  ~ScriptedServer() {
    stop_ = true;
    thread_.join();
    for (int fd : open_) {
      ::close(fd);
    }
    ::close(listen_);
  }

  int port() const { return port_; }
  int accepted() const { return accepted_.load(); }
  int answered() const { return answered_.load(); }
  int closed() const { return closed_.load(); }
  std::vector<std::string> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

  std::string Url(const std::string& path = "/hello") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  struct Conn {
    int fd;
    std::string in;
    int requests = 0;
  };

  void Loop() {
    std::vector<Conn> conns;
    while (!stop_) {
      std::vector<pollfd> fds{{listen_, POLLIN, 0}};
      for (const Conn& c : conns) {
        fds.push_back({c.fd, POLLIN, 0});
      }
      if (::poll(fds.data(), fds.size(), 20) <= 0) {
        continue;
      }
      if (fds[0].revents & POLLIN) {
        int fd = ::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) {
          conns.push_back({fd, "", 0});
          ++accepted_;
        }
      }
      for (size_t i = 1; i < fds.size(); ++i) {
        if (!(fds[i].revents & (POLLIN | POLLHUP))) {
          continue;
        }
        Conn& c = conns[i - 1];
        char buf[4096];
        ssize_t n = ::read(c.fd, buf, sizeof(buf));
        if (n <= 0) {
          Close(c);
          continue;
        }
        c.in.append(buf, static_cast<size_t>(n));
        Serve(c);
      }
      std::erase_if(conns, [](const Conn& c) { return c.fd < 0; });
    }
    for (Conn& c : conns) {
      open_.push_back(c.fd);
    }
  }

  // Serve answers each whole request in `c.in` (the test's requests carry at
  // most a Content-Length body).
  void Serve(Conn& c) {
    size_t end;
    while (c.fd >= 0 && (end = c.in.find("\r\n\r\n")) != std::string::npos) {
      std::string head = c.in.substr(0, end);
      size_t body = 0;
      if (size_t cl = head.find("Content-Length: "); cl != std::string::npos) {
        body = std::stoul(head.substr(cl + 16));
      }
      if (c.in.size() < end + 4 + body) {
        return;
      }
      c.in.erase(0, end + 4 + body);
      ++c.requests;
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(head);
      }
      if (mode_ == Mode::kDropSecondRequest && c.requests == 2) {
        Close(c);
        return;
      }
      std::string res = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n";
      if (mode_ == Mode::kConnectionClose) {
        res += "Connection: close\r\n";
      }
      res += "\r\nok";
      // Counted before it is written: the client may return, and the test
      // read the count, as soon as the answer is on the wire.
      ++answered_;
      if (::write(c.fd, res.data(), res.size()) != static_cast<ssize_t>(res.size())) {
        Close(c);
        return;
      }
      if (mode_ == Mode::kCloseWhenIdle || mode_ == Mode::kConnectionClose) {
        Close(c);
      }
    }
  }

  void Close(Conn& c) {
    ::close(c.fd);
    c.fd = -1;
    ++closed_;
  }

  const Mode mode_;
  int listen_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::atomic<int> answered_{0};
  std::atomic<int> closed_{0};
  mutable std::mutex mu_;
  std::vector<std::string> requests_;  // GUARDED_BY(mu_)
  std::vector<int> open_;              // closed by the destructor
  std::thread thread_;                 // last: starts once the rest exists
};

ClientRequest Request(const ScriptedServer& server, const std::string& method = "GET") {
  ClientRequest r;
  r.method = method;
  r.url = server.Url();
  r.timeout_seconds = 10;
  if (method == "POST") {
    r.body = "grant_type=client_credentials";
  }
  return r;
}

void ExpectOk(const StatusOr<http::Response>& r) {
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok");
}

TEST(HttpClientPool, ConsecutiveRequestsShareOneConnection) {
  ScriptedServer server(Mode::kKeepAlive);
  for (int i = 0; i < 5; ++i) {
    ExpectOk(SendRequest(Request(server, i % 2 ? "POST" : "GET")));
  }
  EXPECT_EQ(server.answered(), 5);
  EXPECT_EQ(server.accepted(), 1);
}

TEST(HttpClientPool, ConnectionsToPlacesNoLongerAskedForDoNotTakeEveryIdleSlot) {
  // One idle connection to each of more places than the pool keeps in all:
  // the newest place's connection is kept (the oldest idle one gives way),
  // so asking it again opens nothing new.
  constexpr int kPlaces = 65;  // the pool keeps 64 idle connections
  std::vector<std::unique_ptr<ScriptedServer>> servers;
  for (int i = 0; i < kPlaces; ++i) {
    servers.push_back(std::make_unique<ScriptedServer>(Mode::kKeepAlive));
    ExpectOk(SendRequest(Request(*servers.back())));
  }
  ScriptedServer& newest = *servers.back();
  ExpectOk(SendRequest(Request(newest)));
  EXPECT_EQ(newest.accepted(), 1);
}

TEST(HttpClientPool, KeepAliveFalseSendsConnectionCloseOnFreshConnections) {
  ScriptedServer server(Mode::kKeepAlive);
  for (int i = 0; i < 3; ++i) {
    ClientRequest r = Request(server);
    r.keep_alive = false;
    ExpectOk(SendRequest(r));
  }
  EXPECT_EQ(server.accepted(), 3);
  for (const std::string& head : server.requests()) {
    EXPECT_NE(head.find("Connection: close"), std::string::npos) << head;
  }
}

TEST(HttpClientPool, AConnectionTheServerClosedIsNotReused) {
  ScriptedServer server(Mode::kCloseWhenIdle);
  for (int i = 0; i < 3; ++i) {
    // Each request, a POST too, goes out on a new connection once the server
    // has closed the last one; none fails.
    ExpectOk(SendRequest(Request(server, i == 1 ? "POST" : "GET")));
    ASSERT_TRUE(test::WaitUntil([&] { return server.closed() == i + 1; }));
  }
  EXPECT_EQ(server.accepted(), 3);
  EXPECT_EQ(server.answered(), 3);
}

TEST(HttpClientPool, ConnectionCloseInTheResponseEndsTheConnection) {
  ScriptedServer server(Mode::kConnectionClose);
  for (int i = 0; i < 3; ++i) {
    ExpectOk(SendRequest(Request(server)));
  }
  EXPECT_EQ(server.accepted(), 3);
}

TEST(HttpClientPool, AGetDroppedOnAReusedConnectionIsSentAgainOnANewOne) {
  ScriptedServer server(Mode::kDropSecondRequest);
  ExpectOk(SendRequest(Request(server)));
  ExpectOk(SendRequest(Request(server)));  // dropped on the first connection, sent again
  EXPECT_EQ(server.accepted(), 2);
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST(HttpClientPool, APostDroppedOnAReusedConnectionIsNotSentTwice) {
  ScriptedServer server(Mode::kDropSecondRequest);
  ExpectOk(SendRequest(Request(server, "POST")));
  StatusOr<http::Response> second = SendRequest(Request(server, "POST"));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(server.requests().size(), 2u);  // the server saw it once
  EXPECT_EQ(server.accepted(), 1);
}

TEST(HttpClientPool, PooledSocketsAreCloseOnExec) {
  ScriptedServer server(Mode::kKeepAlive);
  ExpectOk(SendRequest(Request(server)));
  int client_sockets = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    int fd = std::stoi(entry.path().filename().string());
    sockaddr_in peer{};
    socklen_t len = sizeof(peer);
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0 ||
        peer.sin_family != AF_INET || ntohs(peer.sin_port) != server.port()) {
      continue;
    }
    ++client_sockets;
    EXPECT_NE(::fcntl(fd, F_GETFD) & FD_CLOEXEC, 0) << "fd " << fd;
  }
  EXPECT_EQ(client_sockets, 1);  // the kept-alive connection
}

// A listener that never answers: connecting succeeds (the kernel's backlog),
// the TLS handshake never ends. Four requests at once to it: one opens
// a connection, the other three wait for it, so exactly one connection is in
// the accept queue once the three are waiting. Closing the listener fails
// them all; none hangs.
TEST(HttpClientPool, AtMostOneConnectionToAPlaceIsOpenedAtATime) {
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(::listen(listener, 16), 0);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ClientRequest r;
  r.url = "https://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/hello";
  r.timeout_seconds = 20;
  std::atomic<int> failed{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i) {
    clients.emplace_back([&] {
      if (!SendRequest(r).ok()) {
        ++failed;
      }
    });
  }
  // The first connection reaches the queue; once the other three wait for
  // it, no other can come, so the queue then holds exactly that one.
  std::vector<int> accepted;
  auto accept_all = [&] {
    for (int fd; (fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC)) >= 0;) {  // no block
      accepted.push_back(fd);
    }
  };
  EXPECT_TRUE(test::WaitUntil([&] {
    accept_all();
    return !accepted.empty() && ConnectionWaitersForTesting() == 3;
  }));
  accept_all();
  EXPECT_EQ(accepted.size(), 1u);
  ::close(listener);
  for (int fd : accepted) {
    ::close(fd);  // the handshake in flight ends; the waiters find nobody listening
  }
  for (auto& t : clients) {
    t.join();
  }
  EXPECT_EQ(failed, 4);
}

// A request with a connect_address goes to that address, whatever its host
// resolves to (".invalid" never resolves), and names its host in Host; a
// kept-alive connection to the host at another address is not reused for it.
TEST(HttpClientConnectAddress, ConnectsToTheGivenAddressAndNamesTheUrlsHost) {
  ScriptedServer server(Mode::kKeepAlive);
  ClientRequest r = Request(server);
  const std::string host = "hooks.rebind.invalid:" + std::to_string(server.port());
  r.url = "http://" + host + "/hello";
  r.connect_address = "127.0.0.1";
  ExpectOk(SendRequest(r));
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_NE(server.requests()[0].find("\r\nHost: " + host), std::string::npos)
      << server.requests()[0];
  // The same host at another address: nothing listens there (the server
  // binds 127.0.0.1 only), so only a connection of its own could answer.
  r.connect_address = "127.0.0.2";
  auto elsewhere = SendRequest(r);
  EXPECT_EQ(elsewhere.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(server.answered(), 1);
  // An address, never a name to look up.
  r.connect_address = "localhost";
  EXPECT_FALSE(SendRequest(r).ok());
  r.connect_address.clear();
  EXPECT_FALSE(SendRequest(r).ok()) << "the host itself does not resolve";
}

}  // namespace
}  // namespace coffer::net
