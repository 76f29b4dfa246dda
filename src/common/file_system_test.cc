#include "common/file_system.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <gtest/gtest.h>

#include "common/clock.h"
#include "common/fault_injecting_file_system.h"

namespace coffer {
namespace {

namespace fs = std::filesystem;

class FileSystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() /
            ("coffer-fs-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string dir_;
  FileSystem& posix_ = FileSystem::Default();
};

TEST_F(FileSystemTest, PosixCallsDoWhatTheirNamesSay) {
  std::string path = dir_ + "/a";
  auto file = posix_.Open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  ASSERT_TRUE(WriteFully(**file, "hello ").ok());
  ASSERT_TRUE(WriteFully(**file, "world").ok());
  ASSERT_TRUE((*file)->DataSync().ok());
  ASSERT_TRUE((*file)->Chmod(0640).ok());
  auto info = (*file)->Stat();
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->size, 11u);
  EXPECT_EQ(info->mode, 0640u);
  EXPECT_TRUE(info->is_regular);
  EXPECT_EQ(info->uid, ::geteuid());
  ASSERT_TRUE((*file)->Truncate(5).ok());
  file->reset();
  EXPECT_EQ(*ReadWholeFile(posix_, path), "hello");

  auto rw = posix_.Open(path, O_RDWR);
  ASSERT_TRUE(rw.ok());
  ASSERT_EQ(*(*rw)->PWrite("J", 0), 1u);
  char buf[4] = {};
  ASSERT_TRUE(PReadFully(**rw, buf, 4, 1).ok());
  EXPECT_EQ(std::string(buf, 4), "ello");
  EXPECT_EQ(PReadFully(**rw, buf, 4, 3).code(), StatusCode::kUnavailable);  // past the end

  ASSERT_TRUE(posix_.Rename(path, dir_ + "/b").ok());
  ASSERT_TRUE(posix_.SyncDirectory(dir_).ok());
  auto names = posix_.ListDirectory(dir_);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, std::vector<std::string>{"b"});
  ASSERT_TRUE(posix_.Unlink(dir_ + "/b").ok());

  Status missing = posix_.Unlink(dir_ + "/b");
  EXPECT_EQ(missing.code(), StatusCode::kNotFound);
  EXPECT_NE(missing.message().find("unlink " + dir_ + "/b: "), std::string::npos)
      << missing.ToString();
  EXPECT_EQ(posix_.Open(dir_ + "/none", O_RDONLY).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(posix_.Stat(dir_ + "/none").status().code(), StatusCode::kNotFound);
}

TEST_F(FileSystemTest, CreateDirectoriesSetsTheModeExactly) {
  mode_t old = ::umask(077);
  std::string deep = dir_ + "/x/y/z";
  Status s = posix_.CreateDirectories(deep, 0750);
  ::umask(old);
  ASSERT_TRUE(s.ok()) << s.ToString();
  auto info = posix_.Stat(deep);
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->is_directory);
  EXPECT_EQ(info->mode, 0750u);
  EXPECT_TRUE(posix_.CreateDirectories(deep, 0700).ok());  // already there
  ASSERT_TRUE(posix_.Open(dir_ + "/f", O_WRONLY | O_CREAT).ok());
  EXPECT_FALSE(posix_.CreateDirectories(dir_ + "/f", 0700).ok());
}

TEST_F(FileSystemTest, AnExclusiveLockShutsOutEveryOtherOpenUntilItsFileCloses) {
  std::string path = dir_ + "/lock";
  auto first = posix_.Open(path, O_RDWR | O_CREAT);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*posix_.IsLocked(path), false);
  ASSERT_TRUE((*first)->TryLockExclusive().ok());
  EXPECT_EQ(*posix_.IsLocked(path), true);
  // Another open in the same process conflicts too.
  auto second = posix_.Open(path, O_RDWR);
  ASSERT_TRUE(second.ok());
  Status refused = (*second)->TryLockExclusive();
  EXPECT_EQ(refused.code(), StatusCode::kFailedPrecondition) << refused.ToString();
  first->reset();
  EXPECT_EQ(*posix_.IsLocked(path), false);
  EXPECT_TRUE((*second)->TryLockExclusive().ok());
  EXPECT_EQ(posix_.IsLocked(dir_ + "/none").status().code(), StatusCode::kNotFound);
}

