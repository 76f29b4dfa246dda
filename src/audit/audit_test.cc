#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "audit/audit_test_util.h"
#include "audit/layout.h"
#include "audit/log.h"
#include "audit/query.h"
#include "audit/record.h"
#include "audit/verify.h"
#include "common/encoding.h"
#include "common/files.h"
#include "common/json.h"
#include "common/testing/wait.h"
#include "crypto/ed25519.h"

#include <sys/resource.h>
#include <sys/wait.h>

namespace coffer::audit {
namespace {

// --- Formatting -------------------------------------------------------------

TEST(AuditFormat, EveryFieldInItsPlace) {
  Entry e = MakeEntry(0, "Contoso-KV");
  e.time_us = kBaseUs + 269122;
  e.http_status = 201;
  e.duration_ms = 78;
  e.result_description = "created";
  e.claims = {{"oid", "o-1"},
              {"appid", "a-1"},
              {"http://schemas.microsoft.com/identity/claims/objectidentifier", "o-1"}};
  e.is_rbac_authorized = false;
  e.is_access_policy_match = true;
  e.applied_assignment_id = "ra-1";
  e.extra = {{"eventId", "ev-1"}, {"httpStatusCode", "999"}, {"id", "spoof"}};
  std::string line;
  AppendRecordLine(line, e, 42, kGenesisHash);
  ASSERT_EQ(line.find('\n'), std::string::npos);
  Json j = Parse(line);
  EXPECT_EQ(j["time"], "2026-01-05T01:32:01.2691220Z");
  EXPECT_EQ(
      j["resourceId"],
      "/SUBSCRIPTIONS/SUB-1/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/CONTOSO-KV");
  EXPECT_EQ(j["operationName"], "SecretGet");
  EXPECT_EQ(j["operationVersion"], "7.5");
  EXPECT_EQ(j["category"], "AuditEvent");
  EXPECT_EQ(j["resultType"], "Success");
  EXPECT_EQ(j["resultSignature"], "Created");
  EXPECT_EQ(j["resultDescription"], "created");
  EXPECT_EQ(j["durationMs"], 78);
  EXPECT_EQ(j["callerIpAddress"], "10.0.0.7");
  EXPECT_EQ(j["correlationId"], "corr-0");
  EXPECT_EQ(j["identity"]["claim"]["oid"], "o-1");
  EXPECT_EQ(j["identity"]["claim"]["appid"], "a-1");
  // Claims keep the caller's order in the line.
  EXPECT_LT(line.find("\"oid\""), line.find("\"appid\""));
  const Json& p = j["properties"];
  EXPECT_EQ(p["id"], "https://Contoso-KV.vault.azure.net/secrets/s0");
  EXPECT_EQ(p["requestUri"], "https://Contoso-KV.vault.azure.net/secrets/s0?api-version=7.5");
  EXPECT_EQ(p["clientInfo"], "azsdk-go/1.0");
  EXPECT_EQ(p["httpStatusCode"], 201);
  EXPECT_EQ(p["isRbacAuthorized"], false);
  EXPECT_EQ(p["isAccessPolicyMatch"], true);
  EXPECT_EQ(p["appliedAssignmentId"], "ra-1");
  EXPECT_EQ(p["tlsVersion"], "TLS1_3");
  EXPECT_EQ(p["eventId"], "ev-1");
  // Extras never shadow the fixed properties.
  EXPECT_EQ(line.find("spoof"), std::string::npos);
  EXPECT_EQ(line.find("999"), std::string::npos);
  EXPECT_EQ(j["seq"], 42);
  EXPECT_EQ(j["prev"], std::string(kGenesisHash));
}

TEST(AuditFormat, OptionalFieldsAreOmittedAndCheckpointCategoryIsRefused) {
  Entry e;
  e.time_us = kBaseUs;
  // A caller's record never claims one of the log's own categories.
  for (std::string_view own : {kRecoveryCategory, kAcknowledgementCategory}) {
    e.category = std::string(own);
    std::string line;
    AppendRecordLine(line, e, 1, kGenesisHash);
    EXPECT_EQ(Parse(line)["category"], "AuditEvent") << own;
    line.clear();
    AppendOwnRecordBody(line, e);
    AppendChainSuffix(line, 1, kGenesisHash);
    EXPECT_EQ(Parse(line)["category"], own);
  }
  e.category = std::string(kCheckpointCategory);
  std::string own_line;
  AppendOwnRecordBody(own_line, e);  // only AppendCheckpointLine writes checkpoints
  AppendChainSuffix(own_line, 1, kGenesisHash);
  EXPECT_EQ(Parse(own_line)["category"], "AuditEvent");
  std::string line;
  AppendRecordLine(line, e, 1, kGenesisHash);
  Json j = Parse(line);
  EXPECT_EQ(j["category"], "AuditEvent");
  EXPECT_FALSE(j["properties"].contains("isRbacAuthorized"));
  EXPECT_FALSE(j["properties"].contains("isAccessPolicyMatch"));
  EXPECT_FALSE(j["properties"].contains("appliedAssignmentId"));
  EXPECT_TRUE(j["identity"]["claim"].is_object());
  EXPECT_EQ(j["resultType"], "Failure");  // status 0: no response was sent
  EXPECT_EQ(j["resultSignature"], "");
}

TEST(AuditFormat, ResultSignaturesAndTypes) {
  struct Case {
    int status;
    const char* signature;
    const char* type;
  };
  for (const Case& c :
       {Case{200, "OK", "Success"}, Case{201, "Created", "Success"},
        Case{204, "No Content", "Success"}, Case{400, "Bad Request", "Failure"},
        Case{401, "Unauthorized", "Failure"}, Case{403, "Forbidden", "Failure"},
        Case{404, "Not Found", "Failure"}, Case{409, "Conflict", "Failure"},
        Case{429, "Too Many Requests", "Failure"}, Case{500, "Internal Server Error", "Failure"},
        Case{503, "Service Unavailable", "Failure"}, Case{299, "299", "Success"},
        Case{599, "599", "Failure"}}) {
    Entry e;
    e.http_status = c.status;
    std::string line;
    AppendRecordLine(line, e, 1, kGenesisHash);
    Json j = Parse(line);
    EXPECT_EQ(j["resultSignature"], c.signature) << c.status;
    EXPECT_EQ(j["resultType"], c.type) << c.status;
    EXPECT_EQ(j["properties"]["httpStatusCode"], c.status);
  }
}

TEST(AuditFormat, TimesRoundTrip) {
  EXPECT_EQ(FormatAuditTime(0), "1970-01-01T00:00:00.0000000Z");
  EXPECT_EQ(FormatAuditTime(int64_t{1709251199} * 1000000 + 999999),
            "2024-02-29T23:59:59.9999990Z");
  for (int64_t us : {int64_t{0}, kBaseUs + 1, int64_t{951782400} * 1000000 + 123456,
                     int64_t{4102444799} * 1000000 + 500000}) {
    EXPECT_EQ(ParseAuditTime(FormatAuditTime(us)), us) << FormatAuditTime(us);
  }
  EXPECT_EQ(ParseAuditTime("2026-01-05T01:32:01Z"), kBaseUs);
  EXPECT_EQ(ParseAuditTime("2026-01-05T01:32:01.5Z"), kBaseUs + 500000);
  EXPECT_FALSE(ParseAuditTime("2026-01-05 01:32:01Z").has_value());
  EXPECT_FALSE(ParseAuditTime("2026-13-05T01:32:01Z").has_value());
  EXPECT_FALSE(ParseAuditTime("2026-01-05T01:32:01.x1Z").has_value());
  EXPECT_FALSE(ParseAuditTime("").has_value());
}

TEST(AuditFormat, HostileStringsStayInsideTheirField) {
  const std::string nul("a\0b", 3);
  const std::string big(size_t{100} * 1024, 'x');
  const std::vector<std::string> hostile = {
      "quote \" and backslash \\ and \\\" together",
      "line one\nline two\r\n{\"seq\":1}",
      nul,
      "tab\tbell\aesc\x1b del\x7f",
      "\",\"seq\":999,\"x\":\"",
      "invalid \xff utf8 \xc0\xaf overlong \xed\xa0\x80 surrogate \xe2\x82 cut",
      "valid \xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91 \xe2\x80\xa8",
      big + "\n" + big,
  };
  for (const std::string& s : hostile) {
    Entry e = MakeEntry(1);
    e.resource_id = s;
    e.operation_name = s;
    e.result_description = s;
    e.caller_ip = s;
    e.correlation_id = s;
    e.claims = {{s, s}};
    e.id = s;
    e.request_uri = s;
    e.client_info = s;
    e.extra = {{s, s}};
    std::string line;
    AppendRecordLine(line, e, 7, kGenesisHash);
    ASSERT_EQ(line.find('\n'), std::string::npos);
    ASSERT_EQ(line.find('\r'), std::string::npos);
    ASSERT_EQ(line.find('\0'), std::string::npos);
    auto j = ParseJson(line);
    ASSERT_TRUE(j.has_value()) << line.substr(0, 300);
    EXPECT_EQ((*j)["seq"], 7);
    bool valid_utf8 = s.find('\xff') == std::string::npos;
    if (valid_utf8) {
      EXPECT_EQ((*j)["operationName"], s);
      EXPECT_EQ((*j)["properties"]["clientInfo"], s);
      EXPECT_EQ((*j)["identity"]["claim"][s], s);
      EXPECT_EQ((*j)["properties"][s], s);
    } else {
      std::string got = (*j)["operationName"];
      EXPECT_NE(got.find("\xef\xbf\xbd"), std::string::npos);  // U+FFFD
      EXPECT_EQ(got.find('\xff'), std::string::npos);
    }
  }
}

// --- Writer -----------------------------------------------------------------

TEST_F(AuditLogTest, WritesAChainWithSignedCheckpoints) {
  WriteLog(Options(), 25);
  EXPECT_EQ(FileMode(dir_), 0700);
  EXPECT_EQ(FileMode(dir_ + "/checkpoint.key"), 0600);
  EXPECT_EQ(FileMode(dir_ + "/checkpoint.pub"), 0644);
  EXPECT_EQ(FileMode(dir_ + "/head"), 0600);
  ASSERT_EQ(Files(), std::vector<std::string>{"audit-00000000000000000001.jsonl"});
  EXPECT_EQ(FileMode(Path(Files()[0])), 0600);

  auto lines = AllLines();
  // 25 records, a checkpoint after every 10 and one at close.
  ASSERT_EQ(lines.size(), 28u);
  std::string prev(kGenesisHash);
  int records = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    Json j = Parse(lines[i]);
    EXPECT_EQ(j["seq"], i + 1);
    EXPECT_EQ(j["prev"], prev);
    if (j["category"] == kCheckpointCategory) {
      EXPECT_EQ(j["checkpoint"]["seq"], i);
      EXPECT_EQ(j["checkpoint"]["hash"], prev);
      EXPECT_EQ(j["checkpoint"]["retainedFrom"], 1);
    } else {
      EXPECT_EQ(j["correlationId"], "corr-" + std::to_string(records++));
    }
    prev = LineHash(lines[i]);
  }
  EXPECT_EQ(Parse(lines[10])["category"], kCheckpointCategory);
  EXPECT_EQ(Parse(lines.back())["category"], kCheckpointCategory);

