#include "common/unique_fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include <gtest/gtest.h>

namespace coffer {
namespace {

// IsOpen asks the kernel whether `fd` names an open descriptor.
bool IsOpen(int fd) {
  return ::fcntl(fd, F_GETFD) != -1;
}

int OpenDevNull() {
  int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0) << "open /dev/null: " << errno;
  return fd;
}

TEST(UniqueFd, EmptyByDefaultAndForAFailedOpen) {
  UniqueFd none;
  EXPECT_FALSE(none.valid());
  EXPECT_EQ(none.get(), -1);
  UniqueFd failed(::open("/nonexistent/coffer-unique-fd", O_RDONLY | O_CLOEXEC));
  EXPECT_FALSE(failed.valid());
  EXPECT_EQ(failed.get(), -1);
  EXPECT_EQ(failed.Close(), 0);
}

TEST(UniqueFd, ClosesWhenDestroyed) {
  int raw = OpenDevNull();
  {
    UniqueFd fd(raw);
    EXPECT_TRUE(fd.valid());
    EXPECT_EQ(fd.get(), raw);
    EXPECT_TRUE(IsOpen(raw));
  }
  EXPECT_FALSE(IsOpen(raw));
}

TEST(UniqueFd, ClosesOnlyOnce) {
  // The kernel hands out the lowest free number, so once `fd` has closed
  // its descriptor the next open gets the same number. A second close by
  // `fd` would close that newcomer.
  UniqueFd fd(OpenDevNull());
  int number = fd.get();
  fd.reset();
  EXPECT_FALSE(fd.valid());
  int newcomer = OpenDevNull();
  ASSERT_EQ(newcomer, number);
  fd.reset();
  EXPECT_EQ(fd.Close(), 0);
  { UniqueFd moved_out(std::move(fd)); }
  EXPECT_TRUE(IsOpen(newcomer));
  ::close(newcomer);
}

TEST(UniqueFd, MoveLeavesTheSourceEmpty) {
  UniqueFd a(OpenDevNull());
  int raw = a.get();
  UniqueFd b(std::move(a));
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): the contract under test
  EXPECT_EQ(a.get(), -1);   // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(b.get(), raw);
  { UniqueFd gone(std::move(a)); }  // NOLINT(bugprone-use-after-move)
  EXPECT_TRUE(IsOpen(raw));

  UniqueFd c;
  c = std::move(b);
  EXPECT_FALSE(b.valid());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(c.get(), raw);
  EXPECT_TRUE(IsOpen(raw));
}

TEST(UniqueFd, MoveAssignmentClosesWhatTheTargetHeld) {
  UniqueFd target(OpenDevNull());
  int old = target.get();
  UniqueFd source(OpenDevNull());
  int kept = source.get();
  target = std::move(source);
  EXPECT_FALSE(IsOpen(old));
  EXPECT_TRUE(IsOpen(kept));
  EXPECT_EQ(target.get(), kept);

  auto& alias = target;
  target = std::move(alias);  // self-move keeps the descriptor
  EXPECT_EQ(target.get(), kept);
  EXPECT_TRUE(IsOpen(kept));
}

TEST(UniqueFd, ReleaseKeepsItOpen) {
  int raw = -1;
  {
    UniqueFd fd(OpenDevNull());
    raw = fd.release();
    EXPECT_FALSE(fd.valid());
  }
  EXPECT_TRUE(IsOpen(raw));
  ::close(raw);
  UniqueFd empty;
  EXPECT_EQ(empty.release(), -1);
}

TEST(UniqueFd, ResetClosesTheOldAndTakesTheNew) {
  UniqueFd fd(OpenDevNull());
  int first = fd.get();
  int second = OpenDevNull();
  fd.reset(second);
  EXPECT_FALSE(IsOpen(first));
  EXPECT_EQ(fd.get(), second);
  fd.reset(second);  // the descriptor already held stays open
  EXPECT_TRUE(IsOpen(second));
  fd.reset();
  EXPECT_FALSE(IsOpen(second));
}

TEST(UniqueFd, CloseReportsTheResultAndEmpties) {
  UniqueFd fd(OpenDevNull());
  int raw = fd.get();
  EXPECT_EQ(fd.Close(), 0);
  EXPECT_FALSE(fd.valid());
  EXPECT_FALSE(IsOpen(raw));
  EXPECT_EQ(fd.Close(), 0);  // empty: nothing to close

  // A number that is no longer open: close(2) fails, and Close says so.
  UniqueFd stale(raw);
  EXPECT_EQ(stale.Close(), EBADF);
  EXPECT_FALSE(stale.valid());
}

TEST(UniqueFd, DestructionLeavesErrnoAlone) {
  UniqueFd stale(OpenDevNull());
  ::close(stale.get());  // so that the destructor's close(2) fails
  errno = ENOSPC;
  { UniqueFd gone(std::move(stale)); }
  EXPECT_EQ(errno, ENOSPC);
  UniqueFd fd(OpenDevNull());
  errno = EACCES;
  fd.reset();
  EXPECT_EQ(errno, EACCES);
}

}  // namespace
}  // namespace coffer
