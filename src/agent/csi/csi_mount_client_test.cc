// Runs the built coffer-csi-client (its path comes from CMake) against a
// real CsiProviderServer on a Unix socket. No gRPC here: the tool is the
// client, and the provider side is the public header.

#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "agent/csi/csi_server.h"
#include "common/encoding.h"
#include "common/files.h"
#include "common/json.h"
#include "common/testing/temp_dir.h"

#include <sys/stat.h>
#include <sys/wait.h>

namespace coffer::agent {
namespace {

using std::chrono::milliseconds;

CsiMountResponse OneObject() {
  CsiMountResponse response;
  response.object_version.push_back({"secret/one", "v1"});
  return response;
}

// Runs the coffer-csi-client binary and collects its stdout and exit code.
struct ClientRun {
  int exit_code = -1;
  std::string out;
  std::string err;
  std::optional<Json> json;
};

ClientRun RunClient(const std::vector<std::string>& args, const std::string& stderr_path) {
  std::vector<char*> argv;
  std::string binary = COFFER_CSI_CLIENT;
  argv.push_back(binary.data());
  std::vector<std::string> copies = args;
  for (std::string& arg : copies) {
    argv.push_back(arg.data());
  }
  argv.push_back(nullptr);
  int fds[2];
  ClientRun run;
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return run;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = -1;
  const int spawned = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (spawned == 0) {
    char buffer[4096];
    ssize_t n;
    while ((n = ::read(fds[0], buffer, sizeof(buffer))) > 0) {
      run.out.append(buffer, static_cast<size_t>(n));
    }
    int wstatus = 0;
    if (::waitpid(pid, &wstatus, 0) == pid && WIFEXITED(wstatus)) {
      run.exit_code = WEXITSTATUS(wstatus);
    }
  }
  ::close(fds[0]);
  run.json = ParseJson(run.out);
  StatusOr<std::string> err = ReadFile(stderr_path);
  if (err.ok()) {
    run.err = std::move(*err);
  }
  return run;
}

class CsiClientBinaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = test::TempDir::Create("coffer-csi-", "/tmp");  // short: a socket goes inside
    ASSERT_TRUE(tmp.ok()) << tmp.status().ToString();
    tmp_ = std::move(*tmp);
    dir_ = tmp_.path();
    path_ = dir_ + "/coffer.sock";
  }

  std::unique_ptr<CsiProviderServer> StartOrDie(CsiMountHandler handler) {
    auto server = CsiProviderServer::Start(path_, std::move(handler), "1.2.3");
    EXPECT_TRUE(server.ok()) << server.status().ToString();
    return server.ok() ? std::move(*server) : nullptr;
  }

