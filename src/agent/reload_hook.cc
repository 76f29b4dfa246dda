#include "agent/reload_hook.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "agent/owner_check.h"
#include "common/strings.h"
#include "common/unique_fd.h"

#include <sys/stat.h>

namespace coffer::agent {
namespace {

constexpr size_t kMaxPidFileBytes = 64;
constexpr char kDefaultPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

Status OpenError(int err, const std::string& what) {
  std::string msg = "cannot open " + what + ": " + std::strerror(err);
  switch (err) {
    case ENOENT:
      return NotFoundError(std::move(msg));
    case ELOOP:
      return FailedPreconditionError(what + " is a symlink; it is not followed");
    case EACCES:
    case EPERM:
      return PermissionDeniedError(std::move(msg));
    default:
      return UnavailableError(std::move(msg));
  }
}

}  // namespace

StatusOr<pid_t> ReadReloadPid(const std::string& pid_file) {
  const std::string what = "the pidFile " + pid_file;
  // O_NONBLOCK: a FIFO planted at the name must not block the agent.
  UniqueFd fd(::open(pid_file.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) {
    return OpenError(errno, what);
  }
  struct stat st {};
  Status checked = OkStatus();
  if (::fstat(fd.get(), &st) != 0) {
    checked = UnavailableError("cannot stat " + what + ": " + std::strerror(errno));
  } else if (!S_ISREG(st.st_mode)) {
    checked = FailedPreconditionError(what + " is not a regular file");
  } else {
    checked = CheckWritableOnlyByTrusted(st, ::geteuid(), what);
  }
  char buf[kMaxPidFileBytes + 1];
  ssize_t n = checked.ok() ? ::read(fd.get(), buf, sizeof(buf)) : 0;
  int read_errno = errno;
  fd.reset();
  RETURN_IF_ERROR(checked);
  if (n < 0) {
    return UnavailableError("cannot read " + what + ": " + std::strerror(read_errno));
  }
  if (static_cast<size_t>(n) > kMaxPidFileBytes) {
    return InvalidArgumentError(what + " is longer than a process id");
  }
  std::string digits(TrimWhitespace(std::string_view(buf, static_cast<size_t>(n))));
  bool numeric = !digits.empty() && digits.size() <= 10 &&
                 digits.find_first_not_of("0123456789") == std::string::npos;
  long pid = numeric ? std::strtol(digits.c_str(), nullptr, 10) : 0;
  if (pid <= 1 || pid > 0x7fffffff) {
    return InvalidArgumentError(what + " holds no process id");
  }
  return static_cast<pid_t>(pid);
}

std::vector<std::string> ReloadEnvironment(const std::string& mount, const std::string& target) {
  const char* path = std::getenv("PATH");
  return {std::string("PATH=") + (path != nullptr && *path != '\0' ? path : kDefaultPath),
          "COFFER_MOUNT=" + mount, "COFFER_MOUNT_TARGET=" + target};
}

}  // namespace coffer::agent
