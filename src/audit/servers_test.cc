// Several servers' logs side by side: server ids, the layout, the move of a
// log from before server ids, and verifying and querying several logs.

#include "audit/servers.h"

#include "audit/audit_test_util.h"
#include "audit/query.h"

namespace coffer::audit {
namespace {

class ServerLogsTest : public AuditLogTest {
 protected:
  void SetUp() override {
    AuditLogTest::SetUp();
    audit_root_ = root_.Join("audit");
  }

  // Writes entries `indexes` (MakeEntry's times) to server `id`'s log.
  void WriteServer(const std::string& id, const std::vector<int>& indexes) {
    dir_ = ServerLogDir(audit_root_, id);
    LogOptions o = Options();
    o.server_id = id;
    auto log = OpenLog(o);
    ASSERT_NE(log, nullptr);
    for (int i : indexes) {
      ASSERT_TRUE(log->AppendDurable(MakeEntry(i)).ok());
    }
    log->Close();
  }

  std::vector<ServerLog> Logs(const std::vector<std::string>& dirs) {
    auto logs = FindServerLogs(FileSystem::Default(), dirs);
    EXPECT_TRUE(logs.ok()) << logs.status().ToString();
    return logs.ok() ? *logs : std::vector<ServerLog>{};
  }

  std::string audit_root_;
};

TEST(ServerIdTest, AcceptsShortLowerCaseNames) {
  for (const std::string& id :
       std::vector<std::string>{"a", "0", "coffer-1", "eu-west-2a", std::string(63, 'x')}) {
    EXPECT_TRUE(ValidateServerId(id).ok()) << id;
  }
}

TEST(ServerIdTest, RefusesHostileIds) {
  for (const std::string& id : std::vector<std::string>{
           std::string(), std::string(64, 'x'), std::string("."), std::string(".."),
           std::string("../etc"), std::string("a/b"), std::string("/abs"), std::string("Coffer"),
           std::string("a b"), std::string("a\nb"), std::string("a\0b", 3), std::string("-a"),
           std::string("a-"), std::string("a_b"), std::string("a.b"), std::string("caf\xc3\xa9"),
           std::string("a\"b"), std::string("audit")}) {
    Status s = ValidateServerId(id);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << id;
  }
}

TEST_F(ServerLogsTest, LogRefusesAHostileServerId) {
  LogOptions o = Options();
  o.server_id = "../other";
  auto log = Log::Open(o, clock_);
  EXPECT_EQ(log.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(root_.Join("other")));
}

TEST_F(ServerLogsTest, EveryRecordNamesItsServer) {
  WriteServer("node-a", {0, 1});
  // The log's own records too: a lost head makes the next start write a
  // recovery record.
  fs::remove(HeadPath(dir_));
  WriteServer("node-a", {2});
  size_t records = 0;
  size_t recoveries = 0;
  for (const auto& line : AllLines()) {
    Json j = Parse(line);
    if (j["category"] == kCheckpointCategory) {
      continue;
    }
    ++records;
    recoveries += j["category"] == kRecoveryCategory ? 1 : 0;
    EXPECT_EQ(StringMember(j, kServerIdField), "node-a") << line;
    // Before the chain fields, which stay last.
    EXPECT_LT(line.find("\"serverId\""), line.find("\"seq\"")) << line;
  }
  EXPECT_EQ(records, 4u);
  EXPECT_EQ(recoveries, 1u);
}

TEST_F(ServerLogsTest, FindsEachServersLogUnderARoot) {
  WriteServer("node-b", {0});
  WriteServer("node-a", {1});
  // Not logs: a name that is no server id, an empty server directory, a file.
  fs::create_directories(audit_root_ + "/Not-An-Id");
  std::ofstream(audit_root_ + "/Not-An-Id/head") << "x";
  fs::create_directories(audit_root_ + "/empty");
  std::ofstream(audit_root_ + "/notes.txt") << "x";
  auto logs = Logs({audit_root_});
  ASSERT_EQ(logs.size(), 2u);
  EXPECT_EQ(logs[0].server_id, "node-a");
  EXPECT_EQ(logs[0].dir, audit_root_ + "/node-a");
  EXPECT_EQ(logs[1].server_id, "node-b");
  // A server's own directory, given directly, is that one log; given twice, once.
  logs = Logs({audit_root_ + "/node-b/", audit_root_ + "/node-b"});
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_EQ(logs[0].server_id, "node-b");
}

TEST_F(ServerLogsTest, ALogNamedExplicitlyMustBeThere) {
  WriteServer("node-a", {0});
  auto missing = FindServerLogs(FileSystem::Default(), {audit_root_, audit_root_ + "/node-z"});
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("node-z"), std::string_view::npos);
  fs::create_directories(root_.Join("nothing"));
  auto empty = FindServerLogs(FileSystem::Default(), {root_.Join("nothing")});
  EXPECT_EQ(empty.status().code(), StatusCode::kNotFound);
}

TEST_F(ServerLogsTest, TwoLogsOfOneServerIdAreRefused) {
  WriteServer("node-a", {0});
  fs::copy(audit_root_, root_.Join("copy"), fs::copy_options::recursive);
  auto logs = FindServerLogs(FileSystem::Default(), {audit_root_, root_.Join("copy")});
  EXPECT_EQ(logs.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(ServerLogsTest, ATamperedLineBreaksOnlyItsServersLog) {
  WriteServer("node-a", {0, 2, 4});
  WriteServer("node-b", {1, 3, 5});
  // dir_ is node-b's: edit its second record.
  auto [file, index] = Find(2);
  auto lines = Lines(file);
  size_t at = lines[index].find("SecretGet");
  ASSERT_NE(at, std::string::npos);
  lines[index].replace(at, 9, "SecretSet");
  WriteLines(file, lines);

  auto reports = VerifyServerLogs(Logs({audit_root_}));
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports[0].log.server_id, "node-a");
  EXPECT_TRUE(reports[0].ok()) << Describe(reports[0].report);
  EXPECT_EQ(reports[1].log.server_id, "node-b");
  EXPECT_FALSE(reports[1].ok());
  EXPECT_TRUE(HasProblem(reports[1].report, file, 2, "altered")) << Describe(reports[1].report);
}

TEST_F(ServerLogsTest, ALogUnderAnotherServersNameIsNoted) {
  WriteServer("node-a", {0, 1});
  fs::rename(audit_root_ + "/node-a", audit_root_ + "/node-b");
  auto reports = VerifyServerLogs(Logs({audit_root_}));
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_TRUE(reports[0].ok()) << Describe(reports[0].report);  // the chain holds
  EXPECT_TRUE(HasNote(reports[0].report, "2 records name another server than node-b"))
      << Describe(reports[0].report);
  EXPECT_TRUE(HasNote(reports[0].report, "seq 1 names node-a")) << Describe(reports[0].report);
}

TEST_F(ServerLogsTest, AnUnreadableLogIsReportedAndTheOthersStillVerified) {
  WriteServer("node-a", {0});
  WriteServer("node-b", {1});
  fs::remove(audit_root_ + "/node-a/checkpoint.pub");
  auto reports = VerifyServerLogs(Logs({audit_root_}));
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports[0].status.code(), StatusCode::kNotFound);
  EXPECT_FALSE(reports[0].ok());
  EXPECT_TRUE(reports[1].ok()) << Describe(reports[1].report);
}

TEST_F(ServerLogsTest, QueryMergesServersByTimeThenServerThenSeq) {
  WriteServer("node-b", {1, 2, 4});
  WriteServer("node-a", {0, 2, 3});  // 2: the same time as node-b's second record
  auto records = QueryServerLogs(Logs({audit_root_}), Filter{});
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  std::vector<std::pair<std::string, std::string>> got;
  for (const auto& r : *records) {
    got.emplace_back(StringMember(r, "correlationId"), StringMember(r, kServerIdField));
  }
  std::vector<std::pair<std::string, std::string>> want = {
      {"corr-0", "node-a"}, {"corr-1", "node-b"}, {"corr-2", "node-a"},
      {"corr-2", "node-b"}, {"corr-3", "node-a"}, {"corr-4", "node-b"}};
  EXPECT_EQ(got, want);

  // top keeps the newest of all servers; the filters apply to each log.
  Filter newest;
  newest.top = 2;
  records = QueryServerLogs(Logs({audit_root_}), newest);
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ(StringMember((*records)[0], "correlationId"), "corr-3");
  EXPECT_EQ(StringMember((*records)[1], "correlationId"), "corr-4");
  Filter from;
  from.from_us = kBaseUs + 2 * 1000000;
  from.to_us = kBaseUs + 3 * 1000000;
  records = QueryServerLogs(Logs({audit_root_}), from);
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ(StringMember((*records)[0], kServerIdField), "node-a");
  EXPECT_EQ(StringMember((*records)[1], kServerIdField), "node-b");
}

// The layout before server ids: the log in the audit directory itself.
TEST_F(ServerLogsTest, ALogFromBeforeServerIdsMovesUnbrokenAndContinues) {
  dir_ = audit_root_;
  WriteLog(Options(), 12);
  ASSERT_TRUE(VerifyLog().ok);
  // Readers still find it where it is.
  auto old_logs = Logs({audit_root_});
  ASSERT_EQ(old_logs.size(), 1u);
  EXPECT_EQ(old_logs[0].server_id, "");
  EXPECT_TRUE(VerifyServerLogs(old_logs)[0].ok());

  ASSERT_TRUE(MoveLegacyLog(FileSystem::Default(), audit_root_, "node-a").ok());
  EXPECT_FALSE(fs::exists(audit_root_ + "/head"));
  EXPECT_FALSE(fs::exists(audit_root_ + "/checkpoint.key"));
  WriteServer("node-a", {100, 101});  // reopens the moved log, key and all
  auto reports = VerifyServerLogs(Logs({audit_root_}));
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].log.server_id, "node-a");
  EXPECT_TRUE(reports[0].ok()) << Describe(reports[0].report);
  EXPECT_EQ(reports[0].report.first_seq, 1u);
  // The old records carry no serverId; queried, they get their log's.
  auto records = QueryServerLogs(Logs({audit_root_}), Filter{});
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 14u);
  for (const auto& r : *records) {
    EXPECT_EQ(StringMember(r, kServerIdField), "node-a");
  }
  auto lines = AllLines();
  EXPECT_EQ(lines.front().find("serverId"), std::string::npos);
  // Moving again does nothing.
  EXPECT_TRUE(MoveLegacyLog(FileSystem::Default(), audit_root_, "node-a").ok());
}