  // The socket, a deadline well above a loaded machine's, and `extra`.
  std::vector<std::string> Args(std::vector<std::string> extra) {
    std::vector<std::string> args = {"--socket", path_, "--timeout-ms", "20000"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  ClientRun RunClientBinary(const std::vector<std::string>& args) {
    return RunClient(args, dir_ + "/client.stderr");
  }

  test::TempDir tmp_;
  std::string dir_;
  std::string path_;
};

TEST_F(CsiClientBinaryTest, MountsAsTheDriverDoes) {
  std::mutex mu;
  std::optional<CsiMountRequest> seen;
  const std::string binary("b\0i\xffn\n", 6);
  auto server = StartOrDie([&](const CsiMountRequest& request) {
    std::lock_guard lock(mu);
    seen = request;
    CsiMountResponse response;
    response.object_version = {{"secret/db-pass", "v7"}, {"cert/tls", "c1"}};
    response.files = {{"db-pass", 0400, binary}, {"tls/cert.pem", 0644, "PEM"}};
    return response;
  });
  ASSERT_NE(server, nullptr);
  const std::string attributes = R"({"objects":"array:\n  - |\n    objectName: db-pass\n"})";
  const std::string out_dir = dir_ + "/out";
  ClientRun run = RunClientBinary(Args({"--attributes", attributes, "--write-dir", out_dir}));
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  ASSERT_TRUE(run.json.has_value()) << run.out;
  const Json& json = *run.json;
  EXPECT_EQ(StringMember(json["version"], "version"), "v1alpha1");
  EXPECT_EQ(StringMember(json["version"], "runtime_name"), "coffer");
  EXPECT_EQ(StringMember(json["version"], "runtime_version"), "1.2.3");
  ASSERT_TRUE(json["object_version"].is_array());
  ASSERT_EQ(json["object_version"].size(), 2u);
  EXPECT_EQ(StringMember(json["object_version"][0], "id"), "secret/db-pass");
  EXPECT_EQ(StringMember(json["object_version"][1], "version"), "c1");
  ASSERT_TRUE(json["files"].is_array());
  ASSERT_EQ(json["files"].size(), 2u);
  EXPECT_EQ(StringMember(json["files"][0], "path"), "db-pass");
  EXPECT_EQ(json["files"][0]["mode"], 256);
  EXPECT_EQ(Base64Decode(StringMember(json["files"][0], "contents_base64")), binary);
  EXPECT_EQ(json["files"][1]["mode"], 420);
  EXPECT_EQ(StringMember(json, "error_code"), "");
  EXPECT_FALSE(json.contains("driver_error"));

  {
    std::lock_guard lock(mu);
    ASSERT_TRUE(seen.has_value());
    EXPECT_EQ(seen->attributes, attributes);
    EXPECT_EQ(seen->secrets, "null");
    EXPECT_EQ(seen->permission, "420");
    EXPECT_EQ(seen->target_path, "");
  }
  EXPECT_EQ(FileMode(out_dir + "/db-pass"), 0400);
  EXPECT_EQ(FileMode(out_dir + "/tls/cert.pem"), 0644);
  StatusOr<std::string> written = ReadFile(out_dir + "/db-pass");
  ASSERT_TRUE(written.ok());
  EXPECT_EQ(*written, binary);

  // The other flags reach the provider verbatim.
  const std::string attributes_file = dir_ + "/attributes.json";
  { std::ofstream(attributes_file) << R"({"a":"b"})"; }
  run = RunClientBinary(Args({"--attributes-file", attributes_file, "--secrets",
                              R"({"clientid":"x"})", "--permission=384", "--target-path",
                              "/var/lib/kubelet/pods/p/volumes/kubernetes.io~csi/v/mount"}));
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  std::lock_guard lock(mu);
  EXPECT_EQ(seen->attributes, R"({"a":"b"})");
  EXPECT_EQ(seen->secrets, R"({"clientid":"x"})");
  EXPECT_EQ(seen->permission, "384");
  EXPECT_EQ(seen->target_path, "/var/lib/kubelet/pods/p/volumes/kubernetes.io~csi/v/mount");
}

TEST_F(CsiClientBinaryTest, GrpcErrorsExitTwoWithTheCodeName) {
  std::atomic<int> delay_ms{0};
  auto server = StartOrDie([&](const CsiMountRequest&) -> StatusOr<CsiMountResponse> {
    std::this_thread::sleep_for(milliseconds(delay_ms.load()));
    return PermissionDeniedError("the identity may not read secret 'db-pass'", "Forbidden");
  });
  ASSERT_NE(server, nullptr);
  ClientRun run = RunClientBinary(Args({"--attributes", "{}"}));
  ASSERT_EQ(run.exit_code, 2) << run.out << run.err;
  ASSERT_TRUE(run.json.has_value()) << run.out;
  EXPECT_EQ(StringMember(*run.json, "grpc_code"), "PERMISSION_DENIED");
  EXPECT_EQ(StringMember(*run.json, "message"), "the identity may not read secret 'db-pass'");
  EXPECT_EQ(StringMember(*run.json, "call"), "Mount");

  delay_ms = 1000;
  run = RunClientBinary({"--socket", path_, "--timeout-ms", "300", "--attributes", "{}"});
  ASSERT_EQ(run.exit_code, 2) << run.out << run.err;
  ASSERT_TRUE(run.json.has_value()) << run.out;
  EXPECT_EQ(StringMember(*run.json, "grpc_code"), "DEADLINE_EXCEEDED");
}

TEST_F(CsiClientBinaryTest, WaitsForTheProviderToListen) {
  // waitForReady: the driver's call waits for a provider that is starting.
  auto run = std::async(std::launch::async, [&] {
    return RunClientBinary(Args({"--attributes", "{}"}));
  });
  std::this_thread::sleep_for(milliseconds(500));
  auto server = StartOrDie([](const CsiMountRequest&) { return OneObject(); });
  ASSERT_NE(server, nullptr);
  ClientRun result = run.get();
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;

  server.reset();
  result = RunClientBinary({"--socket", path_, "--timeout-ms", "500", "--attributes", "{}"});
  EXPECT_EQ(result.exit_code, 2) << result.out << result.err;
  ASSERT_TRUE(result.json.has_value()) << result.out;
  EXPECT_EQ(StringMember(*result.json, "call"), "Version");
  EXPECT_EQ(StringMember(*result.json, "grpc_code"), "DEADLINE_EXCEEDED");
}

TEST_F(CsiClientBinaryTest, DriverSideFailuresExitThree) {
  std::atomic<int> which{0};
  auto server = StartOrDie([&](const CsiMountRequest&) {
    CsiMountResponse response = OneObject();
    switch (which.load()) {
      case 0:
        response.error_code = "KeyVaultThrottled";
        break;
      case 1:
        response.object_version.clear();
        break;
      case 2:
        response.files = {{"ok", 0644, "x"}, {"../escape", 0644, "y"}};
        break;
      default:
        response.files = {{"./dot", 0644, "x"}};
        break;
    }
    return response;
  });
  ASSERT_NE(server, nullptr);
  const std::string out_dir = dir_ + "/out";
  const std::string kWant[] = {
      "mount request failed with provider error code KeyVaultThrottled",
      "missing object versions",
      "invalid file path",
      "invalid file path",
  };
  for (int i = 0; i < 4; ++i) {
    which = i;
    ClientRun run = RunClientBinary(Args({"--attributes", "{}", "--write-dir", out_dir}));
    EXPECT_EQ(run.exit_code, 3) << i << ": " << run.out << run.err;
    ASSERT_TRUE(run.json.has_value()) << run.out;
    EXPECT_NE(StringMember(*run.json, "driver_error").find(kWant[i]), std::string::npos) << run.out;
    EXPECT_TRUE((*run.json)["object_version"].is_array());
  }
  // The driver writes nothing of a failed mount; neither does the client.
  struct stat st {};
  EXPECT_NE(::lstat(out_dir.c_str(), &st), 0);
  EXPECT_NE(::lstat((dir_ + "/escape").c_str(), &st), 0);
}

TEST_F(CsiClientBinaryTest, UsageErrorsExitSixtyFour) {
  EXPECT_EQ(RunClientBinary({}).exit_code, 64);
  EXPECT_EQ(RunClientBinary({"--socket", path_}).exit_code, 64);
  EXPECT_EQ(RunClientBinary({"--attributes", "{}"}).exit_code, 64);
  EXPECT_EQ(RunClientBinary(Args({"--attributes", "{}", "--attributes-file", "/x"})).exit_code, 64);
  EXPECT_EQ(RunClientBinary(Args({"--attributes", "{}", "--bogus", "1"})).exit_code, 64);
  EXPECT_EQ(RunClientBinary(Args({"--attributes", "{}", "--timeout-ms", "soon"})).exit_code, 64);
  EXPECT_EQ(RunClientBinary(Args({"--attributes"})).exit_code, 64);
  EXPECT_EQ(RunClientBinary(Args({"--attributes-file", dir_ + "/missing.json"})).exit_code, 64);
  ClientRun run = RunClientBinary(Args({"--attributes", "{}", "--bogus", "1"}));
  EXPECT_NE(run.err.find("unknown argument '--bogus'"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("usage: coffer-csi-client"), std::string::npos) << run.err;
  EXPECT_EQ(run.out, "");
  EXPECT_EQ(RunClientBinary({"--help"}).exit_code, 0);
}

}  // namespace
}  // namespace coffer::agent