  auto head_text = ReadFile(dir_ + "/head");
  ASSERT_TRUE(head_text.ok());
  EXPECT_EQ(head_text->size(), kHeadSize);
  auto head = ParseHead(*head_text);
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->seq, 28u);
  EXPECT_EQ(head->hash, prev);

  VerifyReport r = VerifyLog();
  EXPECT_TRUE(r.ok) << Describe(r);
  EXPECT_EQ(r.records, 25u);
  EXPECT_EQ(r.checkpoints, 3u);
  EXPECT_EQ(r.first_seq, 1u);
  EXPECT_EQ(r.last_seq, 28u);
}

TEST_F(AuditLogTest, AppendDurableIsInTheFileWhenItReturns) {
  LogOptions o = Options();
  o.flush_interval_ms = 600000;  // plain Append alone would sit in the queue
  auto log = OpenLog(o);
  ASSERT_NE(log, nullptr);
  log->Append(MakeEntry(0));
  ASSERT_TRUE(log->AppendDurable(MakeEntry(1)).ok());
  auto lines = AllLines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(Parse(lines[0])["correlationId"], "corr-0");  // the earlier record too
  EXPECT_EQ(Parse(lines[1])["correlationId"], "corr-1");
  EXPECT_EQ(log->last_seq(), 2u);
  log->Close();
  log->Close();  // idempotent
  EXPECT_EQ(log->AppendDurable(MakeEntry(2)).code(), StatusCode::kFailedPrecondition);
}