TEST_F(ServerLogsTest, ASigningKeyNamedAtTheOldDefaultPathStaysThere) {
  dir_ = audit_root_;
  LogOptions old = Options();
  old.signing_key_path = audit_root_ + "/checkpoint.key";
  WriteLog(old, 3);
  ASSERT_TRUE(
      MoveLegacyLog(FileSystem::Default(), audit_root_, "node-a", audit_root_ + "/./checkpoint.key")
          .ok());
  EXPECT_TRUE(fs::exists(audit_root_ + "/checkpoint.key"));
  EXPECT_FALSE(fs::exists(audit_root_ + "/node-a/checkpoint.key"));
  dir_ = ServerLogDir(audit_root_, "node-a");
  LogOptions moved = Options();
  moved.server_id = "node-a";
  moved.signing_key_path = old.signing_key_path;  // the server's flag, unchanged
  auto log = OpenLog(moved);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->recovery_seq(), 0u);
  log->Close();
  auto reports = VerifyServerLogs(Logs({audit_root_}));
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_TRUE(reports[0].ok()) << Describe(reports[0].report);
}

TEST_F(ServerLogsTest, AMoveCutShortIsFinishedByTheNextStart) {
  dir_ = audit_root_;
  WriteLog(Options(), 5);
  // As if the move stopped after the first file: the log file is staged,
  // the head and keys are not.
  fs::create_directories(audit_root_ + "/.legacy-migration");
  for (const auto& name : Files()) {
    fs::rename(audit_root_ + "/" + name, audit_root_ + "/.legacy-migration/" + name);
  }
  ASSERT_TRUE(MoveLegacyLog(FileSystem::Default(), audit_root_, "node-a").ok());
  EXPECT_FALSE(fs::exists(audit_root_ + "/.legacy-migration"));
  auto reports = VerifyServerLogs(Logs({audit_root_}));
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].log.server_id, "node-a");
  EXPECT_TRUE(reports[0].ok()) << Describe(reports[0].report);
}

TEST_F(ServerLogsTest, AnOpenOldLogIsNotMoved) {
  dir_ = audit_root_;
  auto log = OpenLog(Options());
  ASSERT_NE(log, nullptr);
  Status s = MoveLegacyLog(FileSystem::Default(), audit_root_, "node-a");
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  EXPECT_TRUE(fs::exists(audit_root_ + "/head"));
  log->Close();
}

TEST_F(ServerLogsTest, AnOldLogBesideTheServersOwnIsNotMerged) {
  WriteServer("node-a", {0});
  dir_ = audit_root_;
  WriteLog(Options(), 2);
  Status s = MoveLegacyLog(FileSystem::Default(), audit_root_, "node-a");
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  EXPECT_TRUE(fs::exists(audit_root_ + "/head"));
  EXPECT_TRUE(fs::exists(audit_root_ + "/node-a/head"));
}

}  // namespace
}  // namespace coffer::audit
