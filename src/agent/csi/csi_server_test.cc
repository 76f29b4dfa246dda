#include "agent/csi/csi_server.h"

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "agent/csi/provider.grpc.pb.h"
#include "common/testing/temp_dir.h"
#include "common/testing/wait.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

namespace coffer::agent {
namespace {

namespace pb = ::v1alpha1;
using std::chrono::milliseconds;

// A one-shot gate for handlers that must block until the test lets them go.
class Gate {
 public:
  void Open() {
    {
      std::lock_guard lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  void Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

CsiMountResponse OneObject() {
  CsiMountResponse response;
  response.object_version.push_back({"secret/one", "v1"});
  return response;
}

class Client {
 public:
  explicit Client(const std::string& socket_path)
      : channel_(grpc::CreateChannel("unix:" + socket_path, grpc::InsecureChannelCredentials())),
        stub_(pb::CSIDriverProvider::NewStub(channel_)) {}

  grpc::Status Mount(const pb::MountRequest& request, pb::MountResponse* response,
                     milliseconds timeout = milliseconds(20000)) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + timeout);
    return stub_->Mount(&context, request, response);
  }

  grpc::Status Version(pb::VersionResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + milliseconds(20000));
    pb::VersionRequest request;
    request.set_version("v1alpha1");
    return stub_->Version(&context, request, response);
  }

  // A unary call with raw bytes as the request, for what a typed stub
  // cannot send.
  grpc::Status RawCall(const std::string& method, const std::string& request_bytes,
                       std::string* response_bytes) {
    grpc::Slice slice(request_bytes);
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + milliseconds(20000));
    grpc::GenericStub stub(channel_);
    std::promise<grpc::Status> done;
    stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                   [&](grpc::Status status) { done.set_value(std::move(status)); });
    grpc::Status status = done.get_future().get();
    std::vector<grpc::Slice> slices;
    response_bytes->clear();
    if (status.ok() && response.Dump(&slices).ok()) {
      for (const grpc::Slice& s : slices) {
        response_bytes->append(reinterpret_cast<const char*>(s.begin()), s.size());
      }
    }
    return status;
  }

  // grpc.health.v1.Health/Check, with the request and response as raw
  // protobuf bytes (HealthCheckRequest{service}, HealthCheckResponse{status}).
  grpc::Status HealthCheck(const std::string& service, std::string* response_bytes) {
    std::string request_bytes;
    if (!service.empty()) {
      request_bytes = std::string("\x0a") + static_cast<char>(service.size()) + service;
    }
    return RawCall("/grpc.health.v1.Health/Check", request_bytes, response_bytes);
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::CSIDriverProvider::Stub> stub_;
};

class CsiServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = test::TempDir::Create("coffer-csi-", "/tmp");  // short: a socket goes inside
    ASSERT_TRUE(tmp.ok()) << tmp.status().ToString();
    tmp_ = std::move(*tmp);
    dir_ = tmp_.path();
    path_ = dir_ + "/coffer.sock";
  }

  std::unique_ptr<CsiProviderServer> StartOrDie(CsiMountHandler handler,
                                                CsiServerOptions options = {}) {
    auto server = CsiProviderServer::Start(path_, std::move(handler), "1.2.3", options);
    EXPECT_TRUE(server.ok()) << server.status().ToString();
    return server.ok() ? std::move(*server) : nullptr;
  }

  test::TempDir tmp_;
  std::string dir_;
  std::string path_;
};

TEST_F(CsiServerTest, VersionAnswersProtocolAndRuntime) {
  auto server = StartOrDie([](const CsiMountRequest&) { return OneObject(); });
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->socket_path(), path_);
  pb::VersionResponse response;
  grpc::Status status = Client(path_).Version(&response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.version(), "v1alpha1");
  EXPECT_EQ(response.runtime_name(), "coffer");
  EXPECT_EQ(response.runtime_version(), "1.2.3");
}

