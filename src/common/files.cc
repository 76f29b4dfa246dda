#include "common/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "common/unique_fd.h"

#include <sys/random.h>
#include <sys/stat.h>

namespace coffer {
namespace {

constexpr int kMaxTempAttempts = 100;

Status Errno(const std::string& what, const std::string& path) {
  return UnavailableError(what + " " + path + ": " + std::strerror(errno));
}

// RandomSuffix is 12 characters of [A-Za-z0-9_-] (72 bits) from the
// kernel's CSPRNG.
std::string RandomSuffix() {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
  static_assert(sizeof(kAlphabet) - 1 == 64);
  unsigned char bytes[12];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t n = ::getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n > 0) {
      got += static_cast<size_t>(n);
    } else if (errno != EINTR) {
      std::abort();  // no randomness: never fall back to a predictable name
    }
  }
  std::string out;
  for (unsigned char b : bytes) {
    out += kAlphabet[b & 63];
  }
  return out;
}

// CreateTemp creates a new file next to `path` with a random name, as
// mkstemp does: O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600 until the caller sets
// it. Returns the descriptor and fills `tmp`, or an empty UniqueFd with
// errno set.
UniqueFd CreateTemp(const std::string& path, std::string* tmp) {
  for (int attempt = 0; attempt < kMaxTempAttempts; ++attempt) {
    *tmp = path + ".tmp." + RandomSuffix();
    UniqueFd fd(::open(tmp->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (fd.valid() || errno != EEXIST) {
      return fd;
    }
  }
  errno = EEXIST;
  return UniqueFd();
}

}  // namespace

StatusOr<std::string> ReadFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) {
      return NotFoundError("file not found: " + path);
    }
    return Errno("cannot open", path);
  }
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return Errno("cannot read", path);
    }
    if (n == 0) {
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Status WriteFileAtomic(const std::string& path, const std::string& data, int mode) {
  std::filesystem::path p(path);
  std::string dir = p.has_parent_path() ? p.parent_path().string() : ".";
  // SECURITY: the temporary name is random and the file is new (O_EXCL,
  // O_NOFOLLOW): a file or symlink planted at a predictable name (the old
  // "<path>.tmp.<pid>") would have been truncated and written through.
  std::string tmp;
  UniqueFd fd = CreateTemp(path, &tmp);
  if (!fd.valid()) {
    return Errno("cannot create a temporary file for", path);
  }
  // The mode given to open() is filtered by the umask; set it exactly.
  if (::fchmod(fd.get(), static_cast<mode_t>(mode)) != 0) {
    Status s = Errno("cannot chmod", tmp);
    fd.reset();
    ::unlink(tmp.c_str());
    return s;
  }
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      Status s = Errno("cannot write", tmp);
      fd.reset();
      ::unlink(tmp.c_str());
      return s;
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) {
    Status s = Errno("cannot fsync", tmp);
    fd.reset();
    ::unlink(tmp.c_str());
    return s;
  }
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status s = Errno("cannot rename", tmp);
    ::unlink(tmp.c_str());
    return s;
  }
  if (UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); dfd.valid()) {
    ::fsync(dfd.get());
  }
  return OkStatus();
}

Status EnsurePrivateDirectory(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return OkStatus();
  }
  std::filesystem::create_directories(path, ec);
  if (ec) {
    return UnavailableError("cannot create directory " + path + ": " + ec.message());
  }
  if (::chmod(path.c_str(), 0700) != 0) {
    return Errno("cannot chmod", path);
  }
  return OkStatus();
}

int FileMode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return -1;
  }
  return static_cast<int>(st.st_mode & 07777);
}

}  // namespace coffer