TEST_F(AuditLogTest, AppendReachesTheFileWithoutDurableCallers) {
  auto log = OpenLog(Options());
  ASSERT_NE(log, nullptr);
  log->Append(MakeEntry(0));
  ASSERT_TRUE(test::WaitUntil([&] { return !AllLines().empty(); }));
  ASSERT_EQ(AllLines().size(), 1u);
  EXPECT_EQ(Parse(AllLines()[0])["correlationId"], "corr-0");
}

TEST_F(AuditLogTest, RotatesBySizeAndTheChainContinuesAcrossFiles) {
  LogOptions o = Options();
  o.max_file_bytes = 4096;
  o.checkpoint_every = 1000;
  WriteLog(o, 60);
  auto files = Files();
  ASSERT_GE(files.size(), 4u);
  std::string prev_last;
  for (size_t i = 0; i < files.size(); ++i) {
    auto lines = Lines(files[i]);
    ASSERT_FALSE(lines.empty());
    EXPECT_LE(fs::file_size(Path(files[i])), 4096u);
    EXPECT_EQ(files[i], LogFileName(SeqOf(lines.front())));
    // Every file ends with a checkpoint (the last one at close).
    EXPECT_EQ(Parse(lines.back())["category"], kCheckpointCategory) << files[i];
    if (i > 0) {
      EXPECT_EQ(Parse(lines.front())["prev"], LineHash(prev_last)) << files[i];
    }
    prev_last = lines.back();
  }
  VerifyReport r = VerifyLog();
  EXPECT_TRUE(r.ok) << Describe(r);
  EXPECT_EQ(r.records, 60u);
}

