#include "storage/postgres/pg_conn.h"

#include <string>

#include <gtest/gtest.h>

#include "storage/postgres/testing/pg_test_server.h"

namespace coffer::storage::postgres {
namespace {

using testing::PgTestServer;

// One real PostgreSQL for the whole binary; each test uses its own database.
class PgConnTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto server = PgTestServer::Start();
    ASSERT_TRUE(server.ok()) << server.status().message();
    server_ = std::move(server).value().release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  std::unique_ptr<PgConn> Connect() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string db = std::string("t_") + info->name();
    for (char& c : db) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (conninfo_.empty()) {
      auto made = server_->CreateDatabase(db);
      EXPECT_TRUE(made.ok()) << made.status().message();
      conninfo_ = made.ok() ? *made : server_->conninfo();
    }
    auto conn = PgConn::Connect(conninfo_);
    EXPECT_TRUE(conn.ok()) << conn.status().message();
    return conn.ok() ? std::move(conn).value() : nullptr;
  }

  static PgTestServer* server_;
  std::string conninfo_;
};

PgTestServer* PgConnTest::server_ = nullptr;

TEST_F(PgConnTest, ParametersAndColumnsRoundTrip) {
  auto conn = Connect();
  ASSERT_NE(conn, nullptr);
  ASSERT_TRUE(conn->ExecScript("CREATE TABLE t(k TEXT PRIMARY KEY, n BIGINT, b BYTEA)").ok());
  std::string every_byte;
  for (int i = 0; i < 256; ++i) {
    every_byte.push_back(static_cast<char>(i));
  }
  auto put = conn->Exec(
      "INSERT INTO t(k, n, b) VALUES ($1, $2, $3), ($4, $5, $6)",
      {PgParam::Text("a\xC3\xA9'\"\\"), PgParam::Int(-9007199254740993), PgParam::Bytes(every_byte),
       PgParam::Text("null"), PgParam::OptInt({}), PgParam::Null()});
  ASSERT_TRUE(put.ok()) << put.status().message();
  EXPECT_EQ(put->affected(), 2);
  auto rows = conn->Exec("SELECT k, n, b FROM t ORDER BY k");
  ASSERT_TRUE(rows.ok()) << rows.status().message();
  ASSERT_EQ(rows->size(), 2);
  EXPECT_EQ(rows->Text(0, 0), "a\xC3\xA9'\"\\");
  EXPECT_EQ(rows->Int(0, 1), -9007199254740993);
  EXPECT_EQ(rows->Bytes(0, 2), every_byte);
  EXPECT_EQ(rows->Text(1, 0), "null");
  EXPECT_EQ(rows->OptInt(1, 1), std::nullopt);
  EXPECT_TRUE(rows->IsNull(1, 2));
  EXPECT_EQ(rows->OptText(1, 2), std::nullopt);
  // Out of range reads are empty, not a crash.
  EXPECT_TRUE(rows->IsNull(5, 0));
  EXPECT_EQ(rows->Text(0, 9), "");
}

TEST_F(PgConnTest, AStatementIsPreparedOnceAndReused) {
  auto conn = Connect();
  ASSERT_NE(conn, nullptr);
  for (int i = 0; i < 3; ++i) {
    auto rows = conn->Exec("SELECT $1::bigint + 1", {PgParam::Int(i)});
    ASSERT_TRUE(rows.ok()) << rows.status().message();
    EXPECT_EQ(rows->Int(0, 0), i + 1);
  }
  auto prepared = conn->Exec("SELECT count(*) FROM pg_prepared_statements");
  ASSERT_TRUE(prepared.ok());
  EXPECT_EQ(prepared->Int(0, 0), 2);  // the SELECT above and this one
}

TEST_F(PgConnTest, ErrorsMapToStatusesWithoutTheValues) {
  auto conn = Connect();
  ASSERT_NE(conn, nullptr);
  ASSERT_TRUE(conn->ExecScript("CREATE TABLE u(k TEXT PRIMARY KEY)").ok());
  const std::string secret = "hunter2-unique-value";
  ASSERT_TRUE(conn->Exec("INSERT INTO u VALUES ($1)", {PgParam::Text(secret)}).ok());
  auto dup = conn->Exec("INSERT INTO u VALUES ($1)", {PgParam::Text(secret)});
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(dup.status().reason(), "23505");
  EXPECT_EQ(dup.status().message().find(secret), std::string::npos) << dup.status().message();

  auto bad = conn->Exec("SELEC 1");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInternal);
  EXPECT_EQ(bad.status().reason(), "42601");
  // A failed script reports its error; the connection keeps working.
  Status script = conn->ExecScript("CREATE TABLE v(x INT); INSERT INTO nowhere VALUES (1)");
  EXPECT_EQ(script.code(), StatusCode::kInternal);
  EXPECT_EQ(script.reason(), "42P01");
  EXPECT_TRUE(conn->Exec("SELECT 1").ok());
}

