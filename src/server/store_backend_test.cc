#include "server/store_backend.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "common/testing/temp_dir.h"

namespace coffer::server {
namespace {

TEST(StoreBackend, PostgresIsAUriOrLibpqKeywords) {
  EXPECT_TRUE(IsPostgresStore("postgresql://db1,db2/coffer?target_session_attrs=read-write"));
  EXPECT_TRUE(IsPostgresStore("postgres://u@db/coffer"));
  EXPECT_TRUE(IsPostgresStore("host=/run/postgresql dbname=coffer"));
  EXPECT_FALSE(IsPostgresStore(""));
  EXPECT_FALSE(IsPostgresStore("sqlite:/tmp/x.db"));
  EXPECT_FALSE(IsPostgresStore("mysql://db/coffer"));
}

TEST(StoreBackend, AnythingElseIsRefusedWithoutOpening) {
  auto dir = test::TempDir::Create("coffer-store-");
  ASSERT_TRUE(dir.ok());
  auto opened = OpenStore("mysql://db/coffer", dir->path());
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(opened.status().message().find("--store"), std::string::npos);
}

TEST(StoreBackend, TheDefaultIsSqliteInTheDataDirectory) {
  auto dir = test::TempDir::Create("coffer-store-");
  ASSERT_TRUE(dir.ok());
  auto opened = OpenStore("", dir->path());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_NE(opened->commit_latency, nullptr);
  ASSERT_TRUE(opened->store->PutMeta("k", "v").ok());
  EXPECT_TRUE(std::filesystem::exists(dir->Join("coffer.db")));
}

TEST(StoreBackend, PasswordsAreRedacted) {
  EXPECT_EQ(RedactStore("postgresql://coffer:s3cret@db:5432/coffer"),
            "postgresql://coffer:***@db:5432/coffer");
  EXPECT_EQ(RedactStore("postgresql://coffer@db/coffer?password=s3cret&sslmode=require"),
            "postgresql://coffer@db/coffer?password=***&sslmode=require");
  EXPECT_EQ(RedactStore("host=db password=s3cret dbname=coffer"),
            "host=db password=*** dbname=coffer");
  EXPECT_EQ(RedactStore("host=db password='s3 \\'cr et' dbname=coffer"),
            "host=db password=*** dbname=coffer");
  EXPECT_EQ(RedactStore("postgresql://db/coffer"), "postgresql://db/coffer");
  // A user without a password, and an @ in the path, are left alone.
  EXPECT_EQ(RedactStore("postgresql://coffer@db/x@y"), "postgresql://coffer@db/x@y");
}

}  // namespace
}  // namespace coffer::server
