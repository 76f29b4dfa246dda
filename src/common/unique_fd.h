#pragma once

#include <utility>

namespace coffer {

// UniqueFd owns a file descriptor and closes it exactly once: when it is
// destroyed, reset or Close()d, whichever comes first. Code in src/ that opens
// a descriptor holds it in one (net/'s Asio sockets and DIR streams own
// theirs), so every early return closes it and nothing closes it twice — a
// second close(2) could close a descriptor another thread has just been
// given the same number for.
//
// Movable, not copyable; a moved-from UniqueFd is empty. Not thread-safe:
// one owner at a time, like the descriptor itself.
//
// close(2) is never retried, on EINTR or otherwise: Linux releases the
// descriptor whatever close returns, so a retry could close someone else's.
class UniqueFd {
 public:
  // An empty UniqueFd (get() == -1).
  UniqueFd() = default;
  // Takes ownership of `fd`. A negative `fd` (a failed open) makes it empty,
  // so `UniqueFd fd(::open(...)); if (!fd.valid()) ...` reads errno intact.
  explicit UniqueFd(int fd) : fd_(fd < 0 ? -1 : fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  // Closes what this holds, then takes what `other` holds.
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  // Closes the descriptor, if any; errno is left as it was, so a caller may
  // return errno from a scope that ends with the descriptor.
  ~UniqueFd() { reset(); }

  // The descriptor, borrowed (still owned by this), or -1 when empty.
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

  // release gives the descriptor up without closing it and leaves this
  // empty. The caller owns the result (-1 if this was empty).
  [[nodiscard]] int release() { return std::exchange(fd_, -1); }

  // reset closes the descriptor held, if any, and takes ownership of `fd`
  // (negative: stays empty). errno is left as it was. Resetting to the
  // descriptor already held keeps it open.
  void reset(int fd = -1);

  // Close closes the descriptor now and reports close(2)'s result: 0, or the
  // errno it set. For callers that must know whether the last of a write
  // reached the file (a network file system may report it only at close).
  // Either way this is empty afterwards. Empty: returns 0 and does nothing.
  [[nodiscard]] int Close();

 private:
  int fd_ = -1;
};

}  // namespace coffer
