// Opening a log: what resuming records, the acknowledgement of it, the
// log's lock and its signing key.

#include <fcntl.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "audit/audit_test_util.h"
#include "common/encoding.h"
#include "common/file_system.h"
#include "crypto/ed25519.h"

namespace coffer::audit {
namespace {

// The recovery records in the log, as parsed lines.
std::vector<Json> RecoveryRecords(const std::vector<std::string>& lines) {
  std::vector<Json> out;
  for (const auto& l : lines) {
    Json j = Parse(l);
    if (j["category"] == kRecoveryCategory) {
      out.push_back(j);
    }
  }
  return out;
}

TEST_F(AuditLogTest, ARestartAfterOldFilesWereDeletedIsRecordedAndFailsUntilAcknowledged) {
  LogOptions o = Options();
  o.max_file_bytes = 4096;
  WriteLog(o, 40);
  auto files = Files();
  ASSERT_GE(files.size(), 4u);
  const uint64_t kept_from = *SeqFromLogFileName(files[2]);
  fs::remove(Path(files[0]));
  fs::remove(Path(files[1]));

  // The restart: the next checkpoint says where the files now begin, so the
  // gap must be said by the recovery record.
  auto log = OpenLog(o);
  ASSERT_NE(log, nullptr);
  log->Close();
  auto recoveries = RecoveryRecords(AllLines());
  ASSERT_EQ(recoveries.size(), 1u);
  const uint64_t recovery_seq = recoveries[0]["seq"];
  std::string what = recoveries[0]["resultDescription"];
  EXPECT_NE(what.find("records 1.." + std::to_string(kept_from - 1) +
                      " are missing: log files were removed other than by retention"),
            std::string::npos)
      << what;
  EXPECT_EQ(Parse(AllLines().back())["checkpoint"]["retainedFrom"], kept_from);

  auto [file, index] = Find(recovery_seq);
  VerifyReport r = VerifyLog();
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(HasProblem(r, file, recovery_seq, "not acknowledged")) << Describe(r);
  EXPECT_TRUE(HasProblem(r, file, recovery_seq, "removed other than by retention")) << Describe(r);
  EXPECT_EQ(r.problems.size(), 1u) << Describe(r);

  // The acknowledgement is a line of the chain, signed by the checkpoint
  // Close writes after it.
  log = OpenLog(o);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->Acknowledge(recovery_seq, "", "alice").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(log->Acknowledge(recovery_seq, std::string(513, 'r'), "alice").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(log->Acknowledge(recovery_seq - 1, "why", "alice").code(),
            StatusCode::kInvalidArgument);  // a checkpoint, not a recovery
  EXPECT_EQ(log->Acknowledge(1, "why", "alice").code(), StatusCode::kNotFound);  // deleted
  EXPECT_EQ(log->Acknowledge(log->last_seq() + 5, "why", "alice").code(), StatusCode::kNotFound);
  ASSERT_TRUE(
      log->Acknowledge(recovery_seq, "old files removed by the backup job", "uid=0(root)").ok());
  const uint64_t ack_seq = log->last_seq();
  log->Close();
  Json ack = Parse(AllLines()[AllLines().size() - 2]);
  EXPECT_EQ(ack["seq"], ack_seq);
  EXPECT_EQ(ack["category"], kAcknowledgementCategory);
  EXPECT_EQ(ack["operationName"], "AuditLogAcknowledge");
  EXPECT_EQ(ack["resultDescription"], "old files removed by the backup job");
  EXPECT_EQ(ack["properties"][kAcknowledgedSeqProperty], std::to_string(recovery_seq));
  EXPECT_EQ(ack["properties"][kAcknowledgedHashProperty], LineHash(Lines(file)[index]));
  EXPECT_EQ(ack["properties"][kOperatorProperty], "uid=0(root)");
  EXPECT_EQ(Parse(AllLines().back())["category"], kCheckpointCategory);
  r = VerifyLog();
  EXPECT_TRUE(r.ok) << Describe(r);
  EXPECT_TRUE(HasNote(r, "acknowledged at seq " + std::to_string(ack_seq) +
                             " by uid=0(root): old files removed by the backup job"))
      << Describe(r);
}

TEST_F(AuditLogTest, AnAcknowledgementOfAnotherRecordDoesNotCount) {
  WriteLog(Options(), 3);
  fs::remove(dir_ + "/head");
  auto log = OpenLog(Options());  // records the missing head
  ASSERT_NE(log, nullptr);
  const uint64_t recovery_seq = log->recovery_seq();
  ASSERT_NE(recovery_seq, 0u);
  ASSERT_TRUE(log->Acknowledge(recovery_seq, "mine", "bob").ok());
  log->Close();
  // Someone without the key edits the acknowledged record; the rest of the
  // chain is recomputed, so only the acknowledgement's hash tells.
  RewriteFrom(recovery_seq, [](std::string& line) {
    size_t at = line.find("the head file was missing");
    if (at != std::string::npos) {
      line.replace(at, 8, "THE HEAD");
    }
  });
  VerifyReport r = VerifyLog();
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(HasProblem(r, Files().back(), recovery_seq, "not acknowledged")) << Describe(r);
}

TEST_F(AuditLogTest, ARestartRecordsADeletedOrGarbledHead) {
  for (std::string damage : {"deleted", "garbled"}) {
    SCOPED_TRACE(damage);
    fs::remove_all(dir_);
    WriteLog(Options(), 5);
    if (damage == "deleted") {
      fs::remove(dir_ + "/head");
    } else {
      ASSERT_TRUE(WriteFileAtomic(dir_ + "/head", std::string(kHeadSize, 'x'), 0600).ok());
    }
    auto log = OpenLog(Options());
    ASSERT_NE(log, nullptr);
    log->Close();
    auto recoveries = RecoveryRecords(AllLines());
    ASSERT_EQ(recoveries.size(), 1u);
    std::string what = recoveries[0]["resultDescription"];
    EXPECT_NE(what.find(damage == "deleted" ? "the head file was missing"
                                            : "the head file was unreadable"),
              std::string::npos)
        << what;
    VerifyReport r = VerifyLog();
    EXPECT_FALSE(r.ok);
    EXPECT_TRUE(HasProblem(r, Files().back(), recoveries[0]["seq"], "not acknowledged"))
        << Describe(r);
  }
}

TEST_F(AuditLogTest, ARestartRecordsRecordsNothingVouchesFor) {
  WriteLogAndDie(Options(), 5);  // head = seq 5, no checkpoint
  std::string file = Files().back();
  auto lines = Lines(file);
  std::string fake;
  AppendRecordLine(fake, MakeEntry(90), 6, LineHash(lines.back()));
  lines.push_back(fake);
  WriteLines(file, lines);
  auto log = OpenLog(Options());
  ASSERT_NE(log, nullptr);
  log->Close();
  auto recoveries = RecoveryRecords(AllLines());
  ASSERT_EQ(recoveries.size(), 1u);
  EXPECT_EQ(recoveries[0]["seq"], 7);
  EXPECT_NE(std::string(recoveries[0]["resultDescription"])
                .find("records 6 are vouched for by neither the head nor a checkpoint"),
            std::string::npos)
      << recoveries[0];
  // The checkpoints the restart wrote sign seq 6 now, but the recovery
  // record before them says what it was.
  VerifyReport r = VerifyLog();
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(HasProblem(r, file, 7, "not acknowledged")) << Describe(r);
}

TEST_F(AuditLogTest, OneProcessHoldsTheLogAtATime) {
  auto log = OpenLog(Options());
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->AppendDurable(MakeEntry(0)).ok());
  auto second = Log::Open(Options(), clock_);
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("is open in another process"), std::string::npos)
      << second.status().ToString();
  EXPECT_TRUE(VerifyLog().ok);  // readers are never in the way
  log->Close();
  log = OpenLog(Options());
  EXPECT_NE(log, nullptr);
}

// --- The signing key --------------------------------------------------------

class AuditKeyTest : public AuditLogTest {
 protected:
  void SetUp() override {
    AuditLogTest::SetUp();
    key_dir_ = dir_ + "-keys";
    fs::remove_all(key_dir_);
    fs::create_directories(key_dir_);
    fs::permissions(key_dir_, fs::perms(0700));
  }
  void TearDown() override {
    fs::remove_all(key_dir_);
    AuditLogTest::TearDown();
  }
  LogOptions Options() const {
    LogOptions o = AuditLogTest::Options();
    o.signing_key_path = key_dir_ + "/audit-signing.key";
    return o;
  }
  // Re-signs every checkpoint and the head with `key`, recomputing the chain,
  // and puts its public half in the log directory: what someone who can
  // write the directory, but has no access to the real key, can do.
  void Resign(const crypto::Ed25519Key& key) {
    std::string prev(kGenesisHash);
    uint64_t last = 0;
    for (const auto& name : Files()) {
      auto lines = Lines(name);
      for (auto& line : lines) {
        Json j = Parse(line);
        uint64_t seq = j["seq"];
        if (j["category"] == kCheckpointCategory) {
          uint64_t from = j["checkpoint"]["retainedFrom"];
          std::string sig = key.Sign(CheckpointSigningInput(seq - 1, prev, from));
          line.clear();
          AppendCheckpointLine(line, kBaseUs, seq, prev, from, KeyId(key), sig);
        } else {
          line.replace(line.find("\"prev\":\"") + 8, 64, prev);
        }
        prev = LineHash(line);
        last = seq;
      }
      WriteLines(name, lines);
    }
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/head", FormatHead(last, prev, key), 0600).ok());
    ASSERT_TRUE(crypto::SaveEd25519PrivateKey(key, dir_ + "/checkpoint.key").ok());
    ASSERT_TRUE(crypto::SaveEd25519PublicKey(key, dir_ + "/checkpoint.pub").ok());
  }

