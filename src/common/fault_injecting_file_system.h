#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/file_system.h"

namespace coffer {

// FaultInjectingFileSystem passes every operation on to another FileSystem
// and numbers them 1, 2, 3, ... in the order they are made, counting the
// operations of the files it opened (Write, DataSync, ...) with those of the
// file system itself (Open, Unlink, ...). Chosen operations fail with a
// chosen errno instead, as if the system call had: the Status reads exactly
// like a real failure's (ErrnoStatus). For tests of error paths: run once to
// count the operations, then once per operation with that one failing.
//
// A failing Write first passes on the first half of its data, as a write cut
// short by a full disk leaves part of it in the file; every other failing
// operation does nothing. Destroying a File is not an operation.
//
// Thread-safe. `base` is borrowed and must outlive this and every File it
// opened.
class FaultInjectingFileSystem final : public FileSystem {
 public:
  explicit FaultInjectingFileSystem(FileSystem& base) : base_(base) {}

  // FailAt makes operation number `n` (counting from 1 since construction)
  // fail with `err`; with `sticky`, every operation after it fails too until
  // Heal(), as a disk that stays full does. Replaces an earlier FailAt.
  void FailAt(uint64_t n, int err, bool sticky = false);
  // Heal ends the failures: nothing fails from now on.
  void Heal();
  // Operations made so far, and how many of them failed.
  uint64_t operations() const;
  uint64_t failures() const;
  // The description of each operation made so far ("3 write /d/f"), failed
  // ones marked, for a test's failure message.
  std::vector<std::string> Trace() const;

  // FileSystem.
  StatusOr<std::unique_ptr<File>> Open(const std::string& path, int flags,
                                       uint32_t mode = 0600) override;
  Status Unlink(const std::string& path) override;
  Status Rename(const std::string& from, const std::string& to) override;
  StatusOr<std::vector<std::string>> ListDirectory(const std::string& dir) override;
  Status SyncDirectory(const std::string& dir) override;
  Status CreateDirectories(const std::string& path, uint32_t mode) override;
  StatusOr<FileInfo> Stat(const std::string& path) override;
  StatusOr<bool> IsLocked(const std::string& path) override;

  // Numbers the operation `op` on `path` and returns the errno it is to
  // fail with, or 0. For the files this opens.
  int Next(std::string_view op, const std::string& path);

 private:
  FileSystem& base_;
  mutable std::mutex mu_;
  uint64_t operations_ = 0;
  uint64_t failures_ = 0;
  uint64_t fail_at_ = 0;  // 0: none
  int errno_ = 0;
  bool sticky_ = false;
  bool healed_ = false;
  std::vector<std::string> trace_;
};

}  // namespace coffer
