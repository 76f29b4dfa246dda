#include "common/file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/unique_fd.h"

#include <sys/stat.h>

namespace coffer {
namespace {

Status LastError(std::string_view op, const std::string& path) {
  return ErrnoStatus(op, path, errno);
}

FileInfo InfoOf(const struct stat& st) {
  FileInfo info;
  info.size = static_cast<uint64_t>(st.st_size);
  info.mode = st.st_mode & 07777;
  info.uid = st.st_uid;
  info.is_regular = S_ISREG(st.st_mode);
  info.is_directory = S_ISDIR(st.st_mode);
  return info;
}

// A whole-file write lock, as TryLockExclusive takes and IsLocked asks
// about.
struct flock WholeFileLock() {
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  lock.l_start = 0;
  lock.l_len = 0;
  return lock;
}

class PosixFile final : public File {
 public:
  PosixFile(std::string path, UniqueFd fd) : File(std::move(path)), fd_(std::move(fd)) {}

  StatusOr<size_t> Write(std::string_view data) override {
    while (true) {
      ssize_t n = ::write(fd_.get(), data.data(), data.size());
      if (n >= 0) {
        return static_cast<size_t>(n);
      }
      if (errno != EINTR) {
        return LastError("write", path());
      }
    }
  }

  StatusOr<size_t> PWrite(std::string_view data, uint64_t offset) override {
    while (true) {
      ssize_t n = ::pwrite(fd_.get(), data.data(), data.size(), static_cast<off_t>(offset));
      if (n >= 0) {
        return static_cast<size_t>(n);
      }
      if (errno != EINTR) {
        return LastError("pwrite", path());
      }
    }
  }

  StatusOr<size_t> PRead(char* buf, size_t n, uint64_t offset) override {
    while (true) {
      ssize_t r = ::pread(fd_.get(), buf, n, static_cast<off_t>(offset));
      if (r >= 0) {
        return static_cast<size_t>(r);
      }
      if (errno != EINTR) {
        return LastError("pread", path());
      }
    }
  }

  StatusOr<size_t> Read(char* buf, size_t n) override {
    while (true) {
      ssize_t r = ::read(fd_.get(), buf, n);
      if (r >= 0) {
        return static_cast<size_t>(r);
      }
      if (errno != EINTR) {
        return LastError("read", path());
      }
    }
  }

  Status DataSync() override {
    return ::fdatasync(fd_.get()) == 0 ? OkStatus() : LastError("fdatasync", path());
  }

  Status Sync() override {
    return ::fsync(fd_.get()) == 0 ? OkStatus() : LastError("fsync", path());
  }

  Status Truncate(uint64_t size) override {
    return ::ftruncate(fd_.get(), static_cast<off_t>(size)) == 0 ? OkStatus()
                                                                 : LastError("ftruncate", path());
  }

  StatusOr<FileInfo> Stat() override {
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) {
      return LastError("fstat", path());
    }
    return InfoOf(st);
  }

  Status Chmod(uint32_t mode) override {
    return ::fchmod(fd_.get(), static_cast<mode_t>(mode)) == 0 ? OkStatus()
                                                               : LastError("fchmod", path());
  }

  Status TryLockExclusive() override {
    struct flock lock = WholeFileLock();
    if (::fcntl(fd_.get(), F_OFD_SETLK, &lock) == 0) {
      return OkStatus();
    }
    if (errno == EAGAIN || errno == EACCES) {
      return FailedPreconditionError("lock " + path() + ": held by another open of the file");
    }
    return LastError("lock", path());
  }

