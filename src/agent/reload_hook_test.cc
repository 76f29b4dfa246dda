#include "agent/reload_hook.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include <sys/stat.h>

namespace coffer::agent {
namespace {

namespace fs = std::filesystem;

class ReadReloadPidTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/coffer_reload_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string PidFile(const std::string& text, mode_t mode = 0644) {
    std::string path = dir_ + "/app.pid";
    fs::remove(path);
    std::ofstream(path) << text;
    EXPECT_EQ(::chmod(path.c_str(), mode), 0);
    return path;
  }

  std::string dir_;
};

TEST_F(ReadReloadPidTest, ReadsAPidFromAFileOnlyTrustedUsersCanWrite) {
  auto pid = ReadReloadPid(PidFile("4242\n"));
  ASSERT_TRUE(pid.ok()) << pid.status().ToString();
  EXPECT_EQ(*pid, 4242);
  EXPECT_EQ(*ReadReloadPid(PidFile("  77  ", 0600)), 77);
  EXPECT_EQ(*ReadReloadPid(PidFile("77", 0444)), 77);
}

TEST_F(ReadReloadPidTest, RefusesAFileOthersCanWrite) {
  for (mode_t mode : {0666, 0646, 0602}) {
    auto pid = ReadReloadPid(PidFile("4242", mode));
    EXPECT_EQ(pid.status().code(), StatusCode::kPermissionDenied) << std::oct << mode;
    EXPECT_NE(pid.status().message().find("writable by every user"), std::string::npos)
        << pid.status().ToString();
  }
  if (::geteuid() == 0) {
    std::string path = PidFile("4242");
    ASSERT_EQ(::chown(path.c_str(), 4242, 0), 0);
    auto pid = ReadReloadPid(path);
    EXPECT_EQ(pid.status().code(), StatusCode::kPermissionDenied);
    EXPECT_NE(pid.status().message().find("owned by uid 4242"), std::string::npos)
        << pid.status().ToString();
    ASSERT_EQ(::chown(path.c_str(), 0, 4242), 0);
    ASSERT_EQ(::chmod(path.c_str(), 0664), 0);
    EXPECT_EQ(ReadReloadPid(path).status().code(), StatusCode::kPermissionDenied);
    ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
    EXPECT_TRUE(ReadReloadPid(path).ok()) << "readable by that group is fine";
  }
}

TEST_F(ReadReloadPidTest, RefusesSymlinksAndSpecialFiles) {
  std::string real = PidFile("4242");
  std::string link = dir_ + "/link.pid";
  ASSERT_EQ(::symlink(real.c_str(), link.c_str()), 0);
  EXPECT_EQ(ReadReloadPid(link).status().code(), StatusCode::kFailedPrecondition);
  std::string fifo = dir_ + "/fifo.pid";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(ReadReloadPid(fifo).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReadReloadPid(dir_).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReadReloadPid(dir_ + "/missing.pid").status().code(), StatusCode::kNotFound);
}

TEST_F(ReadReloadPidTest, RefusesWhatIsNotAProcessId) {
  for (const char* text :
       {"", "\n", "0", "1", "-5", "12abc", "0x10", "1 2", "99999999999", "4242\n4243\n"}) {
    auto pid = ReadReloadPid(PidFile(text));
    EXPECT_EQ(pid.status().code(), StatusCode::kInvalidArgument) << text;
  }
  EXPECT_EQ(ReadReloadPid(PidFile(std::string(100, '7'))).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(ReloadEnvironment, HoldsPathAndTheMountOnly) {
  std::vector<std::string> env = ReloadEnvironment("web", "/run/secrets/web");
  ASSERT_EQ(env.size(), 3u);
  EXPECT_EQ(env[0].rfind("PATH=/", 0), 0u) << env[0];
  EXPECT_EQ(env[1], "COFFER_MOUNT=web");
  EXPECT_EQ(env[2], "COFFER_MOUNT_TARGET=/run/secrets/web");
}

}  // namespace
}  // namespace coffer::agent