  std::string key_dir_;
};

TEST_F(AuditKeyTest, AKeyOutsideTheLogDirectoryCannotBeReplacedFromIt) {
  WriteLog(Options(), 25);
  const std::string key_path = key_dir_ + "/audit-signing.key";
  EXPECT_EQ(FileMode(key_path), 0600);
  EXPECT_FALSE(fs::exists(dir_ + "/checkpoint.key"));
  EXPECT_EQ(FileMode(dir_ + "/checkpoint.pub"), 0644);  // where verifiers look
  auto real = crypto::LoadEd25519PublicKey(key_path);   // the public half of the key file
  ASSERT_TRUE(real.ok());
  EXPECT_EQ(*ReadFile(dir_ + "/checkpoint.pub"), (*real)->PublicPem());
  ASSERT_TRUE(crypto::SaveEd25519PublicKey(**real, key_dir_ + "/trusted.pub").ok());
  ASSERT_TRUE(Verify(dir_, key_dir_ + "/trusted.pub")->ok);

  auto forger = crypto::Ed25519Key::Generate();
  ASSERT_TRUE(forger.ok());
  Resign(**forger);
  // The directory is consistent with the key it now holds...
  VerifyReport r = VerifyLog();
  EXPECT_TRUE(r.ok) << Describe(r);
  // ...but not with the server's.
  auto trusted = Verify(dir_, key_dir_ + "/trusted.pub");
  ASSERT_TRUE(trusted.ok());
  EXPECT_FALSE(trusted->ok);
  EXPECT_TRUE(HasProblem(*trusted, "head", 28, "signature does not verify")) << Describe(*trusted);
  EXPECT_TRUE(HasProblem(*trusted, Files()[0], 11, "signed by another key")) << Describe(*trusted);

  // The server starts again with its own key: it ignores the one in the
  // directory, puts its public key back and records what it found.
  auto log = OpenLog(Options());
  ASSERT_NE(log, nullptr);
  log->Close();
  EXPECT_EQ(*ReadFile(dir_ + "/checkpoint.pub"), (*real)->PublicPem());
  auto recoveries = RecoveryRecords(AllLines());
  ASSERT_EQ(recoveries.size(), 1u);
  std::string what = recoveries[0]["resultDescription"];
  EXPECT_NE(what.find("the head file's signature did not verify"), std::string::npos) << what;
  EXPECT_NE(what.find("the newest checkpoint (seq 28) does not verify"), std::string::npos) << what;
  r = VerifyLog();
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(HasProblem(r, Files()[0], 11, "signed by another key")) << Describe(r);
}

TEST_F(AuditKeyTest, AMissingKeyIsCreatedForANewLogOnly) {
  auto log = OpenLog(Options());
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->AppendDurable(MakeEntry(0)).ok());
  log->Close();
  fs::remove(key_dir_ + "/audit-signing.key");
  auto reopened = Log::Open(Options(), clock_);
  EXPECT_EQ(reopened.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(reopened.status().message().find("audit-signing.key does not exist, but"),
            std::string::npos)
      << reopened.status().ToString();
  // Nothing was written on the way.
  EXPECT_FALSE(fs::exists(key_dir_ + "/audit-signing.key"));
  EXPECT_EQ(AllLines().size(), 2u);
}

TEST_F(AuditKeyTest, AKeyThatCannotBeTrustedIsRefusedWithItsReason) {
  WriteLog(Options(), 1);
  const std::string key_path = key_dir_ + "/audit-signing.key";
  auto refused = [&](const std::string& why) {
    auto log = Log::Open(Options(), clock_);
    EXPECT_EQ(log.status().code(), StatusCode::kFailedPrecondition) << why;
    EXPECT_NE(log.status().message().find(why), std::string::npos) << log.status().ToString();
    EXPECT_NE(log.status().message().find(key_path), std::string::npos) << log.status().ToString();
  };
  fs::permissions(key_path, fs::perms(0640));
  refused("readable by group or others");
  fs::permissions(key_path, fs::perms(0600));
  std::string pem = *ReadFile(key_path);
  fs::rename(key_path, key_path + ".real");
  fs::create_directory(key_path);
  refused("is not a regular file");
  fs::remove(key_path);
  ASSERT_TRUE(WriteFileAtomic(key_path, "not a key", 0600).ok());
  auto log = Log::Open(Options(), clock_);
  EXPECT_EQ(log.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(log.status().message().find("the audit signing key cannot be used"), std::string::npos)
      << log.status().ToString();
  ASSERT_TRUE(WriteFileAtomic(key_path, pem, 0600).ok());
  EXPECT_NE(OpenLog(Options()), nullptr);
}

TEST_F(AuditKeyTest, AKeyOwnedByAnotherUserIsRefused) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "giving the key file to another uid needs root";
  }
  WriteLog(Options(), 1);
  const std::string key_path = key_dir_ + "/audit-signing.key";
  ASSERT_EQ(::chown(key_path.c_str(), 12345, 12345), 0);
  auto log = Log::Open(Options(), clock_);
  EXPECT_EQ(log.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(log.status().message().find(key_path + " is owned by uid 12345"), std::string::npos)
      << log.status().ToString();
  ASSERT_EQ(::chown(key_path.c_str(), 0, 0), 0);
  EXPECT_NE(OpenLog(Options()), nullptr);
}

}  // namespace
}  // namespace coffer::audit