// The operations of one small job: open, write, sync, read back, list,
// unlink. Returns the first failure.
Status Job(FileSystem& fs, const std::string& dir) {
  ASSIGN_OR_RETURN(std::unique_ptr<File> f, fs.Open(dir + "/j", O_RDWR | O_CREAT | O_APPEND));
  RETURN_IF_ERROR(WriteFully(*f, "0123456789"));
  RETURN_IF_ERROR(f->DataSync());
  char buf[10];
  RETURN_IF_ERROR(PReadFully(*f, buf, 10, 0));
  ASSIGN_OR_RETURN(std::vector<std::string> names, fs.ListDirectory(dir));
  f.reset();
  return fs.Unlink(dir + "/j");
}

TEST_F(FileSystemTest, FaultInjectionFailsExactlyTheNthOperationWithTheChosenErrno) {
  FaultInjectingFileSystem counting(posix_);
  ASSERT_TRUE(Job(counting, dir_).ok());
  const uint64_t total = counting.operations();
  ASSERT_EQ(total, 6u) << ::testing::PrintToString(counting.Trace());
  EXPECT_EQ(counting.failures(), 0u);

  for (uint64_t n = 1; n <= total; ++n) {
    fs::remove(dir_ + "/j");
    FaultInjectingFileSystem faulty(posix_);
    faulty.FailAt(n, n % 2 == 0 ? ENOSPC : EIO);
    Status s = Job(faulty, dir_);
    EXPECT_EQ(s.code(), StatusCode::kUnavailable) << n << ": " << s.ToString();
    EXPECT_NE(s.message().find(std::strerror(n % 2 == 0 ? ENOSPC : EIO)), std::string::npos)
        << s.ToString();
    EXPECT_EQ(faulty.failures(), 1u) << n;
    EXPECT_EQ(faulty.operations(), n) << n;  // the job stops at its first failure
    EXPECT_NE(faulty.Trace().back().find("FAILED"), std::string::npos);
  }
}

TEST_F(FileSystemTest, AFailedWriteLeavesHalfItsDataAndStickyFailuresLastUntilHealed) {
  FaultInjectingFileSystem faulty(posix_);
  auto f = faulty.Open(dir_ + "/w", O_RDWR | O_CREAT | O_APPEND);  // operation 1
  ASSERT_TRUE(f.ok());
  faulty.FailAt(2, ENOSPC, /*sticky=*/true);
  auto wrote = (*f)->Write("abcdefgh");
  EXPECT_EQ(wrote.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(*ReadWholeFile(posix_, dir_ + "/w"), "abcd");
  EXPECT_FALSE((*f)->DataSync().ok());
  EXPECT_FALSE((*f)->Truncate(0).ok());
  EXPECT_FALSE(faulty.Stat(dir_ + "/w").ok());
  EXPECT_EQ(faulty.failures(), 4u);
  faulty.Heal();
  EXPECT_TRUE((*f)->Truncate(0).ok());
  EXPECT_TRUE(WriteFully(**f, "xy").ok());
  EXPECT_EQ(*ReadWholeFile(posix_, dir_ + "/w"), "xy");
  EXPECT_EQ(faulty.failures(), 4u);
}

TEST(ClockTest, FakeClockKeepsMicrosecondsAndSecondsAgree) {
  FakeClock clock(1767576721);
  EXPECT_EQ(clock.NowMicros(), int64_t{1767576721} * 1000000);
  clock.AdvanceMicros(1500000);
  EXPECT_EQ(clock.NowSeconds(), 1767576722);
  EXPECT_EQ(clock.NowMicros(), int64_t{1767576722} * 1000000 + 500000);
  clock.Advance(1);
  EXPECT_EQ(clock.NowSeconds(), 1767576723);
  clock.SetMicros(-1);
  EXPECT_EQ(clock.NowSeconds(), -1);
  int64_t s = SystemClock::Get().NowSeconds();
  int64_t us = SystemClock::Get().NowMicros();
  EXPECT_LE(s, us / 1000000);
  EXPECT_LE(us / 1000000 - s, 1);
}

}  // namespace
}  // namespace coffer