TEST_F(CsiServerTest, HandlerSeesExactlyTheRequest) {
  std::mutex mu;
  std::optional<CsiMountRequest> seen;
  auto server = StartOrDie([&](const CsiMountRequest& request) {
    std::lock_guard lock(mu);
    seen = request;
    return OneObject();
  });
  ASSERT_NE(server, nullptr);

  pb::MountRequest request;
  request.set_attributes(
      R"({"keyvaultName":"kv","csi.storage.k8s.io/pod.name":"app-7d9c","objects":"array:\n  - x\n","ü":"ø"})");
  request.set_secrets("null");
  request.set_target_path("/var/lib/kubelet/pods/1b7b/volumes/kubernetes.io~csi/v/mount");
  request.set_permission("420");
  for (int i = 0; i < 3; ++i) {
    pb::ObjectVersion* version = request.add_current_object_version();
    version->set_id("secret/s" + std::to_string(i));
    version->set_version("ver" + std::to_string(i));
  }
  pb::MountResponse response;
  grpc::Status status = Client(path_).Mount(request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();

  std::lock_guard lock(mu);
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->attributes, request.attributes());
  EXPECT_EQ(seen->secrets, "null");
  EXPECT_EQ(seen->target_path, request.target_path());
  EXPECT_EQ(seen->permission, "420");
  ASSERT_EQ(seen->current_object_version.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(seen->current_object_version[i].id, "secret/s" + std::to_string(i));
    EXPECT_EQ(seen->current_object_version[i].version, "ver" + std::to_string(i));
  }
}

