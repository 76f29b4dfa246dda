#pragma once

// A temporary directory for a test, removed with everything in it when the
// test is done with it.

#include <string>
#include <string_view>

#include "common/status.h"

namespace coffer::test {

class TempDir {
 public:
  // Create makes a fresh directory <parent>/<prefix>XXXXXX with mode 0700, as
  // mkdtemp(3): its name is unpredictable and it did not exist before, so
  // tests that run at the same time (ctest -j, other checkouts) never share
  // one. `parent` empty is $TMPDIR, or /tmp without it; tests that put Unix
  // sockets inside give "/tmp", as a socket's path has at most 107 bytes.
  // kInternal when it cannot be made.
  static StatusOr<TempDir> Create(std::string_view prefix = "coffer-test-",
                                  std::string_view parent = {});

  TempDir() = default;  // no directory: nothing to remove
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  // Removes the directory and everything under it, directories the test made
  // unreadable or unwritable included. Errors are ignored.
  ~TempDir();

  // The directory's absolute path, without a trailing '/'.
  const std::string& path() const { return path_; }
  // Join is path() + "/" + `name`.
  std::string Join(std::string_view name) const;

 private:
  void Remove();

  std::string path_;
};

}  // namespace coffer::test
