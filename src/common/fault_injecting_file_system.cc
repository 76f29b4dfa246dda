#include "common/fault_injecting_file_system.h"

namespace coffer {
namespace {

// Passes each operation on to the base file unless the file system says it
// is to fail.
class FaultInjectingFile final : public File {
 public:
  FaultInjectingFile(FaultInjectingFileSystem& fs, std::unique_ptr<File> base)
      : File(base->path()), fs_(fs), base_(std::move(base)) {}

  StatusOr<size_t> Write(std::string_view data) override {
    if (int err = fs_.Next("write", path())) {
      if (data.size() > 1) {
        (void)base_->Write(data.substr(0, data.size() / 2));
      }
      return ErrnoStatus("write", path(), err);
    }
    return base_->Write(data);
  }
  StatusOr<size_t> PWrite(std::string_view data, uint64_t offset) override {
    if (int err = fs_.Next("pwrite", path())) {
      return ErrnoStatus("pwrite", path(), err);
    }
    return base_->PWrite(data, offset);
  }
  StatusOr<size_t> PRead(char* buf, size_t n, uint64_t offset) override {
    if (int err = fs_.Next("pread", path())) {
      return ErrnoStatus("pread", path(), err);
    }
    return base_->PRead(buf, n, offset);
  }
  StatusOr<size_t> Read(char* buf, size_t n) override {
    if (int err = fs_.Next("read", path())) {
      return ErrnoStatus("read", path(), err);
    }
    return base_->Read(buf, n);
  }
  Status DataSync() override {
    if (int err = fs_.Next("fdatasync", path())) {
      return ErrnoStatus("fdatasync", path(), err);
    }
    return base_->DataSync();
  }
  Status Sync() override {
    if (int err = fs_.Next("fsync", path())) {
      return ErrnoStatus("fsync", path(), err);
    }
    return base_->Sync();
  }
  Status Truncate(uint64_t size) override {
    if (int err = fs_.Next("ftruncate", path())) {
      return ErrnoStatus("ftruncate", path(), err);
    }
    return base_->Truncate(size);
  }
  StatusOr<FileInfo> Stat() override {
    if (int err = fs_.Next("fstat", path())) {
      return ErrnoStatus("fstat", path(), err);
    }
    return base_->Stat();
  }
  Status Chmod(uint32_t mode) override {
    if (int err = fs_.Next("fchmod", path())) {
      return ErrnoStatus("fchmod", path(), err);
    }
    return base_->Chmod(mode);
  }
  Status TryLockExclusive() override {
    if (int err = fs_.Next("lock", path())) {
      return ErrnoStatus("lock", path(), err);
    }
    return base_->TryLockExclusive();
  }

 private:
  FaultInjectingFileSystem& fs_;
  std::unique_ptr<File> base_;
};

}  // namespace

void FaultInjectingFileSystem::FailAt(uint64_t n, int err, bool sticky) {
  std::lock_guard lock(mu_);
  fail_at_ = n;
  errno_ = err;
  sticky_ = sticky;
  healed_ = false;
}

void FaultInjectingFileSystem::Heal() {
  std::lock_guard lock(mu_);
  healed_ = true;
}

uint64_t FaultInjectingFileSystem::operations() const {
  std::lock_guard lock(mu_);
  return operations_;
}

uint64_t FaultInjectingFileSystem::failures() const {
  std::lock_guard lock(mu_);
  return failures_;
}

std::vector<std::string> FaultInjectingFileSystem::Trace() const {
  std::lock_guard lock(mu_);
  return trace_;
}

int FaultInjectingFileSystem::Next(std::string_view op, const std::string& path) {
  std::lock_guard lock(mu_);
  const uint64_t n = ++operations_;
  const bool fail = !healed_ && fail_at_ != 0 && (n == fail_at_ || (sticky_ && n > fail_at_));
  std::string line = std::to_string(n) + " " + std::string(op) + " " + path;
  if (fail) {
    ++failures_;
    line += " FAILED";
  }
  trace_.push_back(std::move(line));
  return fail ? errno_ : 0;
}

StatusOr<std::unique_ptr<File>> FaultInjectingFileSystem::Open(const std::string& path, int flags,
                                                               uint32_t mode) {
  if (int err = Next("open", path)) {
    return ErrnoStatus("open", path, err);
  }
  ASSIGN_OR_RETURN(std::unique_ptr<File> file, base_.Open(path, flags, mode));
  return std::unique_ptr<File>(new FaultInjectingFile(*this, std::move(file)));
}

Status FaultInjectingFileSystem::Unlink(const std::string& path) {
  if (int err = Next("unlink", path)) {
    return ErrnoStatus("unlink", path, err);
  }
  return base_.Unlink(path);
}

Status FaultInjectingFileSystem::Rename(const std::string& from, const std::string& to) {
  if (int err = Next("rename", from)) {
    return ErrnoStatus("rename", from, err);
  }
  return base_.Rename(from, to);
}

StatusOr<std::vector<std::string>> FaultInjectingFileSystem::ListDirectory(const std::string& dir) {
  if (int err = Next("opendir", dir)) {
    return ErrnoStatus("opendir", dir, err);
  }
  return base_.ListDirectory(dir);
}

Status FaultInjectingFileSystem::SyncDirectory(const std::string& dir) {
  if (int err = Next("fsync", dir)) {
    return ErrnoStatus("fsync", dir, err);
  }
  return base_.SyncDirectory(dir);
}

Status FaultInjectingFileSystem::CreateDirectories(const std::string& path, uint32_t mode) {
  if (int err = Next("mkdir", path)) {
    return ErrnoStatus("mkdir", path, err);
  }
  return base_.CreateDirectories(path, mode);
}

StatusOr<FileInfo> FaultInjectingFileSystem::Stat(const std::string& path) {
  if (int err = Next("stat", path)) {
    return ErrnoStatus("stat", path, err);
  }
  return base_.Stat(path);
}

StatusOr<bool> FaultInjectingFileSystem::IsLocked(const std::string& path) {
  if (int err = Next("lock query", path)) {
    return ErrnoStatus("lock query", path, err);
  }
  return base_.IsLocked(path);
}

}  // namespace coffer