TEST_F(AuditLogTest, RotatesByAge) {
  LogOptions o = Options();
  o.max_file_age_seconds = 3600;
  auto log = OpenLog(o);
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->AppendDurable(MakeEntry(0)).ok());
  ASSERT_TRUE(log->AppendDurable(MakeEntry(1)).ok());
  clock_.Advance(3599);
  ASSERT_TRUE(log->AppendDurable(MakeEntry(2)).ok());
  EXPECT_EQ(Files().size(), 1u);
  clock_.Advance(2);
  ASSERT_TRUE(log->AppendDurable(MakeEntry(3)).ok());
  log->Close();
  auto files = Files();
  ASSERT_EQ(files.size(), 2u);
  auto first = Lines(files[0]);
  auto second = Lines(files[1]);
  EXPECT_EQ(Parse(first.back())["category"], kCheckpointCategory);
  EXPECT_EQ(Parse(second.front())["correlationId"], "corr-3");
  EXPECT_EQ(Parse(second.front())["prev"], LineHash(first.back()));
  VerifyReport r = VerifyLog();
  EXPECT_TRUE(r.ok) << Describe(r);
}

TEST_F(AuditLogTest, ResumesAfterReopen) {
  WriteLog(Options(), 5);
  uint64_t last = SeqOf(AllLines().back());
  auto log = OpenLog(Options());
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->last_seq(), last);
  ASSERT_TRUE(log->AppendDurable(MakeEntry(100)).ok());
  log->Close();
  auto lines = AllLines();
  ASSERT_EQ(lines.size(), 8u);  // 5 + checkpoint + 1 + checkpoint
  EXPECT_EQ(Parse(lines[6])["seq"], last + 1);
  EXPECT_EQ(Parse(lines[6])["prev"], LineHash(lines[5]));
  VerifyReport r = VerifyLog();
  EXPECT_TRUE(r.ok) << Describe(r);
  // No recovery was needed.
  for (const auto& l : lines) {
    EXPECT_NE(Parse(l)["category"], kRecoveryCategory);
  }
}

TEST_F(AuditLogTest, ResumesAfterATornLastLineAndRecordsTheRepair) {
  WriteLog(Options(), 5);
  std::string file = Files().back();
  std::string intact = *ReadFile(Path(file));
  {
    std::ofstream out(Path(file), std::ios::binary | std::ios::app);
    out << "{\"time\":\"2026-01-05T01:33:00.0000000Z\",\"resourceId\":\"/SUBSCRIPTIONS/SU";
  }
  auto log = OpenLog(Options());
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->recovery_seq(), 7u);
  ASSERT_TRUE(log->AppendDurable(MakeEntry(9)).ok());
  log->Close();
  auto lines = AllLines();
  std::string text = *ReadFile(Path(file));
  EXPECT_EQ(text.compare(0, intact.size(), intact), 0);
  EXPECT_EQ(text.find("/SUBSCRIPTIONS/SU\""), std::string::npos);
  Json recovery = Parse(lines[6]);
  EXPECT_EQ(recovery["category"], kRecoveryCategory);
  EXPECT_EQ(recovery["seq"], 7);
  EXPECT_NE(std::string(recovery["resultDescription"]).find("truncated a partial last line"),
            std::string::npos);
  EXPECT_EQ(recovery["prev"], LineHash(lines[5]));
  EXPECT_EQ(Parse(lines[7])["correlationId"], "corr-9");
  // A recovery fails verification until an operator acknowledges it.
  VerifyReport r = VerifyLog();
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(HasProblem(r, file, 7, "not acknowledged")) << Describe(r);
  EXPECT_EQ(r.problems.size(), 1u) << Describe(r);

  log = OpenLog(Options());
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->recovery_seq(), 0u);
  ASSERT_TRUE(log->Acknowledge(7, "the host lost power at 01:33", "uid=0(root)").ok());
  log->Close();
  r = VerifyLog();
  EXPECT_TRUE(r.ok) << Describe(r);
  EXPECT_TRUE(HasNote(r, "the writer recovered: truncated a partial last line")) << Describe(r);
  EXPECT_TRUE(HasNote(r, "by uid=0(root): the host lost power at 01:33")) << Describe(r);
}

TEST_F(AuditLogTest, ResumesAfterTheProcessDiesWithoutClosing) {
  LogOptions o = Options();
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto log = Log::Open(o, clock_);
    if (!log.ok()) {
      ::_exit(2);
    }
    for (int i = 0; i < 13; ++i) {
      (*log)->Append(MakeEntry(i));
    }
    ::_exit((*log)->AppendDurable(MakeEntry(13)).ok() ? 0 : 3);  // no Close(), no checkpoint
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  auto before = AllLines();
  ASSERT_EQ(before.size(), 15u);  // 14 records and the checkpoint after 10
  EXPECT_NE(Parse(before.back())["category"], kCheckpointCategory);

  auto log = OpenLog(o);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->last_seq(), 16u);  // resuming signs what the dead writer left uncovered
  ASSERT_TRUE(log->AppendDurable(MakeEntry(14)).ok());
  log->Close();
  VerifyReport r = VerifyLog();
  EXPECT_TRUE(r.ok) << Describe(r);
  EXPECT_EQ(r.records, 15u);
}

