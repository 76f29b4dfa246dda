#include "server/server_id.h"

#include <fstream>

#include <gtest/gtest.h>

#include "common/files.h"
#include "common/testing/temp_dir.h"

#include <sys/stat.h>

namespace coffer::server {
namespace {

class ServerIdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = test::TempDir::Create("coffer-server-id-");
    ASSERT_TRUE(dir.ok());
    dir_ = std::move(*dir);
  }
  void WriteIdFile(const std::string& text) { std::ofstream(ServerIdPath(dir_.path())) << text; }
  test::TempDir dir_;
};

TEST_F(ServerIdTest, TheFirstStartMakesAnIdAndLaterStartsKeepIt) {
  auto first = ResolveServerId(dir_.path(), "");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->size(), 12u);
  EXPECT_EQ(first->find_first_not_of("0123456789abcdef"), std::string::npos) << *first;
  EXPECT_EQ(FileMode(ServerIdPath(dir_.path())), 0600);
  auto again = ResolveServerId(dir_.path(), "");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *first);
}

TEST_F(ServerIdTest, AConfiguredIdWinsAndIsKeptWhenNoneWasYet) {
  auto given = ResolveServerId(dir_.path(), "node-1");
  ASSERT_TRUE(given.ok());
  EXPECT_EQ(*given, "node-1");
  EXPECT_EQ(*ResolveServerId(dir_.path(), ""), "node-1");
  // A later flag overrides the kept id without rewriting it.
  EXPECT_EQ(*ResolveServerId(dir_.path(), "node-2"), "node-2");
  EXPECT_EQ(*ResolveServerId(dir_.path(), ""), "node-1");
}

TEST_F(ServerIdTest, AHostileConfiguredIdIsRefusedAndNothingWritten) {
  for (const char* bad : {"../x", "A", "a/b", ".", "audit", "-x"}) {
    auto id = ResolveServerId(dir_.path(), bad);
    EXPECT_EQ(id.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(ReadFile(ServerIdPath(dir_.path())).ok());
}

TEST_F(ServerIdTest, AnIdFileHoldingNoValidIdIsRefused) {
  for (const char* bad : {"../../etc\n", "", "Node\n", "a b\n"}) {
    WriteIdFile(bad);
    auto id = ResolveServerId(dir_.path(), "");
    EXPECT_EQ(id.status().code(), StatusCode::kFailedPrecondition) << bad;
    EXPECT_NE(id.status().message().find("server-id"), std::string_view::npos);
  }
  WriteIdFile("node-7\n");
  EXPECT_EQ(*ResolveServerId(dir_.path(), ""), "node-7");
}

}  // namespace
}  // namespace coffer::server
