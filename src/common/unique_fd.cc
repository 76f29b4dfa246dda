#include "common/unique_fd.h"

#include <unistd.h>

#include <cerrno>

namespace coffer {

void UniqueFd::reset(int fd) {
  if (fd < 0) {
    fd = -1;
  }
  if (fd == fd_) {
    return;
  }
  int old = std::exchange(fd_, fd);
  if (old >= 0) {
    int saved = errno;
    // A failure has nothing to tell a caller who did not ask (Close does):
    // the descriptor is gone either way.
    ::close(old);
    errno = saved;
  }
}

int UniqueFd::Close() {
  int fd = std::exchange(fd_, -1);
  if (fd < 0) {
    return 0;
  }
  return ::close(fd) == 0 ? 0 : errno;
}

}  // namespace coffer
