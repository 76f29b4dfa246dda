#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

// The file-system seam: every file operation of a component that takes a
// FileSystem goes through it, so that tests can fail any one of them
// (FaultInjectingFileSystem) and production runs the POSIX calls unchanged
// (FileSystem::Default()). The calls keep POSIX's meaning and granularity —
// one Write is one write(2) — so that code written against the seam makes
// the same system calls it would make without it.
//
// Errors: every failure is a Status whose message names the operation, the
// path and strerror(errno) ("write /x/a.jsonl: No space left on device");
// kNotFound for ENOENT, kAlreadyExists for EEXIST, kUnavailable for any other errno (a lock held
// elsewhere is kFailedPrecondition, see TryLockExclusive). ErrnoStatus() builds them, so that an
// injected failure reads exactly like a real one.
namespace coffer {

// ErrnoStatus is the Status of operation `op` on `path` failing with `err`.
Status ErrnoStatus(std::string_view op, const std::string& path, int err);

// What Stat reports.
struct FileInfo {
  uint64_t size = 0;
  uint32_t mode = 0;  // permission bits (07777)
  uint32_t uid = 0;
  bool is_regular = false;
  bool is_directory = false;
};

// File is an open file. Closed when destroyed (a close error is lost, as it
// is for every caller that fdatasyncs first). Not thread-safe: one owner at
// a time.
class File {
 public:
  virtual ~File() = default;
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  const std::string& path() const { return path_; }

  // Write makes one write(2) at the file offset (the end, for a file opened
  // with O_APPEND) and returns how many bytes it took, which may be fewer
  // than data.size(). EINTR is retried.
  virtual StatusOr<size_t> Write(std::string_view data) = 0;
  // PWrite / PRead make one pwrite(2) / pread(2). PRead returns 0 at the end
  // of the file.
  virtual StatusOr<size_t> PWrite(std::string_view data, uint64_t offset) = 0;
  virtual StatusOr<size_t> PRead(char* buf, size_t n, uint64_t offset) = 0;
  // Read makes one read(2) at the file offset; 0 at the end of the file.
  virtual StatusOr<size_t> Read(char* buf, size_t n) = 0;
  virtual Status DataSync() = 0;  // fdatasync(2)
  virtual Status Sync() = 0;      // fsync(2)
  virtual Status Truncate(uint64_t size) = 0;
  virtual StatusOr<FileInfo> Stat() = 0;
  // Chmod sets the permission bits exactly (the umask does not apply).
  virtual Status Chmod(uint32_t mode) = 0;
  // TryLockExclusive takes an exclusive lock on the whole file that lasts
  // until this File is destroyed (an open-file-description lock: it
  // conflicts with every other open of the file, in this process too).
  // kFailedPrecondition if another open of the file holds one.
  virtual Status TryLockExclusive() = 0;

 protected:
  explicit File(std::string path) : path_(std::move(path)) {}

 private:
  std::string path_;
};

// FileSystem opens files and changes directories. Implementations are
// thread-safe.
class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // The POSIX file system. Lives for the whole process.
  static FileSystem& Default();

  // Open is open(2) with `flags` (O_RDONLY, O_WRONLY | O_APPEND | O_CREAT,
  // ...; O_CLOEXEC is always added) and, for a file it creates, `mode`
  // filtered by the umask.
  virtual StatusOr<std::unique_ptr<File>> Open(const std::string& path, int flags,
                                               uint32_t mode = 0600) = 0;
  virtual Status Unlink(const std::string& path) = 0;
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  // ListDirectory returns the names in `dir` (not "." or ".."), unordered.
  virtual StatusOr<std::vector<std::string>> ListDirectory(const std::string& dir) = 0;
  // SyncDirectory fsyncs `dir`, making the names created or removed in it
  // durable.
  virtual Status SyncDirectory(const std::string& dir) = 0;
  // CreateDirectories creates `path` and missing parents with exactly
  // `mode`; OK if `path` is already a directory (its mode is left alone).
  virtual Status CreateDirectories(const std::string& path, uint32_t mode) = 0;
  // Stat follows symlinks.
  virtual StatusOr<FileInfo> Stat(const std::string& path) = 0;
  // IsLocked reports whether some open of `path` holds the lock of
  // File::TryLockExclusive. kNotFound if `path` does not exist.
  virtual StatusOr<bool> IsLocked(const std::string& path) = 0;
};

// WriteFully calls Write until all of `data` is written. On failure some
// prefix of it may have reached the file.
Status WriteFully(File& file, std::string_view data);
// PReadFully reads exactly n bytes at `offset`; kUnavailable if the file
// ends first.
Status PReadFully(File& file, char* buf, size_t n, uint64_t offset);
// ReadWholeFile returns the content of `path`. kNotFound if absent.
StatusOr<std::string> ReadWholeFile(FileSystem& fs, const std::string& path);

}  // namespace coffer
