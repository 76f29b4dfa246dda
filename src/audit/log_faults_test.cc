// The audit log on a failing disk. A short run (open, thirteen durable
// records across rotations and checkpoints, close) is made once to count its
// file operations, then once for each of them with that operation failing
// with ENOSPC or EIO: once, or from there on until the disk is "freed". Each
// run shows that a failure the caller waits on is reported (the server
// answers it with 503), that no record is lost or written twice, and that
// after a restart `Verify` passes or names the damage.

#include <cerrno>
#include <cstring>
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "audit/audit_test_util.h"
#include "common/fault_injecting_file_system.h"
#include "crypto/ed25519.h"

namespace coffer::audit {
namespace {

constexpr int kRecords = 13;  // the last checkpoint is Close's

struct FaultCase {
  int err;
  bool sticky;  // the disk stays full (or broken) until the test frees it
};

std::string CaseName(const ::testing::TestParamInfo<FaultCase>& info) {
  return std::string(info.param.err == ENOSPC ? "ENOSPC" : "EIO") +
         (info.param.sticky ? "UntilFreed" : "Once");
}

// What one run saw.
struct RunResult {
  Status open_error;         // the first Open's, if it failed
  std::vector<int> refused;  // records whose AppendDurable failed
  std::vector<Status> refusals;
  uint64_t appends_from = 0;  // operation numbers: after Open returned,
  uint64_t close_from = 0;    // and when Close began
};

class AuditFaultTest : public AuditLogTest, public ::testing::WithParamInterface<FaultCase> {
 protected:
  void SetUp() override {
    AuditLogTest::SetUp();
    // Hundreds of runs of a few dozen fdatasyncs each: on tmpfs, where they
    // cost nothing, if there is one. The faults are the fake's, not the disk's.
    if (fs::is_directory("/dev/shm")) {
      // Named after the test's own temporary directory: tests run in parallel.
      dir_ = "/dev/shm/" + fs::path(root_.path()).filename().string() + "-audit";
    }
    // One key for every run, kept outside the log directory, and its public
    // half put in place before each run: making them costs fsyncs, and is no
    // operation of the seam.
    key_path_ = dir_ + ".key";
    auto key = crypto::Ed25519Key::Generate();
    ASSERT_TRUE(key.ok());
    ASSERT_TRUE(crypto::SaveEd25519PrivateKey(**key, key_path_).ok());
    public_pem_ = (*key)->PublicPem();
  }
  void TearDown() override {
    fs::remove(key_path_);
    fs::remove_all(dir_);
    AuditLogTest::TearDown();
  }
  void FreshDirectory() {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    fs::permissions(dir_, fs::perms(0700));
    std::ofstream(dir_ + "/checkpoint.pub") << public_pem_;
  }
  LogOptions Options() const {
    LogOptions o = AuditLogTest::Options();
    o.signing_key_path = key_path_;
    return o;
  }
  LogOptions FaultOptions(FileSystem* fs) const {
    LogOptions o = Options();
    o.file_system = fs;
    o.max_file_bytes = 4096;  // a rotation every five records or so
    o.checkpoint_every = 4;
    o.retry_delay_ms = 0;
    return o;
  }

  RunResult RunOnce(FaultInjectingFileSystem& faulty) {
    RunResult out;
    auto log = Log::Open(FaultOptions(&faulty), clock_);
    if (!log.ok()) {
      out.open_error = log.status();
      faulty.Heal();
      log = Log::Open(FaultOptions(&faulty), clock_);
      EXPECT_TRUE(log.ok()) << "after healing: " << log.status().ToString();
      if (!log.ok()) {
        return out;
      }
    }
    out.appends_from = faulty.operations();
    for (int i = 0; i < kRecords; ++i) {
      Status s = (*log)->AppendDurable(MakeEntry(i));
      if (!s.ok()) {
        out.refused.push_back(i);
        out.refusals.push_back(s);
        faulty.Heal();  // the operator frees space; the writer retries
      }
    }
    out.close_from = faulty.operations();
    (*log)->Close();
    return out;
  }