TEST_F(CsiServerTest, ResponseRoundTrips) {
  std::string binary;
  for (int i = 0; i < 256; ++i) {
    binary.push_back(static_cast<char>(i));
  }
  binary += std::string(3, '\0');
  const int kModes[] = {0, 0400, 0440, 0644, 0777};
  CsiMountResponse want;
  want.object_version = {{"secret/a", "1"}, {"key/b", "2"}, {"cert/c", ""}};
  for (int i = 0; i < 300; ++i) {
    CsiFile file;
    // Appends, not "f" + std::to_string(i): GCC 12 at -O3 warns falsely on
    // that (-Wrestrict, GCC bug 105329).
    file.path = i % 2 ? "dir/sub/f" : "f";
    file.path += std::to_string(i);
    file.mode = kModes[i % 5];
    file.contents = std::to_string(i) + binary;
    want.files.push_back(file);
  }
  want.files.push_back({"empty", 0644, ""});
  auto server = StartOrDie([&](const CsiMountRequest&) { return want; });
  ASSERT_NE(server, nullptr);

  pb::MountResponse response;
  grpc::Status status = Client(path_).Mount(pb::MountRequest(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.object_version_size(), 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(response.object_version(i).id(), want.object_version[i].id);
    EXPECT_EQ(response.object_version(i).version(), want.object_version[i].version);
  }
  ASSERT_EQ(response.files_size(), static_cast<int>(want.files.size()));
  for (size_t i = 0; i < want.files.size(); ++i) {
    const pb::File& got = response.files(static_cast<int>(i));
    EXPECT_EQ(got.path(), want.files[i].path);
    EXPECT_EQ(got.mode(), want.files[i].mode);
    EXPECT_EQ(got.contents(), want.files[i].contents) << "file " << i;
  }
  EXPECT_EQ(response.files(1).contents().size(), 1 + 259u);
  EXPECT_FALSE(response.has_error());
}

TEST_F(CsiServerTest, ProviderErrorCodeIsSent) {
  auto server = StartOrDie([](const CsiMountRequest&) {
    CsiMountResponse response = OneObject();
    response.error_code = "KeyVaultThrottled";
    return response;
  });
  ASSERT_NE(server, nullptr);
  pb::MountResponse response;
  ASSERT_TRUE(Client(path_).Mount(pb::MountRequest(), &response).ok());
  EXPECT_EQ(response.error().code(), "KeyVaultThrottled");
}

TEST_F(CsiServerTest, StatusErrorsBecomeTheSameGrpcCodeAndMessage) {
  std::atomic<int> code{0};
  auto server = StartOrDie([&](const CsiMountRequest&) -> StatusOr<CsiMountResponse> {
    const int c = code.load();
    return Status(static_cast<StatusCode>(c), "failure number " + std::to_string(c), "Reason");
  });
  ASSERT_NE(server, nullptr);
  Client client(path_);
  for (int c = 1; c <= 16; ++c) {
    code = c;
    pb::MountResponse response;
    grpc::Status status = client.Mount(pb::MountRequest(), &response);
    EXPECT_EQ(static_cast<int>(status.error_code()), c);
    EXPECT_EQ(status.error_message(), "failure number " + std::to_string(c));
  }
}

TEST_F(CsiServerTest, NamedErrorsMapAsTheDriverSeesThem) {
  std::atomic<int> which{0};
  auto server = StartOrDie([&](const CsiMountRequest&) -> StatusOr<CsiMountResponse> {
    switch (which.load()) {
      case 0:
        return InvalidArgumentError("objects: 'db-pass' has no objectType");
      case 1:
        return PermissionDeniedError("the identity may not read secret 'db-pass'");
      default:
        return UnavailableError("the vault at https://kv.example is unreachable");
    }
  });
  ASSERT_NE(server, nullptr);
  Client client(path_);
  pb::MountResponse response;
  grpc::Status status = client.Mount(pb::MountRequest(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "objects: 'db-pass' has no objectType");
  which = 1;
  status = client.Mount(pb::MountRequest(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(status.error_message(), "the identity may not read secret 'db-pass'");
  which = 2;
  status = client.Mount(pb::MountRequest(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(), "the vault at https://kv.example is unreachable");
}

TEST_F(CsiServerTest, HealthCheckServes) {
  auto server = StartOrDie([](const CsiMountRequest&) { return OneObject(); });
  ASSERT_NE(server, nullptr);
  Client client(path_);
  std::string bytes;
  grpc::Status status = client.HealthCheck("", &bytes);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(bytes, std::string("\x08\x01"));  // status: SERVING
  bytes.clear();
  status = client.HealthCheck("v1alpha1.CSIDriverProvider", &bytes);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(bytes, std::string("\x08\x01"));
  EXPECT_EQ(client.HealthCheck("no.such.Service", &bytes).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(CsiServerTest, SocketIsOwnerOnlyAndUmaskIsRestored) {
  const mode_t before = ::umask(0022);
  auto server = StartOrDie([](const CsiMountRequest&) { return OneObject(); });
  const mode_t after = ::umask(before);
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(after, 0022u);
  struct stat st {};
  ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777 & ~mode_t{0600}, 0u) << std::oct << (st.st_mode & 07777);
  EXPECT_EQ(st.st_uid, ::geteuid());
}

TEST_F(CsiServerTest, StaleSocketIsReplaced) {
  // A socket nobody listens on, as a crashed provider leaves behind.
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path_.data(), path_.size());
  ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)), 0);
  ::close(fd);
  // Inode numbers are reused at once on tmpfs, so the mode tells the old
  // socket from the new one.
  ASSERT_EQ(::chmod(path_.c_str(), 0666), 0);

  auto server = StartOrDie([](const CsiMountRequest&) { return OneObject(); });
  ASSERT_NE(server, nullptr);
  struct stat st {};
  ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u) << std::oct << (st.st_mode & 07777);
  pb::VersionResponse response;
  EXPECT_TRUE(Client(path_).Version(&response).ok());
}

TEST_F(CsiServerTest, LiveSocketIsNotTakenOver) {
  auto first = StartOrDie([](const CsiMountRequest&) { return OneObject(); });
  ASSERT_NE(first, nullptr);
  auto second = CsiProviderServer::Start(
      path_, [](const CsiMountRequest&) { return OneObject(); }, "2");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  pb::VersionResponse response;
  ASSERT_TRUE(Client(path_).Version(&response).ok());
  EXPECT_EQ(response.runtime_version(), "1.2.3");
}

TEST_F(CsiServerTest, NonSocketAtThePathIsRefusedAndKept) {
  { std::ofstream(path_) << "precious"; }
  auto server = CsiProviderServer::Start(
      path_, [](const CsiMountRequest&) { return OneObject(); }, "1");
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(server.status().message().find("not a socket"), std::string_view::npos);
  std::ifstream in(path_);
  std::string contents((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(contents, "precious");

  const std::string link = dir_ + "/link.sock";
  ASSERT_EQ(::symlink(path_.c_str(), link.c_str()), 0);
  server = CsiProviderServer::Start(
      link, [](const CsiMountRequest&) { return OneObject(); }, "1");
  EXPECT_EQ(server.status().code(), StatusCode::kFailedPrecondition);

  const std::string sub = dir_ + "/subdir";
  ASSERT_EQ(::mkdir(sub.c_str(), 0700), 0);
  server = CsiProviderServer::Start(
      sub, [](const CsiMountRequest&) { return OneObject(); }, "1");
  EXPECT_EQ(server.status().code(), StatusCode::kFailedPrecondition);
  struct stat st {};
  EXPECT_EQ(::lstat(sub.c_str(), &st), 0);
}

TEST_F(CsiServerTest, BadPathsAndOptionsAreInvalidArguments) {
  auto handler = [](const CsiMountRequest&) { return OneObject(); };
  auto code = [&](const std::string& path, CsiServerOptions options = {}) {
    return CsiProviderServer::Start(path, handler, "1", options).status().code();
  };
  EXPECT_EQ(code("relative.sock"), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(""), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(dir_ + "/missing/coffer.sock"), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(dir_ + "/"), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(dir_ + std::string("/a\0b", 4)), StatusCode::kInvalidArgument);
  EXPECT_EQ(CsiProviderServer::Start(path_, nullptr, "1").status().code(),
            StatusCode::kInvalidArgument);
  CsiServerOptions options;
  options.max_threads = 0;
  EXPECT_EQ(code(path_, options), StatusCode::kInvalidArgument);
  options = {};
  options.max_receive_bytes = 0;
  EXPECT_EQ(code(path_, options), StatusCode::kInvalidArgument);

  // sun_path holds 107 bytes and a NUL: 107 works, 108 does not.
  std::string long_dir = dir_ + "/";
  long_dir += std::string(107 - long_dir.size() - 1 - 6, 'd');
  ASSERT_EQ(::mkdir(long_dir.c_str(), 0700), 0);
  const std::string longest = long_dir + "/a.sock";
  ASSERT_EQ(longest.size(), 107u);
  auto server = CsiProviderServer::Start(longest, handler, "1");
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  pb::VersionResponse response;
  EXPECT_TRUE(Client(longest).Version(&response).ok());
  (*server)->Shutdown();
  auto too_long = CsiProviderServer::Start(long_dir + "/ab.sock", handler, "1");
  EXPECT_EQ(too_long.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(too_long.status().message().find("108 bytes"), std::string_view::npos)
      << too_long.status().message();
}

TEST_F(CsiServerTest, UnwritableDirectoryIsPermissionDenied) {
  if (::geteuid() == 0) {
    GTEST_SKIP() << "root writes anywhere";
  }
  const std::string sub = dir_ + "/ro";
  ASSERT_EQ(::mkdir(sub.c_str(), 0500), 0);
  auto server = CsiProviderServer::Start(
      sub + "/coffer.sock", [](const CsiMountRequest&) { return OneObject(); }, "1");
  EXPECT_EQ(server.status().code(), StatusCode::kPermissionDenied);
}

TEST_F(CsiServerTest, OversizedMessagesAreRefusedAndServingGoesOn) {
  std::atomic<int> calls{0};
  std::atomic<bool> big_response{false};
  CsiServerOptions options;
  options.max_receive_bytes = 64 << 10;
  options.max_send_bytes = 256 << 10;
  auto server = StartOrDie(
      [&](const CsiMountRequest&) {
        ++calls;
        CsiMountResponse response = OneObject();
        if (big_response) {
          response.files.push_back({"big", 0644, std::string(300 << 10, 'x')});
        }
        return response;
      },
      options);
  ASSERT_NE(server, nullptr);
  Client client(path_);

  pb::MountRequest request;
  request.set_attributes(std::string(100 << 10, 'a'));
  pb::MountResponse response;
  grpc::Status status = client.Mount(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_EQ(calls.load(), 0);

  big_response = true;
  status = client.Mount(pb::MountRequest(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_EQ(calls.load(), 1);

  big_response = false;
  request.set_attributes(std::string(60 << 10, 'a'));
  status = client.Mount(request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.object_version_size(), 1);
}

TEST_F(CsiServerTest, ConcurrentMountsAreAllAnsweredWithinTheThreadBound) {
  const int bound = CsiServerOptions().max_threads;
  std::atomic<int> running{0};
  std::atomic<int> most{0};
  std::atomic<int> calls{0};
  std::atomic<bool> gave_up{false};
  auto server = StartOrDie([&](const CsiMountRequest& request) {
    const int now = ++running;
    int seen = most.load();
    while (now > seen && !most.compare_exchange_weak(seen, now)) {
    }
    // Each handler holds its thread until the bound is reached, however
    // slowly the calls arrive: then `bound` handlers ran side by side. A
    // server that runs fewer at once makes the first wait give up (once).
    if (!gave_up.load() && !test::WaitUntil([&] { return most.load() >= bound; })) {
      gave_up = true;
    }
    --running;
    ++calls;
    CsiMountResponse response;
    response.object_version.push_back({"echo", request.attributes});
    return response;
  });
  ASSERT_NE(server, nullptr);

  // One channel for all, as the driver keeps one client per provider.
  Client client(path_);
  constexpr int kCalls = 16;
  std::vector<std::thread> threads;
  std::vector<grpc::Status> statuses(kCalls);
  std::vector<std::string> echoes(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    threads.emplace_back([&, i] {
      pb::MountRequest request;
      request.set_attributes("call " + std::to_string(i));
      pb::MountResponse response;
      statuses[i] = client.Mount(request, &response);
      if (response.object_version_size() == 1) {
        echoes[i] = response.object_version(0).version();
      }
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  for (int i = 0; i < kCalls; ++i) {
    EXPECT_TRUE(statuses[i].ok()) << i << ": " << statuses[i].error_message();
    EXPECT_EQ(echoes[i], "call " + std::to_string(i));
  }
  EXPECT_EQ(calls.load(), kCalls);
  EXPECT_EQ(most.load(), bound);
  EXPECT_FALSE(gave_up.load()) << "never " << bound << " handlers at once";
}

TEST_F(CsiServerTest, CallsWaitForAHandlerButNotPastTheirDeadline) {
  Gate gate;
  std::atomic<int> calls{0};
  CsiServerOptions options;
  options.max_threads = 1;
  auto server = StartOrDie(
      [&](const CsiMountRequest&) {
        ++calls;
        gate.Wait();
        return OneObject();
      },
      options);
  ASSERT_NE(server, nullptr);
  Client client(path_);
  auto first = std::async(std::launch::async, [&] {
    pb::MountResponse response;
    return client.Mount(pb::MountRequest(), &response);
  });
  ASSERT_TRUE(test::WaitUntil([&] { return calls.load() != 0; }));
  pb::MountResponse response;
  grpc::Status late = client.Mount(pb::MountRequest(), &response, milliseconds(400));
  EXPECT_EQ(late.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(calls.load(), 1) << "the second call ran beside the first";

  // A call without a deadline is answered once the handler is free (the
  // late call above showed that calls wait meanwhile).
  auto waiting = std::async(std::launch::async, [&] {
    pb::MountResponse r;
    return client.Mount(pb::MountRequest(), &r);
  });
  gate.Open();
  EXPECT_TRUE(first.get().ok());
  EXPECT_TRUE(waiting.get().ok());
  // The server keeps the late call waiting until its own deadline, which it
  // reckons from the call's arrival, a little after the client gave up: if
  // the handler came free before that, the late call ran too.
  EXPECT_GE(calls.load(), 2);
  EXPECT_LE(calls.load(), 3);
}

TEST_F(CsiServerTest, CallsBeyondTheWaitingBoundAreRefused) {
  Gate gate;
  std::atomic<int> calls{0};
  CsiServerOptions options;
  options.max_threads = 1;
  options.max_waiting = 1;
  auto server = StartOrDie(
      [&](const CsiMountRequest&) {
        ++calls;
        gate.Wait();
        return OneObject();
      },
      options);
  ASSERT_NE(server, nullptr);
  Client client(path_);
  constexpr int kCalls = 8;
  std::vector<std::future<grpc::Status>> results;
  for (int i = 0; i < kCalls; ++i) {
    results.push_back(std::async(std::launch::async, [&] {
      pb::MountResponse response;
      return client.Mount(pb::MountRequest(), &response);
    }));
  }
  // The refusals come back at once; the accepted calls, one running and
  // max_waiting waiting, hang on the gate.
  constexpr int kAccepted = 2;
  auto ready = [&] {
    int n = 0;
    for (auto& result : results) {
      n += result.wait_for(milliseconds(0)) == std::future_status::ready;
    }
    return n;
  };
  EXPECT_TRUE(test::WaitUntil([&] { return ready() >= kCalls - kAccepted; }));
  EXPECT_EQ(ready(), kCalls - kAccepted);
  EXPECT_EQ(calls.load(), 1);
  int refused = 0;
  for (auto& result : results) {
    if (result.wait_for(milliseconds(0)) == std::future_status::ready) {
      grpc::Status status = result.get();
      EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
          << status.error_message();
      ++refused;
    }
  }
  // The health service does not queue behind Mount.
  std::string bytes;
  EXPECT_TRUE(client.HealthCheck("", &bytes).ok());
  gate.Open();
  int answered = 0;
  for (auto& result : results) {
    if (result.valid()) {
      EXPECT_TRUE(result.get().ok());
      ++answered;
    }
  }
  EXPECT_EQ(answered, kAccepted);
  EXPECT_EQ(refused + answered, kCalls);
  EXPECT_EQ(calls.load(), kAccepted);
  // Served again once the calls are done. A call's place is given back when
  // its handler has returned and its answer is written, which may be just
  // after the client has read that answer: wait for it rather than race it.
  EXPECT_TRUE(test::WaitUntil([&] {
    pb::MountResponse response;
    return client.Mount(pb::MountRequest(), &response).ok();
  }));
}

TEST_F(CsiServerTest, ShutdownRemovesTheSocketAndIsIdempotent) {
  auto server = StartOrDie([](const CsiMountRequest&) { return OneObject(); });
  ASSERT_NE(server, nullptr);
  struct stat st {};
  ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
  server->Shutdown();
  EXPECT_NE(::lstat(path_.c_str(), &st), 0);
  EXPECT_EQ(errno, ENOENT);
  server->Shutdown();
  server.reset();

  // A restart on the same path works, and the destructor cleans up too.
  server = StartOrDie([](const CsiMountRequest&) { return OneObject(); });
  ASSERT_NE(server, nullptr);
  server.reset();
  EXPECT_NE(::lstat(path_.c_str(), &st), 0);
}

TEST_F(CsiServerTest, ShutdownLeavesAReplacedPathAlone) {
  auto server = StartOrDie([](const CsiMountRequest&) { return OneObject(); });
  ASSERT_NE(server, nullptr);
  ASSERT_EQ(::unlink(path_.c_str()), 0);
  { std::ofstream(path_) << "someone else's"; }
  server->Shutdown();
  struct stat st {};
  EXPECT_EQ(::lstat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST_F(CsiServerTest, ShutdownWaitsForRunningHandlers) {
  Gate gate;
  std::atomic<int> calls{0};
  std::atomic<bool> finished{false};
  auto server = StartOrDie([&](const CsiMountRequest&) {
    ++calls;
    gate.Wait();
    finished = true;
    return OneObject();
  });
  ASSERT_NE(server, nullptr);
  Client client(path_);
  auto call = std::async(std::launch::async, [&] {
    pb::MountResponse response;
    return client.Mount(pb::MountRequest(), &response);
  });
  ASSERT_TRUE(test::WaitUntil([&] { return calls.load() != 0; }));
  // The gate opens once Shutdown is under way (it refuses new calls), so
  // that Shutdown has the handler to wait for.
  std::thread opener([&] {
    Client late(path_);
    pb::VersionResponse response;
    EXPECT_TRUE(test::WaitUntil([&] { return !late.Version(&response).ok(); }));
    gate.Open();
  });
  server->Shutdown();
  EXPECT_TRUE(finished.load());
  opener.join();
  call.get();
}

TEST_F(CsiServerTest, HandlerNeverSeesMalformedProtobuf) {
  std::atomic<int> calls{0};
  auto server = StartOrDie([&](const CsiMountRequest&) {
    ++calls;
    return OneObject();
  });
  ASSERT_NE(server, nullptr);
  Client client(path_);
  const std::string kMalformed[] = {
      std::string("\xff\xff\xff"),  // a truncated tag varint
      std::string("\x0a\x05"
                  "ab"),                 // attributes: 5 bytes promised, 2 sent
      std::string("\x0a\x02\xc3\x28"),   // attributes: invalid UTF-8 in a string
      std::string("\x2a\x03\x0a\x09x"),  // current_object_version: truncated inside
      std::string("\x00", 1),            // field number 0
  };
  for (const std::string& bytes : kMalformed) {
    std::string response;
    grpc::Status status = client.RawCall("/v1alpha1.CSIDriverProvider/Mount", bytes, &response);
    EXPECT_FALSE(status.ok()) << "accepted " << ::testing::PrintToString(bytes);
    EXPECT_NE(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  }
  EXPECT_EQ(calls.load(), 0);

  // Unknown fields are proto3's forward compatibility, not malformed.
  std::string response;
  grpc::Status status = client.RawCall("/v1alpha1.CSIDriverProvider/Mount",
                                       std::string("\x0a\x02{}\xa2\x06\x01z", 8), &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(client.RawCall("/v1alpha1.CSIDriverProvider/Unmount", "", &response).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
}

TEST_F(CsiServerTest, GarbageOnTheSocketDoesNotStopServing) {
  std::atomic<int> calls{0};
  auto server = StartOrDie([&](const CsiMountRequest&) {
    ++calls;
    return OneObject();
  });
  ASSERT_NE(server, nullptr);
  const std::string kGarbage[] = {
      "GET / HTTP/1.1\r\nHost: x\r\n\r\n", std::string(100000, '\0'),
      // A valid HTTP/2 preface, then a frame header promising 16 MiB.
      std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\x00\x00\x00\x00\x00\x01", 33),
      "",  // connect and hang up
  };
  for (const std::string& garbage : kGarbage) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_.data(), path_.size());
    ASSERT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)), 0);
    const timeval timeout{5, 0};
    ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)), 0);
    size_t sent = 0;
    while (sent < garbage.size()) {
      const ssize_t n = ::send(fd, garbage.data() + sent, garbage.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) {
        break;  // the server may hang up on us first
      }
      sent += static_cast<size_t>(n);
    }
    ::shutdown(fd, SHUT_WR);
    char buffer[4096];
    while (::recv(fd, buffer, sizeof(buffer), 0) > 0) {
    }
    ::close(fd);
  }
  pb::MountResponse response;
  grpc::Status status = Client(path_).Mount(pb::MountRequest(), &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(calls.load(), 1);
}

TEST(CheckDriverResponseTest, FollowsTheDriversRules) {
  for (const char* good :
       {"a", "a/b", "dir/sub/file.txt", "a/..b", "a/...", "a..", "a..b", ".hidden", ".a/b", "a/.b",
        "x", "secret/db-pass/0", " a", "a b", "tab\tname"}) {
    EXPECT_TRUE(CheckDriverFilePath(good).ok()) << good;
  }
  for (const char* bad :
       {"",      "/a",  "/",     "//a", "..", "../a", "a/..", "a/../b", "..a",  "...",
        "..a/b", "./a", "a/./b", "a/.", ".",  "./",   "a//b", "a/",     "a/b/", "a/b//"}) {
    Status status = CheckDriverFilePath(bad);
    EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition) << "'" << bad << "'";
  }
  EXPECT_TRUE(CheckDriverFilePath(std::string(255, 'n')).ok());
  EXPECT_FALSE(CheckDriverFilePath(std::string(256, 'n')).ok());
  std::string longest;
  while (longest.size() < 4096) {
    longest += std::string(std::min<size_t>(200, 4096 - longest.size() - 1), 'p') + "/";
  }
  longest.back() = 'z';
  ASSERT_EQ(longest.size(), 4096u);
  EXPECT_TRUE(CheckDriverFilePath(longest).ok());
  EXPECT_FALSE(CheckDriverFilePath(longest + "z").ok());

  CsiMountResponse response;
  EXPECT_EQ(CheckDriverResponse(response).message(), "missing object versions");
  response = OneObject();
  EXPECT_TRUE(CheckDriverResponse(response).ok());
  response.files = {{"ok", 0644, "x"}, {"bad//path", 0644, "y"}};
  EXPECT_EQ(CheckDriverResponse(response).code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace coffer::agent
