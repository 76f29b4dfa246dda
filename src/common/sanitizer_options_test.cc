// The sanitizer build's options keep LeakSanitizer from crashing at exit on
// the TLS block of the NSS module that resolves *.localhost names
// (sanitizer_options.cc). Only built with COFFER_SANITIZE.

#include <netdb.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/wait.h>

namespace coffer {

// Keeps the children's allocations reachable until the leak check: a plain
// array, with no destructor to run at exit before it, and visible to other
// files, so that the stores stay.
void* g_kept[256];

namespace {

// In a child: `count` allocations that stay reachable, one resolution of a
// *.localhost name (libnss_myhostname is loaded, and its TLS block
// allocated, after them), then exit(), where LeakSanitizer checks.
[[noreturn]] void AllocateResolveAndExit(int count) {
  for (int i = 0; i < count; ++i) {
    // 24 bytes: the allocator's size class of the module's 20-byte block.
    g_kept[i] = std::malloc(24);
  }
  addrinfo hints;
  std::memset(&hints, 0, sizeof(hints));
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int rc = getaddrinfo("vault.localhost", "443", &hints, &found);
  if (rc == 0) {
    freeaddrinfo(found);
  }
  std::exit(rc == 0 ? 0 : 3);
}

TEST(SanitizerOptionsTest, LeakCheckSurvivesEveryPlaceOfTheResolversTlsBlock) {
  // The allocator's chunks of that class are 48 bytes: 256 of them span
  // three pages, so some count below 256 puts the block 16 bytes past a
  // page boundary, where GCC 12's LeakSanitizer misreads it.
  // Sixteen children at a time: each spends most of its time in the leak
  // check's waits, not on a core.
  constexpr int kAtOnce = 16;
  std::vector<std::string> failed;
  for (int first = 0; first < 256; first += kAtOnce) {
    std::vector<std::pair<pid_t, int>> children;
    for (int count = first; count < first + kAtOnce; ++count) {
      pid_t pid = fork();
      ASSERT_GE(pid, 0);
      if (pid == 0) {
        AllocateResolveAndExit(count);
      }
      children.emplace_back(pid, count);
    }
    for (auto [pid, count] : children) {
      int status = 0;
      ASSERT_EQ(waitpid(pid, &status, 0), pid);
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        failed.push_back(
            std::to_string(count) + (WIFSIGNALED(status) ? " (signal " : " (exit ") +
            std::to_string(WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status)) + ")");
      }
    }
  }
  EXPECT_TRUE(failed.empty()) << "after these many allocations the child failed: "
                              << ::testing::PrintToString(failed);
}

}  // namespace
}  // namespace coffer