 private:
  const UniqueFd fd_;  // closed when the File is destroyed
};

class PosixFileSystem final : public FileSystem {
 public:
  StatusOr<std::unique_ptr<File>> Open(const std::string& path, int flags, uint32_t mode) override {
    UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC, static_cast<mode_t>(mode)));
    if (!fd.valid()) {
      return LastError("open", path);
    }
    return std::unique_ptr<File>(new PosixFile(path, std::move(fd)));
  }

  Status Unlink(const std::string& path) override {
    return ::unlink(path.c_str()) == 0 ? OkStatus() : LastError("unlink", path);
  }

  Status Rename(const std::string& from, const std::string& to) override {
    return ::rename(from.c_str(), to.c_str()) == 0 ? OkStatus() : LastError("rename", from);
  }

  StatusOr<std::vector<std::string>> ListDirectory(const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
      return LastError("opendir", dir);
    }
    std::vector<std::string> names;
    errno = 0;
    while (dirent* e = ::readdir(d)) {
      std::string_view name(e->d_name);
      if (name != "." && name != "..") {
        names.emplace_back(name);
      }
      errno = 0;
    }
    Status s = errno == 0 ? OkStatus() : LastError("readdir", dir);
    ::closedir(d);
    if (!s.ok()) {
      return s;
    }
    return names;
  }

  Status SyncDirectory(const std::string& dir) override {
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) {
      return LastError("open", dir);
    }
    return ::fsync(fd.get()) == 0 ? OkStatus() : LastError("fsync", dir);
  }

  Status CreateDirectories(const std::string& path, uint32_t mode) override {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) {
      return S_ISDIR(st.st_mode) ? OkStatus() : ErrnoStatus("mkdir", path, ENOTDIR);
    }
    size_t slash = path.find_last_of('/');
    if (slash != std::string::npos && slash > 0) {
      RETURN_IF_ERROR(CreateDirectories(path.substr(0, slash), mode));
    }
    if (::mkdir(path.c_str(), static_cast<mode_t>(mode)) != 0 && errno != EEXIST) {
      return LastError("mkdir", path);
    }
    // The mode given to mkdir() is filtered by the umask; set it exactly.
    return ::chmod(path.c_str(), static_cast<mode_t>(mode)) == 0 ? OkStatus()
                                                                 : LastError("chmod", path);
  }

  StatusOr<FileInfo> Stat(const std::string& path) override {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      return LastError("stat", path);
    }
    return InfoOf(st);
  }

  StatusOr<bool> IsLocked(const std::string& path) override {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
      return LastError("open", path);
    }
    // F_OFD_GETLK asks without taking anything, so a reader never gets in
    // the way of a writer that is starting.
    struct flock lock = WholeFileLock();
    if (::fcntl(fd.get(), F_OFD_GETLK, &lock) != 0) {
      return LastError("lock query", path);
    }
    return lock.l_type != F_UNLCK;
  }
};

}  // namespace

Status ErrnoStatus(std::string_view op, const std::string& path, int err) {
  std::string message = std::string(op) + " " + path + ": " + std::strerror(err);
  if (err == ENOENT) {
    return NotFoundError(std::move(message));
  }
  if (err == EEXIST) {
    return AlreadyExistsError(std::move(message));
  }
  return UnavailableError(std::move(message));
}

FileSystem& FileSystem::Default() {
  static PosixFileSystem* fs = new PosixFileSystem();
  return *fs;
}

Status WriteFully(File& file, std::string_view data) {
  while (!data.empty()) {
    ASSIGN_OR_RETURN(size_t n, file.Write(data));
    if (n == 0) {
      return ErrnoStatus("write", file.path(), EIO);
    }
    data.remove_prefix(n);
  }
  return OkStatus();
}

Status PReadFully(File& file, char* buf, size_t n, uint64_t offset) {
  size_t done = 0;
  while (done < n) {
    ASSIGN_OR_RETURN(size_t r, file.PRead(buf + done, n - done, offset + done));
    if (r == 0) {
      return UnavailableError("file shrank while reading: " + file.path());
    }
    done += r;
  }
  return OkStatus();
}

StatusOr<std::string> ReadWholeFile(FileSystem& fs, const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<File> file, fs.Open(path, O_RDONLY));
  std::string out;
  char buf[65536];
  while (true) {
    ASSIGN_OR_RETURN(size_t n, file->Read(buf, sizeof(buf)));
    if (n == 0) {
      return out;
    }
    out.append(buf, n);
  }
}

}  // namespace coffer