TEST_F(AuditLogTest, ManyThreadsProduceOneStrictChainWhileReadersRead) {
  LogOptions o = Options();
  o.max_file_bytes = uint64_t{64} * 1024;
  o.checkpoint_every = 100;
  auto log = OpenLog(o);
  ASSERT_NE(log, nullptr);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 300;
  std::atomic<bool> writing{true};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        Entry e = MakeEntry(t * kPerThread + i);
        if (i % 3 == 0) {
          if (!log->AppendDurable(std::move(e)).ok()) {
            ++failures;
          }
        } else {
          log->Append(std::move(e));
        }
      }
    });
  }
  // Verify and Query run against the live log.
  std::atomic<int> bad_reports{0};
  std::thread reader([&] {
    while (writing.load()) {
      auto r = Verify(dir_, dir_ + "/checkpoint.pub");
      if (!r.ok() || !r->ok) {
        ++bad_reports;
        if (r.ok()) {
          std::cerr << Describe(*r);
        }
      }
      Filter f;
      f.top = 10;
      if (!Query(dir_, f).ok()) {
        ++bad_reports;
      }
    }
  });
  for (auto& t : threads) {
    t.join();
  }
  log->Close();
  writing = false;
  reader.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(bad_reports.load(), 0);

  auto lines = AllLines();
  uint64_t expected = 1;
  std::set<std::string> ids;
  for (const auto& l : lines) {
    Json j = Parse(l);
    EXPECT_EQ(j["seq"], expected++);
    if (j["category"] != kCheckpointCategory) {
      ids.insert(j["correlationId"].get<std::string>());
    }
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kThreads * kPerThread));
  VerifyReport r = VerifyLog();
  EXPECT_TRUE(r.ok) << Describe(r);
  EXPECT_EQ(r.records, static_cast<uint64_t>(kThreads * kPerThread));
}

TEST_F(AuditLogTest, AFullQueueMakesAppendWaitRatherThanDrop) {
  LogOptions o = Options();
  o.max_queued = 3;
  o.flush_interval_ms = 600000;  // only a full queue gets the writer going
  auto log = OpenLog(o);
  ASSERT_NE(log, nullptr);
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        log->Append(MakeEntry(t * 100 + i));
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  log->Close();
  VerifyReport r = VerifyLog();
  EXPECT_TRUE(r.ok) << Describe(r);
  EXPECT_EQ(r.records, 400u);
}

TEST_F(AuditLogTest, AFailedWriteIsReportedAndRetriedWithoutBreakingTheChain) {
  LogOptions o = Options();
  auto log = OpenLog(o);
  ASSERT_NE(log, nullptr);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(log->AppendDurable(MakeEntry(i)).ok());
  }
  // A file size limit stands in for a full disk: write(2) fails with EFBIG.
  ::signal(SIGXFSZ, SIG_IGN);
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  rlimit limited = old;
  limited.rlim_cur = fs::file_size(Path(Files()[0])) + 1200;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limited), 0);
  Status failed;
  int failed_at = -1;
  for (int i = 3; i < 10; ++i) {
    failed = log->AppendDurable(MakeEntry(i));
    if (!failed.ok()) {
      failed_at = i;
      break;
    }
  }
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &old), 0);
  ASSERT_NE(failed_at, -1);
  EXPECT_EQ(failed.code(), StatusCode::kUnavailable);
  // The failed record stays queued and goes out, once, before the next one.
  ASSERT_TRUE(log->AppendDurable(MakeEntry(50)).ok());
  log->Close();
  std::vector<std::string> ids;
  for (const auto& l : AllLines()) {
    Json j = Parse(l);
    if (j["category"] != kCheckpointCategory) {
      ids.push_back(j["correlationId"]);
    }
  }
  std::vector<std::string> want;
  for (int i = 0; i <= failed_at; ++i) {
    want.push_back("corr-" + std::to_string(i));
  }
  want.push_back("corr-50");
  EXPECT_EQ(ids, want);
  VerifyReport r = VerifyLog();
  EXPECT_TRUE(r.ok) << Describe(r);
}

TEST_F(AuditLogTest, RefusesASigningKeyOthersCanRead) {
  WriteLog(Options(), 1);
  fs::permissions(dir_ + "/checkpoint.key", fs::perms(0644));
  auto log = Log::Open(Options(), clock_);
  EXPECT_EQ(log.status().code(), StatusCode::kFailedPrecondition);
}

