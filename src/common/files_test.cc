#include "common/files.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "common/fault_injecting_file_system.h"

#include <sys/stat.h>

namespace coffer {
namespace {

namespace fs = std::filesystem;

class WriteFileAtomicTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/coffer_files_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string Read(const std::string& path) {
    auto r = ReadFile(path);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : "";
  }

  std::string dir_;
};

TEST_F(WriteFileAtomicTest, WritesWithTheExactModeAndLeavesNoTemporaryFile) {
  std::string path = dir_ + "/key.pem";
  mode_t old_umask = ::umask(077);
  ASSERT_TRUE(WriteFileAtomic(path, "first", 0644).ok());
  ::umask(old_umask);
  EXPECT_EQ(Read(path), "first");
  EXPECT_EQ(FileMode(path), 0644);
  ASSERT_TRUE(WriteFileAtomic(path, "second", 0600).ok());
  EXPECT_EQ(Read(path), "second");
  EXPECT_EQ(FileMode(path), 0600);
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir_)) {
    EXPECT_EQ(e.path().filename(), "key.pem");
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

TEST_F(WriteFileAtomicTest, APlantedSymlinkAtTheOldTemporaryNameIsNotFollowed) {
  // Before, the temporary file was "<path>.tmp.<pid>", opened with O_TRUNC
  // and without O_NOFOLLOW: whoever could write the directory could point
  // that name at any file this process may write, and have it overwritten.
  std::string path = dir_ + "/master.key";
  std::string victim = dir_ + "/victim";
  ASSERT_TRUE(WriteFileAtomic(victim, "precious", 0600).ok());
  std::string planted = path + ".tmp." + std::to_string(::getpid());
  ASSERT_EQ(::symlink(victim.c_str(), planted.c_str()), 0);

  ASSERT_TRUE(WriteFileAtomic(path, "new key", 0600).ok());
  EXPECT_EQ(Read(victim), "precious");
  EXPECT_EQ(Read(path), "new key");
  struct stat st {};
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  ASSERT_EQ(::lstat(planted.c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode)) << "the planted link is left alone";
}

TEST_F(WriteFileAtomicTest, TemporaryNamesAreNotPredictable) {
  // Two writers of one path never share a temporary name: a planted name
  // cannot be guessed from the process id.
  std::string path = dir_ + "/status.json";
  std::string pid_name = path + ".tmp." + std::to_string(::getpid());
  ASSERT_TRUE(WriteFileAtomic(pid_name, "a plain file at the old name", 0600).ok());
  ASSERT_TRUE(WriteFileAtomic(path, "{}", 0600).ok());
  EXPECT_EQ(Read(path), "{}");
  EXPECT_EQ(Read(pid_name), "a plain file at the old name");
}

TEST_F(WriteFileAtomicTest, FailureLeavesNothingBehind) {
  std::string path = dir_ + "/missing/dir/file";
  Status s = WriteFileAtomic(path, "x", 0600);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 0);
}

TEST_F(WriteFileAtomicTest, EachFailingOperationKeepsTheOldContentAndLeavesNoTemporaryFile) {
  // Count the operations of one write, then fail each in turn, once with a
  // full disk and once with an I/O error.
  const std::string path = dir_ + "/dev.env";
  const std::string old_content(100000, 'o');
  const std::string new_content(150000, 'n');
  ASSERT_TRUE(WriteFileAtomic(path, old_content, 0600).ok());
  uint64_t count = 0;
  {
    FaultInjectingFileSystem counting(FileSystem::Default());
    ASSERT_TRUE(WriteFileAtomic(counting, path, old_content, 0600).ok());
    count = counting.operations();
  }
  ASSERT_GE(count, 5u) << "open, chmod, write, fsync, rename at least";
  for (int err : {ENOSPC, EIO}) {
    for (uint64_t n = 1; n <= count; ++n) {
      SCOPED_TRACE("operation " + std::to_string(n) + " fails with " + std::strerror(err));
      FaultInjectingFileSystem faulty(FileSystem::Default());
      faulty.FailAt(n, err);
      Status s = WriteFileAtomic(faulty, path, new_content, 0644);
      const std::string trace = ::testing::PrintToString(faulty.Trace());
      std::string now = Read(path);
      if (s.ok()) {
        // Only making the new name durable may fail without failing the
        // write: the rename has happened.
        EXPECT_EQ(faulty.Trace()[n - 1], std::to_string(n) + " fsync " + dir_ + " FAILED");
        EXPECT_EQ(now, new_content) << trace;
        EXPECT_EQ(FileMode(path), 0644);
      } else {
        EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
        EXPECT_NE(s.ToString().find(std::strerror(err)), std::string::npos) << s.ToString();
        EXPECT_EQ(now, old_content) << trace;
        EXPECT_EQ(FileMode(path), 0600);
      }
      int entries = 0;
      for (const auto& e : fs::directory_iterator(dir_)) {
        EXPECT_EQ(e.path().filename(), "dev.env") << trace;
        ++entries;
      }
      EXPECT_EQ(entries, 1) << trace;
      // Put the old content back for the next round.
      ASSERT_TRUE(WriteFileAtomic(path, old_content, 0600).ok());
    }
  }
}

}  // namespace
}  // namespace coffer
