// Verify and the end of the log: the head must be there and signed, and
// every record must be vouched for by the head or a checkpoint after it.

#include <fcntl.h>

#include <string>

#include <gtest/gtest.h>

#include "audit/audit_test_util.h"
#include "common/file_system.h"

namespace coffer::audit {
namespace {

void EditOperation(std::string& line) {
  size_t at = line.find("SecretGet");
  ASSERT_NE(at, std::string::npos) << line;
  line.replace(at, 9, "SecretSet");
}

// A closed log of 25 records: checkpoints at seq 11, 22 and 28 (Close).
TEST_F(AuditLogTest, VerifyFindsADeletedHead) {
  WriteLog(Options(), 25);
  fs::remove(dir_ + "/head");
  VerifyReport r = VerifyLog();
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(HasProblem(r, "head", 0, "the head file is missing")) << Describe(r);
  EXPECT_EQ(r.problems.size(), 1u) << Describe(r);

  // --without-head: the rest holds (the log ends with a checkpoint), and
  // the report says loudly what was not checked.
  r = VerifyLog(VerifyOptions{.without_head = true});
  EXPECT_TRUE(r.ok) << Describe(r);
  EXPECT_TRUE(HasNote(r, "WITHOUT THE HEAD: the head file is missing")) << Describe(r);
}

TEST_F(AuditLogTest, VerifyFindsAGarbledHead) {
  WriteLog(Options(), 25);
  std::string head = *ReadFile(dir_ + "/head");
  for (const std::string& garbled :
       {std::string(kHeadSize, 'x'), head.substr(0, 100), std::string(" \n")}) {
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/head", garbled, 0600).ok());
    VerifyReport r = VerifyLog();
    EXPECT_FALSE(r.ok);
    EXPECT_TRUE(HasProblem(r, "head", 0, "unreadable")) << Describe(r);
    r = VerifyLog(VerifyOptions{.without_head = true});
    EXPECT_TRUE(r.ok) << Describe(r);
  }
}

TEST_F(AuditLogTest, VerifyFindsATailCutAfterTheHeadWasDeleted) {
  WriteLog(Options(), 25);
  std::string file = Files().back();
  auto lines = Lines(file);
  ASSERT_EQ(lines.size(), 28u);
  fs::remove(dir_ + "/head");
  // Cut records 26, 27 and the closing checkpoint: 23..25 remain after the
  // checkpoint at 22, and nothing vouches for them.
  WriteLines(file, std::vector<std::string>(lines.begin(), lines.begin() + 25));
  for (bool without_head : {false, true}) {
    VerifyReport r = VerifyLog(VerifyOptions{.without_head = without_head});
    EXPECT_FALSE(r.ok);
    EXPECT_TRUE(HasProblem(r, file, 23, "records 23..25 are vouched for by neither"))
        << Describe(r);
    EXPECT_EQ(HasProblem(r, "head", 0, "missing"), !without_head) << Describe(r);
  }
  // Cut right after a checkpoint, only the head could tell: without it the
  // log looks whole, which is why --without-head must be asked for.
  WriteLines(file, std::vector<std::string>(lines.begin(), lines.begin() + 22));
  EXPECT_FALSE(VerifyLog().ok);
  VerifyReport r = VerifyLog(VerifyOptions{.without_head = true});
  EXPECT_TRUE(r.ok) << Describe(r);
  EXPECT_EQ(r.last_seq, 22u);
}

// A writer that died: records 23..27 follow the checkpoint at seq 22, and
// only the head (seq 27) vouches for them.
TEST_F(AuditLogTest, VerifyFindsTheRecordsAfterTheLastCheckpointRewritten) {
  WriteLogAndDie(Options(), 25);
  ASSERT_EQ(SeqOf(AllLines().back()), 27u);
  ASSERT_TRUE(VerifyLog().ok) << Describe(VerifyLog());
  std::string file = Files().back();
  std::string head = *ReadFile(dir_ + "/head");
  RewriteFrom(23, EditOperation);

  // The head still names the old seq 27.
  VerifyReport r = VerifyLog();
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(HasProblem(r, file, 27, "differs from the one the head signed")) << Describe(r);

  // Deleted or garbled as well: nothing vouches for 23..27 any more.
  for (std::string damage : {"delete", "garble"}) {
    if (damage == "delete") {
      fs::remove(dir_ + "/head");
    } else {
      ASSERT_TRUE(WriteFileAtomic(dir_ + "/head", std::string(kHeadSize, '#'), 0600).ok());
    }
    for (bool without_head : {false, true}) {
      r = VerifyLog(VerifyOptions{.without_head = without_head});
      EXPECT_FALSE(r.ok) << damage;
      EXPECT_TRUE(HasProblem(r, file, 23, "records 23..27 are vouched for by neither"))
          << damage << "\n"
          << Describe(r);
    }
  }
}

TEST_F(AuditLogTest, VerifyFindsRecordsAppendedAfterTheHead) {
  WriteLog(Options(), 5);
  std::string file = Files().back();
  auto lines = Lines(file);
  ASSERT_EQ(SeqOf(lines.back()), 6u);
  // Well chained, but added by someone without the key.
  for (int i = 0; i < 2; ++i) {
    std::string fake;
    AppendRecordLine(fake, MakeEntry(90 + i), SeqOf(lines.back()) + 1, LineHash(lines.back()));
    lines.push_back(fake);
  }
  WriteLines(file, lines);
  VerifyReport r = VerifyLog();
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(HasProblem(r, file, 7, "records 7..8 are vouched for by neither")) << Describe(r);
  EXPECT_EQ(r.problems.size(), 1u) << Describe(r);
}

// While a process holds the log, lines past the head may be a batch whose
// head is being written: Verify reads the head again for a while (here
// shortened), and calls the lines unvouched only when it never comes.
TEST_F(AuditLogTest, VerifyGivesALiveWriterTimeForItsHeadAndNoMore) {
  WriteLog(Options(), 5);
  std::string file = Files().back();
  auto lines = Lines(file);
  std::string fake;
  AppendRecordLine(fake, MakeEntry(90), SeqOf(lines.back()) + 1, LineHash(lines.back()));
  lines.push_back(fake);
  WriteLines(file, lines);
  // A "writer" that holds the lock and never writes a head.
  auto holder = FileSystem::Default().Open(dir_ + "/head", O_RDWR);
  ASSERT_TRUE(holder.ok());
  ASSERT_TRUE((*holder)->TryLockExclusive().ok());
  VerifyReport r = VerifyLog(VerifyOptions{.live_writer_wait_ms = 200});
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(HasProblem(r, file, 7, "vouched for by neither")) << Describe(r);
}

}  // namespace
}  // namespace coffer::audit