// --- Verify: tampering ------------------------------------------------------

TEST_F(AuditLogTest, VerifyFindsAnEditedRecord) {
  WriteLog(Options(), 25);
  auto [file, index] = Find(5);
  auto lines = Lines(file);
  size_t at = lines[index].find("SecretGet");
  ASSERT_NE(at, std::string::npos);
  lines[index].replace(at, 9, "SecretSet");
  WriteLines(file, lines);
  VerifyReport r = VerifyLog();
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(HasProblem(r, file, 5, "altered")) << Describe(r);
  EXPECT_EQ(r.problems[0].line, index + 1) << Describe(r);
}

TEST_F(AuditLogTest, VerifyFindsAnEditEvenWhenTheChainIsRecomputed) {
  WriteLog(Options(), 25);
  auto [file, index] = Find(5);
  auto lines = Lines(file);
  size_t at = lines[index].find("SecretGet");
  lines[index].replace(at, 9, "SecretSet");
  // An attacker without the key rewrites every later prev to match.
  std::string prev = LineHash(lines[index]);
  for (size_t i = index + 1; i < lines.size(); ++i) {
    size_t p = lines[i].find("\"prev\":\"");
    ASSERT_NE(p, std::string::npos);
    lines[i].replace(p + 8, 64, prev);
    prev = LineHash(lines[i]);
  }
  WriteLines(file, lines);
  VerifyReport r = VerifyLog();
  EXPECT_FALSE(r.ok);
  // The first checkpoint after the edit (seq 11) no longer matches its chain.
  EXPECT_TRUE(HasProblem(r, file, 11, "checkpoint")) << Describe(r);
}

TEST_F(AuditLogTest, VerifyFindsADeletedRecord) {
  WriteLog(Options(), 25);
  auto [file, index] = Find(7);
  auto lines = Lines(file);
  lines.erase(lines.begin() + static_cast<ptrdiff_t>(index));
  WriteLines(file, lines);
  VerifyReport r = VerifyLog();
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(HasProblem(r, file, 7, "missing")) << Describe(r);
  EXPECT_EQ(r.problems.size(), 1u) << Describe(r);
}

TEST_F(AuditLogTest, VerifyFindsSwappedRecords) {
  WriteLog(Options(), 25);
  auto [file, index] = Find(4);
  auto lines = Lines(file);
  std::swap(lines[index], lines[index + 1]);
  WriteLines(file, lines);
  VerifyReport r = VerifyLog();
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(HasProblem(r, file, 4, "out of order")) << Describe(r);
  EXPECT_EQ(r.problems.size(), 1u) << Describe(r);
}

TEST_F(AuditLogTest, VerifyFindsATruncatedTail) {
  WriteLog(Options(), 25);
  std::string file = Files().back();
  auto lines = Lines(file);
  uint64_t last = SeqOf(lines.back());
  lines.resize(lines.size() - 3);
  WriteLines(file, lines);
  VerifyReport r = VerifyLog();
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(HasProblem(r, file, last - 2, "truncated")) << Describe(r);
}

TEST_F(AuditLogTest, VerifyFindsATailCutMidLine) {
  WriteLog(Options(), 25);
  std::string file = Files().back();
  std::string text = *ReadFile(Path(file));
  uint64_t last = SeqOf(SplitLines(text).back());
  fs::resize_file(Path(file), text.size() - 40);
  VerifyReport r = VerifyLog();
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(HasProblem(r, file, last, "truncated")) << Describe(r);
}

TEST_F(AuditLogTest, VerifyFindsARemovedOldestFile) {
  LogOptions o = Options();
  o.max_file_bytes = 4096;
  WriteLog(o, 40);
  auto files = Files();
  ASSERT_GE(files.size(), 3u);
  fs::remove(Path(files[0]));
  VerifyReport r = VerifyLog();
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(HasProblem(r, files[1], 1, "other than by retention")) << Describe(r);
}

TEST_F(AuditLogTest, VerifyFindsAForgedCheckpointSignature) {
  WriteLog(Options(), 25);
  auto [file, index] = Find(11);
  auto lines = Lines(file);
  Json cp = Parse(lines[index]);
  ASSERT_EQ(cp["category"], kCheckpointCategory);
  auto forger = crypto::Ed25519Key::Generate();
  ASSERT_TRUE(forger.ok());
  std::string old_sig = cp["checkpoint"]["signature"];
  std::string new_sig = Base64Encode(
      (*forger)->Sign(CheckpointSigningInput(10, cp["checkpoint"]["hash"].get<std::string>(), 1)));
  lines[index].replace(lines[index].find(old_sig), old_sig.size(), new_sig);
  WriteLines(file, lines);
  VerifyReport r = VerifyLog();
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(HasProblem(r, file, 11, "signature does not verify")) << Describe(r);
}