  std::string key_path_;
  std::string public_pem_;
};

TEST_P(AuditFaultTest, EveryOperationFailingLosesNothingAcknowledgedAndVerifyNamesTheDamage) {
  const FaultCase c = GetParam();
  FreshDirectory();
  FaultInjectingFileSystem counting(FileSystem::Default());
  RunResult clean = RunOnce(counting);
  ASSERT_TRUE(clean.open_error.ok());
  ASSERT_TRUE(clean.refused.empty());
  const uint64_t total = counting.operations();
  ASSERT_GT(total, 60u) << "the run should rotate and checkpoint";
  // Damage a restart found, by kind; runs that verified clean.
  std::map<std::string, int> outcomes;

  for (uint64_t n = 1; n <= total; ++n) {
    FreshDirectory();
    FaultInjectingFileSystem faulty(FileSystem::Default());
    faulty.FailAt(n, c.err, c.sticky);
    RunResult run = RunOnce(faulty);
    const std::vector<std::string> trace = faulty.Trace();
    ASSERT_GE(trace.size(), n);
    const std::string failed_op = trace[n - 1];
    SCOPED_TRACE("operation " + failed_op);
    const std::string errno_text = std::strerror(c.err);

    // The failure is reported, with the system's words for it.
    if (!run.open_error.ok()) {
      EXPECT_TRUE(run.open_error.code() == StatusCode::kUnavailable ||
                  run.open_error.code() == StatusCode::kFailedPrecondition)
          << run.open_error.ToString();
      EXPECT_NE(run.open_error.message().find(errno_text), std::string::npos)
          << run.open_error.ToString();
    }
    for (const Status& s : run.refusals) {
      EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
      EXPECT_NE(s.message().find(errno_text), std::string::npos) << s.ToString();
    }
    // A disk that stays broken fails every record written on it until it is
    // freed, so a failed write of the log during the records is seen by the
    // caller waiting for it. (A one-off failure may be repaired by the
    // retry before the caller looks: then it is told the truth, success.)
    bool log_write = (failed_op.find(" write ") != std::string::npos ||
                      failed_op.find(" fdatasync ") != std::string::npos) &&
                     failed_op.find(".jsonl") != std::string::npos;
    if (c.sticky && log_write && n > run.appends_from && n <= run.close_from) {
      EXPECT_FALSE(run.refused.empty());
    }

    // A restart, as the server's next start, on a healthy disk.
    auto restarted = Log::Open(Options(), clock_);
    ASSERT_TRUE(restarted.ok()) << restarted.status().ToString();
    (*restarted)->Close();

    // Nothing is lost or written twice: every record, refused ones too
    // (they were retried), once and in order.
    std::vector<std::string> ids;
    for (const auto& line : AllLines()) {
      Json j = Parse(line);
      if (j["category"] == kAuditEventCategory) {
        ids.push_back(j["correlationId"]);
      }
    }
    std::vector<std::string> want;
    for (int i = 0; i < kRecords; ++i) {
      want.push_back("corr-" + std::to_string(i));
    }
    EXPECT_EQ(ids, want);

    // Verify passes, or each problem is a recovery the restart wrote, which
    // says what it found.
    VerifyReport r = VerifyLog();
    if (r.ok) {
      ++outcomes["verified clean"];
      continue;
    }
    for (const auto& p : r.problems) {
      EXPECT_NE(p.what.find("not acknowledged"), std::string::npos) << Describe(r);
      bool named = false;
      for (const char* damage :
           {"truncated a partial last line", "are vouched for by neither the head nor a checkpoint",
            "differs from the one the head signed"}) {
        if (p.what.find(damage) != std::string::npos) {
          named = true;
          ++outcomes[damage];
        }
      }
      EXPECT_TRUE(named) << Describe(r);
    }
  }
  std::string summary;
  for (const auto& [what, count] : outcomes) {
    summary += "\n  " + std::to_string(count) + "x " + what;
  }
  std::cout << total << " operations, each failing " << CaseName({c, 0}) << ":" << summary << "\n";
}

INSTANTIATE_TEST_SUITE_P(Faults, AuditFaultTest,
                         ::testing::Values(FaultCase{ENOSPC, false}, FaultCase{ENOSPC, true},
                                           FaultCase{EIO, false}, FaultCase{EIO, true}),
                         CaseName);

}  // namespace
}  // namespace coffer::audit