TEST_F(PgConnTest, ASerializationFailureIsAborted) {
  auto a = Connect();
  auto b = Connect();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(
      a->ExecScript("CREATE TABLE c(id INT PRIMARY KEY, n INT); INSERT INTO c VALUES (1, 0)").ok());
  for (PgConn* c : {a.get(), b.get()}) {
    ASSERT_TRUE(c->ExecScript("BEGIN ISOLATION LEVEL SERIALIZABLE").ok());
    ASSERT_TRUE(c->Exec("SELECT n FROM c WHERE id = 1").ok());
  }
  ASSERT_TRUE(a->Exec("UPDATE c SET n = n + 1 WHERE id = 1").ok());
  ASSERT_TRUE(a->ExecScript("COMMIT").ok());
  auto lost = b->Exec("UPDATE c SET n = n + 1 WHERE id = 1");
  ASSERT_FALSE(lost.ok());
  EXPECT_EQ(lost.status().code(), StatusCode::kAborted);
  EXPECT_EQ(lost.status().reason(), "40001");
  ASSERT_TRUE(b->ExecScript("ROLLBACK").ok());
}

TEST_F(PgConnTest, ALostConnectionIsUnavailable) {
  auto victim = Connect();
  auto killer = Connect();
  ASSERT_NE(victim, nullptr);
  ASSERT_NE(killer, nullptr);
  auto pid = victim->Exec("SELECT pg_backend_pid()");
  ASSERT_TRUE(pid.ok());
  ASSERT_TRUE(
      killer->Exec("SELECT pg_terminate_backend($1::int)", {PgParam::Int(pid->Int(0, 0))}).ok());
  auto after = victim->Exec("SELECT 1");
  ASSERT_FALSE(after.ok());
  EXPECT_EQ(after.status().code(), StatusCode::kUnavailable) << after.status().message();
  EXPECT_TRUE(victim->Broken());
}

TEST_F(PgConnTest, KeepalivesDefaultUnlessTheConnectionStringSetsThem) {
  auto conn = Connect();
  ASSERT_NE(conn, nullptr);
  EXPECT_EQ(conn->Option("keepalives_idle"), "5");
  EXPECT_EQ(conn->Option("keepalives_count"), "3");
  EXPECT_EQ(conn->Option("connect_timeout"), "5");
  EXPECT_EQ(conn->Option("tcp_user_timeout"), "10000");

  // Both forms of connection string override the defaults.
  std::string dbname = conn->Option("dbname");
  std::string keyword_form = conninfo_ + " keepalives_idle=7 connect_timeout=9";
  auto set = PgConn::Connect(keyword_form);
  ASSERT_TRUE(set.ok()) << set.status().message();
  EXPECT_EQ((*set)->Option("keepalives_idle"), "7");
  EXPECT_EQ((*set)->Option("connect_timeout"), "9");
  EXPECT_EQ((*set)->Option("keepalives_count"), "3");
  EXPECT_EQ((*set)->Option("dbname"), dbname);

  std::string host;  // a socket directory: its slashes percent-encoded
  for (char c : conn->Option("host")) {
    host += c == '/' ? std::string("%2F") : std::string(1, c);
  }
  std::string uri = "postgresql://" + conn->Option("user") + "@" + host + ":" +
                    conn->Option("port") + "/" + dbname + "?keepalives_count=4";
  auto from_uri = PgConn::Connect(uri);
  ASSERT_TRUE(from_uri.ok()) << from_uri.status().message();
  EXPECT_EQ((*from_uri)->Option("keepalives_count"), "4");
  EXPECT_EQ((*from_uri)->Option("keepalives_idle"), "5");
}

TEST(PgConnConnectTest, NoServerIsUnavailableAndThePasswordIsNotRepeated) {
  auto conn = PgConn::Connect(
      "host=/nonexistent-coffer-dir port=5432 user=u password=s3cr3t-pw dbname=d "
      "connect_timeout=5");
  ASSERT_FALSE(conn.ok());
  EXPECT_EQ(conn.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(conn.status().message().find("s3cr3t-pw"), std::string::npos);
  auto garbage = PgConn::Connect("this is = not 'a conninfo");
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace coffer::storage::postgres