TEST_F(AuditLogTest, VerifyFindsAMalformedLine) {
  WriteLog(Options(), 25);
  auto [file, index] = Find(3);
  auto lines = Lines(file);
  lines[index] = "not json at all";
  WriteLines(file, lines);
  VerifyReport r = VerifyLog();
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(HasProblem(r, file, 3, "malformed")) << Describe(r);
}

TEST_F(AuditLogTest, VerifyFindsAForgedHeadAndAWrongKey) {
  WriteLog(Options(), 5);
  auto forger = crypto::Ed25519Key::Generate();
  ASSERT_TRUE(forger.ok());
  auto head = ParseHead(*ReadFile(dir_ + "/head"));
  ASSERT_TRUE(head.has_value());
  ASSERT_TRUE(
      WriteFileAtomic(dir_ + "/head", FormatHead(head->seq + 5, head->hash, **forger), 0600).ok());
  VerifyReport r = VerifyLog();
  EXPECT_TRUE(HasProblem(r, "head", head->seq + 5, "signature")) << Describe(r);

  ASSERT_TRUE(crypto::SaveEd25519PublicKey(**forger, dir_ + "/other.pub").ok());
  auto other = Verify(dir_, dir_ + "/other.pub");
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->ok);
  EXPECT_EQ(Verify(dir_, dir_ + "/absent.pub").status().code(), StatusCode::kNotFound);
}

TEST_F(AuditLogTest, RetentionDeletesOldFilesAndStillVerifies) {
  LogOptions o = Options();
  o.max_file_age_seconds = 3600;
  o.retention_days = 1;
  auto log = OpenLog(o);
  ASSERT_NE(log, nullptr);
  int n = 0;
  for (int hour = 0; hour < 30; hour += 2) {
    for (int k = 0; k < 3; ++k, ++n) {
      Entry e = MakeEntry(n);
      e.time_us = clock_.NowSeconds() * 1000000;
      ASSERT_TRUE(log->AppendDurable(std::move(e)).ok());
    }
    clock_.Advance(int64_t{2} * 3600);
  }
  log->Close();
  auto files = Files();
  ASSERT_FALSE(files.empty());
  EXPECT_LT(files.size(), 15u);  // a file per two hours, a day's worth kept
  uint64_t first = SeqOf(Lines(files[0]).front());
  EXPECT_GT(first, 1u);
  VerifyReport r = VerifyLog();
  EXPECT_TRUE(r.ok) << Describe(r);
  EXPECT_EQ(r.first_seq, first);
  // The newest checkpoint says where retention left the log.
  Json last = Parse(AllLines().back());
  EXPECT_EQ(last["checkpoint"]["retainedFrom"], first);
}

TEST_F(AuditLogTest, RetentionIsAppliedWhenTheLogIsReopened) {
  LogOptions o = Options();
  o.max_file_age_seconds = 3600;
  o.retention_days = 0;
  auto log = OpenLog(o);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(log->AppendDurable(MakeEntry(i)).ok());
    clock_.Advance(7200);
  }
  log->Close();
  ASSERT_EQ(Files().size(), 3u);
  clock_.Advance(int64_t{5} * 86400);
  o.retention_days = 1;
  log = OpenLog(o);
  ASSERT_NE(log, nullptr);
  log->Close();
  EXPECT_EQ(Files().size(), 1u);
  VerifyReport r = VerifyLog();
  EXPECT_TRUE(r.ok) << Describe(r);
}

// --- Query ------------------------------------------------------------------

class AuditQueryTest : public AuditLogTest {
 protected:
  // Record i: vault alpha when i % 3 == 0 else beta; SecretGet for odd i;
  // caller oid-A when i % 4 == 0; status 404 when i % 5 == 0; time base + i s.
  void SetUp() override {
    AuditLogTest::SetUp();
    LogOptions o = Options();
    o.max_file_bytes = 8192;
    auto log = OpenLog(o);
    ASSERT_NE(log, nullptr);
    for (int i = 0; i < 60; ++i) {
      log->Append(MakeEntry(i, i % 3 == 0 ? "alpha" : "beta", i % 2 ? "SecretGet" : "SecretSet",
                            i % 4 == 0 ? "oid-A" : "oid-B", i % 5 == 0 ? 404 : 200));
    }
    log->Close();
    ASSERT_GE(Files().size(), 3u);
  }

  std::vector<int> Run(const Filter& f,
                       const std::function<bool(const Json&)>& may_read = nullptr) {
    auto got = Query(dir_, f, may_read);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    std::vector<int> ids;
    if (got.ok()) {
      for (const Json& j : *got) {
        EXPECT_TRUE(j.contains("seq"));
        EXPECT_TRUE(j.contains("prev"));
        ids.push_back(std::stoi(j["correlationId"].get<std::string>().substr(5)));
      }
    }
    return ids;
  }
  static std::vector<int> Where(const std::function<bool(int)>& pred, size_t top = 1000) {
    std::vector<int> ids;
    for (int i = 0; i < 60; ++i) {
      if (pred(i)) {
        ids.push_back(i);
      }
    }
    if (ids.size() > top) {
      ids.erase(ids.begin(), ids.end() - static_cast<ptrdiff_t>(top));
    }
    return ids;
  }
};

