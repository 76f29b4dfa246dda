#include "storage/postgres/pg_db.h"

#include <functional>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "common/testing/temp_dir.h"
#include "storage/postgres/testing/pg_test_server.h"
#include "storage/sqlite/sqlite_db.h"

namespace coffer::storage::postgres {
namespace {

TEST(PostgresPlaceholdersTest, NumbersAsSqliteDoesAndLeavesQuotedTextAlone) {
  EXPECT_EQ(PostgresPlaceholders("SELECT ?, ?, ?"), "SELECT $1, $2, $3");
  EXPECT_EQ(PostgresPlaceholders("a = ?1 OR b = ?1 AND c = ?"), "a = $1 OR b = $1 AND c = $2");
  EXPECT_EQ(PostgresPlaceholders("?3, ?, ?1, ?"), "$3, $4, $1, $5");
  EXPECT_EQ(PostgresPlaceholders("x = '?' AND y = \"a?b\" AND z = ?"),
            "x = '?' AND y = \"a?b\" AND z = $1");
  EXPECT_EQ(PostgresPlaceholders("x = 'it''s ?' AND y = ?"), "x = 'it''s ?' AND y = $1");
  EXPECT_EQ(PostgresPlaceholders("?12"), "$12");
  EXPECT_EQ(PostgresPlaceholders("no placeholders"), "no placeholders");
}

// The same statements through Db on SQLite and on PostgreSQL: what the SQL
// stores rely on.
class DbTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    if (GetParam() == "sqlite") {
      auto dir = test::TempDir::Create();
      ASSERT_TRUE(dir.ok());
      dir_ = std::move(dir).value();
      auto db = SqliteDb::Open(dir_.Join("t.db"), false);
      ASSERT_TRUE(db.ok()) << db.status().message();
      db_ = std::move(db).value();
    } else {
      if (server_ == nullptr) {  // started for the PostgreSQL cases only
        auto server = testing::PgTestServer::Start();
        ASSERT_TRUE(server.ok()) << server.status().message();
        server_ = std::move(server).value().release();
      }
      static int n = 0;
      auto info = server_->CreateDatabase("db_test_" + std::to_string(++n));
      ASSERT_TRUE(info.ok()) << info.status().message();
      auto db = PgDb::Connect(*info);
      ASSERT_TRUE(db.ok()) << db.status().message();
      db_ = std::move(db).value();
    }
    ASSERT_TRUE(db_->ExecScript("CREATE TABLE t(k TEXT PRIMARY KEY, n BIGINT, b " +
                                std::string(GetParam() == "sqlite" ? "BLOB" : "BYTEA") + ")")
                    .ok());
  }

  Status Insert(const std::string& k, std::optional<int64_t> n, std::string_view b) {
    auto st = db_->Prepare("INSERT INTO t(k, n, b) VALUES(?, ?, ?)");
    if (!st.ok()) {
      return st.status();
    }
    (*st)->Bind(1, k).Bind(2, n).BindBlob(3, b);
    return (*st)->Exec();
  }

  static testing::PgTestServer* server_;
  test::TempDir dir_;
  std::unique_ptr<Db> db_;
};

testing::PgTestServer* DbTest::server_ = nullptr;

TEST_P(DbTest, RowsColumnsAndChanges) {
  std::string bytes("\0\x01\xff'\\x", 6);
  ASSERT_TRUE(Insert("b", 2, bytes).ok());
  ASSERT_TRUE(Insert("a", std::nullopt, "").ok());
  EXPECT_EQ(db_->Changes(), 1);
  auto st = db_->Prepare("SELECT k, n, b FROM t WHERE k >= ?1 ORDER BY k");
  ASSERT_TRUE(st.ok());
  (*st)->Bind(1, std::string_view("a"));
  std::vector<std::string> keys;
  for (;;) {
    auto row = (*st)->Step();
    ASSERT_TRUE(row.ok()) << row.status().message();
    if (!*row) {
      break;
    }
    keys.push_back((*st)->Text(0));
    if ((*st)->Text(0) == "b") {
      EXPECT_EQ((*st)->Int(1), 2);
      EXPECT_EQ((*st)->Blob(2), bytes);
    } else {
      EXPECT_EQ((*st)->OptInt(1), std::nullopt);
      EXPECT_EQ((*st)->OptText(1), std::nullopt);
    }
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "b"}));
  // Prepared again: reset, bindings cleared, the same statement.
  auto again = db_->Prepare("SELECT k, n, b FROM t WHERE k >= ?1 ORDER BY k");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *st);

  auto update = db_->Prepare("UPDATE t SET n = n + 1 WHERE n IS NOT NULL");
  ASSERT_TRUE(update.ok());
  ASSERT_TRUE((*update)->Exec().ok());
  EXPECT_EQ(db_->Changes(), 1);
}

TEST_P(DbTest, ConflictsAreAlreadyExistsOrIgnored) {
  ASSERT_TRUE(Insert("k", 1, "x").ok());
  Status dup = Insert("k", 2, "secret-bytes");
  EXPECT_EQ(dup.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(dup.message().find("secret-bytes"), std::string::npos);
  auto ignore = db_->Prepare("INSERT INTO t(k, n, b) VALUES(?, ?, ?) ON CONFLICT DO NOTHING");
  ASSERT_TRUE(ignore.ok());
  (*ignore)->Bind(1, std::string_view("k")).Bind(2, int64_t{3}).BindBlob(3, "y");
  ASSERT_TRUE((*ignore)->Exec().ok());
  EXPECT_EQ(db_->Changes(), 0);
  auto upsert = db_->Prepare(
      "INSERT INTO t(k, n, b) VALUES(?, ?, ?) ON CONFLICT(k) DO UPDATE SET n = excluded.n");
  ASSERT_TRUE(upsert.ok());
  (*upsert)->Bind(1, std::string_view("k")).Bind(2, int64_t{9}).BindBlob(3, "z");
  ASSERT_TRUE((*upsert)->Exec().ok());
  EXPECT_EQ(db_->Changes(), 1);
  auto read = db_->Prepare("SELECT n FROM t WHERE k = ?");
  ASSERT_TRUE(read.ok());
  (*read)->Bind(1, std::string_view("k"));
  ASSERT_TRUE(*(*read)->Step());
  EXPECT_EQ((*read)->Int(0), 9);
}

TEST_P(DbTest, BadSqlIsInternalAndTheConnectionKeepsWorking) {
  auto st = db_->Prepare("SELEC nothing");
  Status s = st.ok() ? (*st)->Exec() : st.status();
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  ASSERT_TRUE(Insert("after", 1, "").ok());
}

INSTANTIATE_TEST_SUITE_P(Backends, DbTest, ::testing::Values("sqlite", "postgresql"));

}  // namespace
}  // namespace coffer::storage::postgres
