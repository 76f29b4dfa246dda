#include "common/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>

#include <sys/random.h>
#include <sys/stat.h>

namespace coffer {
namespace {

constexpr int kMaxTempAttempts = 100;

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
// it, and fills `tmp` with its name.
StatusOr<std::unique_ptr<File>> CreateTemp(FileSystem& fs, const std::string& path,
                                           std::string* tmp) {
  Status last;
  for (int attempt = 0; attempt < kMaxTempAttempts; ++attempt) {
    *tmp = path + ".tmp." + RandomSuffix();
    auto file = fs.Open(*tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
    if (file.ok() || file.status().code() != StatusCode::kAlreadyExists) {
      return file;
    }
    last = file.status();
  }
  return last;
}

// Every failure of WriteFileAtomic is kUnavailable, whatever the errno.
Status Unavailable(const Status& s) {
  return UnavailableError(std::string(s.message()));
}

}  // namespace

StatusOr<std::string> ReadFile(const std::string& path) {
  return ReadWholeFile(FileSystem::Default(), path);
}

Status WriteFileAtomic(const std::string& path, const std::string& data, int mode) {
  return WriteFileAtomic(FileSystem::Default(), path, data, mode);
}

Status WriteFileAtomic(FileSystem& fs, const std::string& path, const std::string& data, int mode) {
  std::filesystem::path p(path);
  std::string dir = p.has_parent_path() ? p.parent_path().string() : ".";
  // SECURITY: the temporary name is random and the file is new (O_EXCL,
  // O_NOFOLLOW): a file or symlink planted at a predictable name (the old
  // "<path>.tmp.<pid>") would have been truncated and written through.
  std::string tmp;
  auto created = CreateTemp(fs, path, &tmp);
  if (!created.ok()) {
    return Unavailable(created.status());
  }
  std::unique_ptr<File> file = std::move(*created);
  Status written = [&]() -> Status {
    // The mode given to open() is filtered by the umask; set it exactly.
    RETURN_IF_ERROR(file->Chmod(static_cast<uint32_t>(mode)));
    RETURN_IF_ERROR(WriteFully(*file, data));
    return file->Sync();
  }();
  file.reset();
  if (written.ok()) {
    written = fs.Rename(tmp, path);
  }
  if (!written.ok()) {
    // Nothing half written stays behind (a failure here leaves a temporary
    // name no reader opens).
    (void)fs.Unlink(tmp);
    return Unavailable(written);
  }
  // The rename is done: the new content is what readers see. Making the
  // name durable is best effort, as before.
  (void)fs.SyncDirectory(dir);
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
    return UnavailableError("cannot chmod " + path + ": " + std::strerror(errno));
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