TEST_F(AuditQueryTest, NoFilterReturnsEveryRecordOldestFirstWithoutCheckpoints) {
  Filter f;
  f.top = 1000;
  EXPECT_EQ(Run(f), Where([](int) { return true; }));
}

TEST_F(AuditQueryTest, FiltersByEachField) {
  Filter f;
  f.top = 1000;
  f.vault = "ALPHA";
  EXPECT_EQ(Run(f), Where([](int i) { return i % 3 == 0; }));
  f = Filter{};
  f.top = 1000;
  f.operation = "secretget";
  EXPECT_EQ(Run(f), Where([](int i) { return i % 2 == 1; }));
  f.operation.clear();
  f.caller = "OID-A";
  EXPECT_EQ(Run(f), Where([](int i) { return i % 4 == 0; }));
  f.caller = "app-1";  // the appid claim
  EXPECT_EQ(Run(f), Where([](int i) { return i % 2 == 1; }));
  f.caller.clear();
  f.result = "Failure";
  EXPECT_EQ(Run(f), Where([](int i) { return i % 5 == 0; }));
  f.result = "404";
  EXPECT_EQ(Run(f), Where([](int i) { return i % 5 == 0; }));
  f.result = "success";
  EXPECT_EQ(Run(f), Where([](int i) { return i % 5 != 0; }));
  f.result = "banana";
  EXPECT_EQ(Query(dir_, f).status().code(), StatusCode::kInvalidArgument);
  f.result.clear();
  f.from_us = kBaseUs + int64_t{10} * 1000000;
  f.to_us = kBaseUs + int64_t{20} * 1000000;
  EXPECT_EQ(Run(f), Where([](int i) { return i >= 10 && i < 20; }));
  f.from_us = kBaseUs + 3600 * int64_t{1000000};
  f.to_us = 0;
  EXPECT_TRUE(Run(f).empty());
}

TEST_F(AuditQueryTest, TopKeepsTheNewestMatches) {
  Filter f;
  f.top = 5;
  EXPECT_EQ(Run(f), Where([](int) { return true; }, 5));
  f.top = 2;
  f.vault = "alpha";
  EXPECT_EQ(Run(f), (std::vector<int>{54, 57}));
  f.top = 0;
  EXPECT_TRUE(Run(f).empty());
}

TEST_F(AuditQueryTest, MayReadHidesRecords) {
  Filter f;
  f.top = 1000;
  auto only_alpha = [](const Json& j) {
    return StringMember(j, "resourceId").find("/ALPHA") != std::string::npos;
  };
  EXPECT_EQ(Run(f, only_alpha), Where([](int i) { return i % 3 == 0; }));
  EXPECT_EQ(Query(dir_ + "/absent", f).status().code(), StatusCode::kNotFound);
}

// Not a test: run with --gtest_also_run_disabled_tests to print the rate.
TEST_F(AuditLogTest, DISABLED_Throughput) {
  LogOptions o = Options();
  o.checkpoint_every = 1000;
  o.flush_interval_ms = 200;
  auto log = OpenLog(o);
  ASSERT_NE(log, nullptr);
  constexpr int kThreads = 2;
  constexpr int kPerThread = 100000;
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        log->Append(MakeEntry(t * kPerThread + i));
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  log->Close();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  uintmax_t bytes = 0;
  for (const auto& f : Files()) {
    bytes += fs::file_size(Path(f));
  }
  std::cout << "audit throughput: " << static_cast<int64_t>(kThreads * kPerThread / secs)
            << " records/s (" << bytes / (uintmax_t{kThreads} * kPerThread) << " bytes/record)\n";
  auto durable_start = std::chrono::steady_clock::now();
  log = OpenLog(o);
  threads.clear();
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        EXPECT_TRUE(log->AppendDurable(MakeEntry(t * 500 + i)).ok());
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  log->Close();
  secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - durable_start).count();
  std::cout << "audit durable throughput, 8 threads: " << static_cast<int64_t>(4000 / secs)
            << " records/s\n";
  auto verify_start = std::chrono::steady_clock::now();
  VerifyReport r = VerifyLog();
  secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - verify_start).count();
  EXPECT_TRUE(r.ok) << Describe(r);
  std::cout << "audit verify: " << static_cast<int64_t>(static_cast<double>(r.last_seq) / secs)
            << " lines/s\n";
}

}  // namespace
}  // namespace coffer::audit
