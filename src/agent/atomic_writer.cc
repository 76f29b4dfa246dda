#include "agent/atomic_writer.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <set>
#include <utility>

#include "agent/owner_check.h"
#include "common/strings.h"
#include "common/unique_fd.h"

#include <sys/random.h>
#include <sys/stat.h>

namespace coffer::agent {
namespace {

constexpr char kDataDir[] = "..data";
constexpr char kDataTmp[] = "..data_tmp";
constexpr char kLinkTmp[] = "..link_tmp";
constexpr size_t kMaxPathLength = 4096;
constexpr size_t kMaxElementLength = 255;
constexpr mode_t kDirMode = 0755;
constexpr mode_t kTargetMode = 0750;
// A clean path of 4096 bytes has at most 2048 elements; deeper trees are not
// ours, and the walks refuse them instead of recursing without bound.
constexpr int kMaxDepth = 2100;
constexpr int kMaxReadAttempts = 5;
constexpr int kMaxNameAttempts = 100;

// Shown quotes a path for a message: control bytes escaped, long ones cut.
std::string Shown(std::string_view path) {
  constexpr size_t kMaxShown = 200;
  std::string out = "\"";
  for (size_t i = 0; i < path.size(); ++i) {
    if (i == kMaxShown) {
      out += "...";
      break;
    }
    auto u = static_cast<unsigned char>(path[i]);
    if (u < 0x20 || u == 0x7f || u == '"' || u == '\\') {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", u);
      out += buf;
    } else {
      out += path[i];
    }
  }
  out += '"';
  return out;
}

Status ErrnoError(int err, std::string_view step, std::string_view where) {
  std::string msg = "atomic writer: cannot " + std::string(step) + " " + std::string(where) + ": " +
                    std::strerror(err);
  switch (err) {
    case ENOENT:
      return NotFoundError(std::move(msg));
    case EACCES:
    case EPERM:
    case EROFS:
      return PermissionDeniedError(std::move(msg));
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
      return ResourceExhaustedError(std::move(msg));
    default:
      return UnavailableError(std::move(msg));
  }
}

// AsSyscall turns an errno-returning helper into the system call convention.
int AsSyscall(int err) {
  errno = err;
  return err == 0 ? 0 : -1;
}

int LstatAt(int dirfd, const std::string& name, struct stat* st) {
  return ::fstatat(dirfd, name.c_str(), st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : errno;
}

int ReadLinkAt(int dirfd, const std::string& name, std::string* out) {
  char buf[kMaxPathLength + 1];
  ssize_t n = ::readlinkat(dirfd, name.c_str(), buf, sizeof(buf));
  if (n < 0) {
    return errno;
  }
  if (static_cast<size_t>(n) >= sizeof(buf)) {
    return ENAMETOOLONG;
  }
  out->assign(buf, static_cast<size_t>(n));
  return 0;
}

int OpenDirAt(int dirfd, const std::string& name, UniqueFd* out) {
  int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    return errno;
  }
  *out = UniqueFd(fd);
  return 0;
}

// ListDir returns the sorted names in `dirfd`, without "." and "..".
int ListDir(int dirfd, std::vector<std::string>* names) {
  UniqueFd dup(::fcntl(dirfd, F_DUPFD_CLOEXEC, 0));
  if (!dup.valid()) {
    return errno;
  }
  DIR* dir = ::fdopendir(dup.get());
  if (dir == nullptr) {
    return errno;
  }
  // The stream owns the duplicate now; closedir closes it.
  static_cast<void>(dup.release());
  // The duplicate shares the offset of `dirfd`, which an earlier listing moved.
  ::rewinddir(dir);
  names->clear();
  int err = 0;
  while (true) {
    errno = 0;
    struct dirent* entry = ::readdir(dir);  // NOLINT(concurrency-mt-unsafe): own stream
    if (entry == nullptr) {
      err = errno;
      break;
    }
    std::string_view name = entry->d_name;
    if (name != "." && name != "..") {
      names->emplace_back(name);
    }
  }
  ::closedir(dir);
  std::sort(names->begin(), names->end());
  return err;
}

int ReadAll(int fd, std::string* out) {
  out->clear();
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return errno;
    }
    if (n == 0) {
      return 0;
    }
    out->append(buf, static_cast<size_t>(n));
  }
}

int WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return errno;
    }
    off += static_cast<size_t>(n);
  }
  return 0;
}

// RemoveTreeAt removes `name` in `dirfd` and, for a directory, everything
// below it. SECURITY: symlinks are unlinked, never followed.
int RemoveTreeAt(int dirfd, const std::string& name, int depth = 0) {
  struct stat st {};
  if (int err = LstatAt(dirfd, name, &st); err != 0) {
    return err == ENOENT ? 0 : err;
  }
  if (!S_ISDIR(st.st_mode)) {
    return ::unlinkat(dirfd, name.c_str(), 0) == 0 || errno == ENOENT ? 0 : errno;
  }
  if (depth > kMaxDepth) {
    return ELOOP;
  }
  UniqueFd sub;
  std::vector<std::string> names;
  if (int err = OpenDirAt(dirfd, name, &sub); err != 0) {
    return err;
  }
  if (int err = ListDir(sub.get(), &names); err != 0) {
    return err;
  }
  for (const std::string& child : names) {
    if (int err = RemoveTreeAt(sub.get(), child, depth + 1); err != 0) {
      return err;
    }
  }
  sub.reset();
  return ::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) == 0 || errno == ENOENT ? 0 : errno;
}

// IsOwnName: a name the writer may have made `..data` point to.
bool IsOwnName(const std::string& name) {
  return StartsWith(name, "..") && name != ".." && name != kDataDir && name != kDataTmp &&
         name != kLinkTmp && name.find('/') == std::string::npos;
}

// IsTimestampName: "..YYYY_MM_DD_HH_MM_SS.<suffix>", the writer's own form.
bool IsTimestampName(std::string_view name) {
  constexpr std::string_view kShape = "..dddd_dd_dd_dd_dd_dd.";
  if (name.size() <= kShape.size()) {
    return false;
  }
  for (size_t i = 0; i < kShape.size(); ++i) {
    bool ok = kShape[i] == 'd' ? (name[i] >= '0' && name[i] <= '9') : name[i] == kShape[i];
    if (!ok) {
      return false;
    }
  }
  for (char c : name.substr(kShape.size())) {
    bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum) {
      return false;
    }
  }
  return true;
}

std::string TopName(const std::string& path) {
  return path.substr(0, path.find('/'));
}

// WalkFiles adds the relative paths of all non-directories below `dirfd`.
int WalkFiles(int dirfd, const std::string& prefix, int depth, std::set<std::string>* out) {
  if (depth > kMaxDepth) {
    return ELOOP;
  }
  std::vector<std::string> names;
  if (int err = ListDir(dirfd, &names); err != 0) {
    return err;
  }
  for (const std::string& name : names) {
    struct stat st {};
    if (int err = LstatAt(dirfd, name, &st); err != 0) {
      return err;
    }
    if (!S_ISDIR(st.st_mode)) {
      out->insert(prefix + name);
      continue;
    }
    UniqueFd sub;
    if (int err = OpenDirAt(dirfd, name, &sub); err != 0) {
      return err;
    }
    if (int err = WalkFiles(sub.get(), prefix + name + "/", depth + 1, out); err != 0) {
      return err;
    }
  }
  return 0;
}

// SameFile: `f` is already under `root` as a regular file with its bytes, its
// mode and, where requested, its owner. Any doubt (an error) means "differs".
bool SameFile(int root, const PayloadFile& f, const WriteOptions& opts) {
  std::vector<std::string_view> parts = Split(f.path, '/');
  UniqueFd dir;
  int dirfd = root;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    UniqueFd next;
    if (OpenDirAt(dirfd, std::string(parts[i]), &next) != 0) {
      return false;
    }
    dir = std::move(next);
    dirfd = dir.get();
  }
  // O_NONBLOCK: a FIFO planted here must not hang the comparison.
  UniqueFd file(::openat(dirfd, std::string(parts.back()).c_str(),
                         O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  struct stat st {};
  if (!file.valid() || ::fstat(file.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return false;
  }
  if ((st.st_mode & 07777) != f.mode || static_cast<size_t>(st.st_size) != f.contents.size()) {
    return false;
  }
  if ((opts.uid && st.st_uid != *opts.uid) || (opts.gid && st.st_gid != *opts.gid)) {
    return false;
  }
  std::string current;
  return ReadAll(file.get(), &current) == 0 && current == f.contents;
}

uint32_t RandomSuffix() {
  uint32_t value = 0;
  if (::getrandom(&value, sizeof(value), 0) != sizeof(value)) {
    // Uniqueness only matters against other names in the target, and the
    // caller retries on EEXIST; this fallback only has to vary.
    static std::atomic<uint32_t> counter{0};
    value = static_cast<uint32_t>(::getpid()) * 2654435761u + ++counter +
            static_cast<uint32_t>(std::time(nullptr));
  }
  return value;
}

Status ValidatePayload(const std::vector<PayloadFile>& files,
                       std::vector<const PayloadFile*>* sorted) {
  for (const PayloadFile& f : files) {
    RETURN_IF_ERROR(ValidatePayloadPath(f.path));
    if ((f.mode & ~0777u) != 0) {
      char buf[16];
      std::snprintf(buf, sizeof(buf), "0%o", f.mode);
      // SECURITY: no setuid, setgid or sticky secret files.
      return InvalidArgumentError("payload file " + Shown(f.path) + ": mode " + buf +
                                  " has bits outside 0777");
    }
    sorted->push_back(&f);
  }
  std::sort(sorted->begin(), sorted->end(),
            [](const PayloadFile* a, const PayloadFile* b) { return a->path < b->path; });
  std::set<std::string_view> paths;
  for (size_t i = 0; i < sorted->size(); ++i) {
    if (i > 0 && (*sorted)[i]->path == (*sorted)[i - 1]->path) {
      return InvalidArgumentError("duplicate payload path " + Shown((*sorted)[i]->path));
    }
    paths.insert((*sorted)[i]->path);
  }
  for (const PayloadFile* f : *sorted) {
    for (size_t pos = f->path.find('/'); pos != std::string::npos;
         pos = f->path.find('/', pos + 1)) {
      std::string_view dir = std::string_view(f->path).substr(0, pos);
      if (paths.count(dir) != 0) {
        return InvalidArgumentError("payload path " + Shown(dir) +
                                    " is both a file and the directory of " + Shown(f->path));
      }
    }
  }
  return OkStatus();
}

// Writer is one WritePayload call.
class Writer {
 public:
  Writer(const std::string& target, const WriteOptions& opts)
      : target_(target),
        opts_(opts),
        clock_(opts.clock != nullptr ? *opts.clock : SystemClock::Get()) {}

  StatusOr<WriteResult> Run(const std::vector<const PayloadFile*>& files);

 private:
  // What a top-level name of the new payload holds now.
  enum class Top { kMissing, kLinkOk, kLinkWrong, kLeftoverFile, kLeftoverDir };

  // Try runs one mutation, a system call returning < 0 with errno on
  // failure, unless the test hook fails it first: 0 or the errno.
  template <typename Call>
  int Try(std::string_view step, Call&& call) {
    int err = opts_.inject_fault ? opts_.inject_fault(step) : 0;
    return err != 0 ? err : call() < 0 ? errno : 0;
  }
  // Step is Try with the error as a Status naming `rel` (in the target).
  template <typename Call>
  Status Step(std::string_view step, std::string_view rel, Call&& call) {
    int err = Try(step, std::forward<Call>(call));
    return err == 0 ? OkStatus() : Fail(err, step, rel);
  }
  Status Fail(int err, std::string_view step, std::string_view rel) const {
    return ErrnoError(err, step, Shown(rel.empty() ? target_ : target_ + "/" + std::string(rel)));
  }
  bool Owned() const { return opts_.uid.has_value() || opts_.gid.has_value(); }
  uid_t Uid() const { return opts_.uid ? static_cast<uid_t>(*opts_.uid) : static_cast<uid_t>(-1); }
  gid_t Gid() const { return opts_.gid ? static_cast<gid_t>(*opts_.gid) : static_cast<gid_t>(-1); }
  Status LinkOwner(const std::string& link) {
    if (!Owned()) {
      return OkStatus();
    }
    return Step("chown link", link, [&] {
      return ::fchownat(target_fd_.get(), link.c_str(), Uid(), Gid(), AT_SYMLINK_NOFOLLOW);
    });
  }

  Status OpenTarget();
  Status InspectOld();
  Status InspectTop(const std::vector<const PayloadFile*>& files);
  Status CreateTimestampDir();
  Status SetUpDir(int fd, const std::string& rel, mode_t mode);
  StatusOr<int> EnsureDir(const std::string& rel);
  Status WriteFile(const PayloadFile& f);
  Status SyncDirs();
  Status Link(const std::string& name, Top state);
  Status PrepareSwitch();
  void Rollback();
  Status Cleanup();

  const std::string target_;
  const WriteOptions& opts_;
  const Clock& clock_;
  UniqueFd parent_fd_;
  std::string leaf_;  // the target's name in its parent
  UniqueFd target_fd_;
  bool created_target_ = false;
  std::string old_ts_;  // empty: no valid current payload
  UniqueFd old_ts_fd_;
  std::set<std::string> old_files_;
  std::map<std::string, Top> top_;
  std::string new_ts_;
  std::map<std::string, UniqueFd> dirs_;  // below the new timestamp dir; "" is itself
  std::vector<std::string> created_links_;
  bool created_data_tmp_ = false;
};

Status Writer::OpenTarget() {
  // SECURITY: the target is opened through its parent, whose owner and mode
  // are checked first, and never through a symlink: a user who could write
  // the parent could otherwise plant a link (or a directory of their own)
  // at the target's name and have the payload written where they choose.
  std::string path = target_;
  while (path.size() > 1 && path.back() == '/') {
    path.pop_back();
  }
  size_t slash = path.rfind('/');
  std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  leaf_ = slash == std::string::npos ? path : path.substr(slash + 1);
  if (leaf_.empty() || leaf_ == "." || leaf_ == "..") {
    return InvalidArgumentError("atomic writer: " + Shown(target_) + " names no directory");
  }
  parent_fd_ = UniqueFd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!parent_fd_.valid()) {
    if (errno == ENOENT) {
      return NotFoundError("atomic writer: the parent of " + Shown(target_) + " does not exist");
    }
    return ErrnoError(errno, "open the parent of", Shown(target_));
  }
  struct stat st {};
  if (::fstat(parent_fd_.get(), &st) != 0) {
    return ErrnoError(errno, "stat the parent of", Shown(target_));
  }
  RETURN_IF_ERROR(CheckWritableOnlyByTrusted(st, ::geteuid(),
                                             "atomic writer: the parent of " + Shown(target_)));
  constexpr int kOpenDir = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
  target_fd_ = UniqueFd(::openat(parent_fd_.get(), leaf_.c_str(), kOpenDir));
  if (target_fd_.valid()) {
    return OkStatus();
  }
  if (errno == ELOOP || errno == ENOTDIR) {
    return FailedPreconditionError("atomic writer: " + Shown(target_) +
                                   " is a symlink or not a directory; it is not followed");
  }
  if (errno != ENOENT) {
    return Fail(errno, "open target", "");
  }
  RETURN_IF_ERROR(
      Step("create target", "", [&] { return ::mkdirat(parent_fd_.get(), leaf_.c_str(), 0700); }));
  created_target_ = true;
  target_fd_ = UniqueFd(::openat(parent_fd_.get(), leaf_.c_str(), kOpenDir));
  if (!target_fd_.valid()) {
    return Fail(errno, "open target", "");
  }
  return SetUpDir(target_fd_.get(), "", kTargetMode);
}

// SetUpDir gives a directory the writer created its owner and its exact
// mode; chown first, since it may clear mode bits.
Status Writer::SetUpDir(int fd, const std::string& rel, mode_t mode) {
  if (Owned()) {
    RETURN_IF_ERROR(Step("chown directory", rel, [&] { return ::fchown(fd, Uid(), Gid()); }));
  }
  return Step("chmod directory", rel, [&] { return ::fchmod(fd, mode); });
}

Status Writer::InspectOld() {
  struct stat st {};
  int err = LstatAt(target_fd_.get(), kDataDir, &st);
  if (err == ENOENT) {
    return OkStatus();
  }
  if (err != 0) {
    return Fail(err, "stat", kDataDir);
  }
  if (!S_ISLNK(st.st_mode)) {
    return FailedPreconditionError("atomic writer: " + Shown(target_ + "/" + kDataDir) +
                                   " exists and is not a symlink");
  }
  std::string ts;
  if (err = ReadLinkAt(target_fd_.get(), kDataDir, &ts); err != 0) {
    return Fail(err, "read link", kDataDir);
  }
  // SECURITY: only a real directory directly inside the target counts as the
  // current payload; anything else (a link out of the target, a dangling
  // name) is treated as no payload, never read from or removed.
  if (!IsOwnName(ts) || LstatAt(target_fd_.get(), ts, &st) != 0 || !S_ISDIR(st.st_mode)) {
    return OkStatus();
  }
  if (err = OpenDirAt(target_fd_.get(), ts, &old_ts_fd_); err != 0) {
    return Fail(err, "open", ts);
  }
  if (err = WalkFiles(old_ts_fd_.get(), "", 0, &old_files_); err != 0) {
    return Fail(err, "list", ts);
  }
  old_ts_ = ts;
  return OkStatus();
}

Status Writer::InspectTop(const std::vector<const PayloadFile*>& files) {
  for (const PayloadFile* f : files) {
    std::string name = TopName(f->path);
    if (top_.count(name) != 0) {
      continue;
    }
    struct stat st {};
    int err = LstatAt(target_fd_.get(), name, &st);
    Top state = Top::kMissing;
    if (err == ENOENT) {
      state = Top::kMissing;
    } else if (err != 0) {
      return Fail(err, "stat", name);
    } else if (S_ISLNK(st.st_mode)) {
      std::string dest;
      if (err = ReadLinkAt(target_fd_.get(), name, &dest); err != 0) {
        return Fail(err, "read link", name);
      }
      state = dest == std::string(kDataDir) + "/" + name ? Top::kLinkOk : Top::kLinkWrong;
    } else if (S_ISREG(st.st_mode)) {
      state = Top::kLeftoverFile;
    } else if (S_ISDIR(st.st_mode)) {
      state = Top::kLeftoverDir;
    } else {
      return FailedPreconditionError("atomic writer: " + Shown(target_ + "/" + name) +
                                     " is neither a symlink, a regular file nor a directory");
    }
    top_[name] = state;
  }
  return OkStatus();
}

Status Writer::CreateTimestampDir() {
  std::time_t now = static_cast<std::time_t>(clock_.NowSeconds());
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char stamp[64];
  std::snprintf(stamp, sizeof(stamp), "..%04d_%02d_%02d_%02d_%02d_%02d.", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  for (int attempt = 0;; ++attempt) {
    // As Go's os.MkdirTemp, which kubelet uses: the prefix plus a random
    // uint32 in decimal, created 0700 and opened up once set up.
    std::string name = stamp + std::to_string(RandomSuffix());
    int err = Try("create timestamp dir",
                  [&] { return ::mkdirat(target_fd_.get(), name.c_str(), 0700); });
    if (err == EEXIST && attempt < kMaxNameAttempts) {
      continue;
    }
    if (err != 0) {
      return Fail(err, "create timestamp dir", name);
    }
    new_ts_ = name;
    break;
  }
  UniqueFd fd;
  if (int err = OpenDirAt(target_fd_.get(), new_ts_, &fd); err != 0) {
    return Fail(err, "open", new_ts_);
  }
  RETURN_IF_ERROR(SetUpDir(fd.get(), new_ts_, kDirMode));
  dirs_[""] = std::move(fd);
  return OkStatus();
}

StatusOr<int> Writer::EnsureDir(const std::string& rel) {
  if (auto it = dirs_.find(rel); it != dirs_.end()) {
    return it->second.get();
  }
  size_t slash = rel.rfind('/');
  std::string parent = slash == std::string::npos ? "" : rel.substr(0, slash);
  std::string leaf = slash == std::string::npos ? rel : rel.substr(slash + 1);
  ASSIGN_OR_RETURN(int parent_fd, EnsureDir(parent));
  std::string shown = new_ts_ + "/" + rel;
  RETURN_IF_ERROR(
      Step("create directory", shown, [&] { return ::mkdirat(parent_fd, leaf.c_str(), 0700); }));
  UniqueFd fd;
  if (int err = OpenDirAt(parent_fd, leaf, &fd); err != 0) {
    return Fail(err, "open", shown);
  }
  RETURN_IF_ERROR(SetUpDir(fd.get(), shown, kDirMode));
  int raw = fd.get();
  dirs_[rel] = std::move(fd);
  return raw;
}

Status Writer::WriteFile(const PayloadFile& f) {
  size_t slash = f.path.rfind('/');
  std::string parent = slash == std::string::npos ? "" : f.path.substr(0, slash);
  std::string leaf = slash == std::string::npos ? f.path : f.path.substr(slash + 1);
  ASSIGN_OR_RETURN(int parent_fd, EnsureDir(parent));
  std::string shown = new_ts_ + "/" + f.path;
  UniqueFd fd;
  RETURN_IF_ERROR(Step("create file", shown, [&] {
    fd = UniqueFd(::openat(parent_fd, leaf.c_str(),
                           O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    return fd.get();
  }));
  RETURN_IF_ERROR(
      Step("write file", shown, [&] { return AsSyscall(WriteAll(fd.get(), f.contents)); }));
  if (Owned()) {
    RETURN_IF_ERROR(Step("chown file", shown, [&] { return ::fchown(fd.get(), Uid(), Gid()); }));
  }
  // The mode given to openat() is filtered by the umask; set it exactly.
  RETURN_IF_ERROR(Step("chmod file", shown, [&] { return ::fchmod(fd.get(), f.mode); }));
  return Step("fsync file", shown, [&] { return ::fsync(fd.get()); });
}

Status Writer::SyncDirs() {
  // Deepest first, so each directory is synced after the entries made in it.
  for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
    RETURN_IF_ERROR(Step("fsync directory", new_ts_ + "/" + it->first,
                         [&] { return ::fsync(it->second.get()); }));
  }
  return OkStatus();
}

// Link makes top-level `name` the symlink `..data/name`, according to what is
// there now.
Status Writer::Link(const std::string& name, Top state) {
  int fd = target_fd_.get();
  std::string dest = std::string(kDataDir) + "/" + name;
  switch (state) {
    case Top::kLinkOk:
      return OkStatus();
    case Top::kLeftoverDir:
      // As the driver: what a provider wrote directly makes way for the link.
      RETURN_IF_ERROR(Step("remove leftover directory", name,
                           [&] { return AsSyscall(RemoveTreeAt(fd, name)); }));
      [[fallthrough]];
    case Top::kMissing:
      RETURN_IF_ERROR(
          Step("create link", name, [&] { return ::symlinkat(dest.c_str(), fd, name.c_str()); }));
      created_links_.push_back(name);
      return LinkOwner(name);
    case Top::kLinkWrong:
    case Top::kLeftoverFile: {
      // rename(2) replaces the entry itself (a link is not followed), and a
      // reader never finds the name missing.
      if (int err = RemoveTreeAt(fd, kLinkTmp); err != 0) {
        return Fail(err, "remove stale", kLinkTmp);
      }
      Status s =
          Step("create link", kLinkTmp, [&] { return ::symlinkat(dest.c_str(), fd, kLinkTmp); });
      if (s.ok()) {
        s = LinkOwner(kLinkTmp);
      }
      if (s.ok()) {
        s = Step("replace top-level entry", name,
                 [&] { return ::renameat(fd, kLinkTmp, fd, name.c_str()); });
      }
      if (!s.ok()) {
        ::unlinkat(fd, kLinkTmp, 0);
      }
      return s;
    }
  }
  return OkStatus();
}

Status Writer::PrepareSwitch() {
  int fd = target_fd_.get();
  // A crashed write may have left ..data_tmp behind; it is ours to replace.
  RETURN_IF_ERROR(Step("remove stale ..data_tmp", kDataTmp,
                       [&] { return AsSyscall(RemoveTreeAt(fd, kDataTmp)); }));
  RETURN_IF_ERROR(Step("create ..data_tmp", kDataTmp,
                       [&] { return ::symlinkat(new_ts_.c_str(), fd, kDataTmp); }));
  created_data_tmp_ = true;
  RETURN_IF_ERROR(LinkOwner(kDataTmp));
  for (const auto& [name, state] : top_) {
    RETURN_IF_ERROR(Link(name, state));
  }
  return OkStatus();
}

// Rollback undoes what this call made before the switch. It does not consult
// the fault hook: its own failures are not reported, only the original one.
void Writer::Rollback() {
  int fd = target_fd_.get();
  for (const std::string& name : created_links_) {
    ::unlinkat(fd, name.c_str(), 0);
  }
  if (created_data_tmp_) {
    ::unlinkat(fd, kDataTmp, 0);
  }
  dirs_.clear();
  if (!new_ts_.empty()) {
    RemoveTreeAt(fd, new_ts_);
  }
  if (created_target_) {
    target_fd_.reset();
    ::unlinkat(parent_fd_.get(), leaf_.c_str(), AT_REMOVEDIR);
  }
}

// Cleanup runs after the switch; it goes on past failures and returns the
// first.
Status Writer::Cleanup() {
  int fd = target_fd_.get();
  Status first;
  auto note = [&first](Status s) {
    if (first.ok() && !s.ok()) {
      first = std::move(s);
    }
  };
  note(Step("fsync target", "", [&] { return ::fsync(fd); }));
  std::vector<std::string> names;
  if (int err = ListDir(fd, &names); err != 0) {
    note(Fail(err, "list", ""));
    names.clear();
  }
  for (const std::string& name : names) {
    struct stat st {};
    if (StartsWith(name, "..")) {
      if (IsTimestampName(name) && name != new_ts_ && name != old_ts_ &&
          LstatAt(fd, name, &st) == 0 && S_ISDIR(st.st_mode)) {
        note(Step("remove stale timestamp dir", name,
                  [&] { return AsSyscall(RemoveTreeAt(fd, name)); }));
      }
      continue;
    }
    // Only links this layout made go: `name -> ..data/name` for a name the
    // new payload lacks (vanished, or left by a crashed write).
    std::string dest;
    if (top_.count(name) == 0 && ReadLinkAt(fd, name, &dest) == 0 &&
        dest == std::string(kDataDir) + "/" + name) {
      note(Step("remove vanished link", name, [&] { return ::unlinkat(fd, name.c_str(), 0); }));
    }
  }
  if (!old_ts_.empty() && old_ts_ != new_ts_) {
    old_ts_fd_.reset();
    note(Step("remove old timestamp dir", old_ts_,
              [&] { return AsSyscall(RemoveTreeAt(fd, old_ts_)); }));
  }
  return first;
}

StatusOr<WriteResult> Writer::Run(const std::vector<const PayloadFile*>& files) {
  RETURN_IF_ERROR(OpenTarget());
  Status s = InspectOld();
  if (s.ok()) {
    s = InspectTop(files);
  }
  if (!s.ok()) {
    Rollback();
    return s;
  }

  std::set<std::string> changed;
  std::set<std::string> new_paths;
  bool links_ok = true;
  for (const PayloadFile* f : files) {
    new_paths.insert(f->path);
    bool link_ok = top_[TopName(f->path)] == Top::kLinkOk;
    links_ok = links_ok && link_ok;
    if (old_ts_.empty() || !link_ok || !SameFile(old_ts_fd_.get(), *f, opts_)) {
      changed.insert(f->path);
    }
  }
  for (const std::string& old : old_files_) {
    if (new_paths.count(old) == 0) {
      changed.insert(old);
    }
  }
  WriteResult result;
  if (!old_ts_.empty() && changed.empty() && links_ok) {
    return result;
  }
  result.changed = true;
  result.changed_paths.assign(changed.begin(), changed.end());

  s = CreateTimestampDir();
  for (size_t i = 0; s.ok() && i < files.size(); ++i) {
    s = WriteFile(*files[i]);
  }
  if (s.ok()) {
    s = SyncDirs();
  }
  if (s.ok()) {
    s = PrepareSwitch();
  }
  if (s.ok()) {
    // The switch: from here on the new payload is what readers see.
    int fd = target_fd_.get();
    s = Step("rename ..data", kDataDir, [&] { return ::renameat(fd, kDataTmp, fd, kDataDir); });
  }
  if (!s.ok()) {
    Rollback();
    return s;
  }
  created_data_tmp_ = false;
  dirs_.clear();
  result.cleanup_status = Cleanup();
  return result;
}

// ReadEntry adds `name` in `dirfd` (a file, or a directory walked) under
// `key`. *vanished is set instead of failing when an entry disappears.
Status ReadEntry(int dirfd, const std::string& name, const std::string& key, int depth,
                 std::map<std::string, std::string>* out, bool* vanished) {
  struct stat st {};
  int err = LstatAt(dirfd, name, &st);
  if (err == ENOENT) {
    *vanished = true;
    return OkStatus();
  }
  if (err != 0) {
    return ErrnoError(err, "stat", Shown(key));
  }
  if (S_ISREG(st.st_mode)) {
    UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!fd.valid()) {
      if (errno == ENOENT) {
        *vanished = true;
        return OkStatus();
      }
      return ErrnoError(errno, "open", Shown(key));
    }
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return FailedPreconditionError("atomic writer: " + Shown(key) + " is not a regular file");
    }
    std::string data;
    if (err = ReadAll(fd.get(), &data); err != 0) {
      return ErrnoError(err, "read", Shown(key));
    }
    (*out)[key] = std::move(data);
    return OkStatus();
  }
  if (!S_ISDIR(st.st_mode)) {
    // SECURITY: a nested symlink could point anywhere on the node.
    return FailedPreconditionError("atomic writer: " + Shown(key) +
                                   " is a symlink or special file inside the payload");
  }
  if (depth > kMaxDepth) {
    return FailedPreconditionError("atomic writer: " + Shown(key) + " is nested too deeply");
  }
  UniqueFd sub;
  std::vector<std::string> names;
  if (err = OpenDirAt(dirfd, name, &sub); err == 0) {
    err = ListDir(sub.get(), &names);
  }
  if (err == ENOENT) {
    *vanished = true;
    return OkStatus();
  }
  if (err != 0) {
    return ErrnoError(err, "list", Shown(key));
  }
  for (const std::string& child : names) {
    RETURN_IF_ERROR(ReadEntry(sub.get(), child, key + "/" + child, depth + 1, out, vanished));
  }
  return OkStatus();
}

// CurrentTimestampDir: the name `..data` points to, or "" without one.
std::string CurrentTimestampDir(int root) {
  std::string ts;
  if (ReadLinkAt(root, kDataDir, &ts) != 0 || !IsOwnName(ts)) {
    return "";
  }
  return ts;
}

// ReadOnce reads the target with the timestamp dir `ts`; *moved when `..data`
// no longer points there, once an entry was found missing or at the end.
Status ReadOnce(int root, const std::string& ts, std::map<std::string, std::string>* out,
                bool* moved) {
  out->clear();
  UniqueFd ts_fd;
  if (!ts.empty() && OpenDirAt(root, ts, &ts_fd) != 0 && CurrentTimestampDir(root) != ts) {
    *moved = true;
    return OkStatus();
  }
  std::vector<std::string> names;
  if (int err = ListDir(root, &names); err != 0) {
    return ErrnoError(err, "list", "target");
  }
  for (const std::string& name : names) {
    if (StartsWith(name, "..")) {
      continue;
    }
    struct stat st {};
    if (int err = LstatAt(root, name, &st); err != 0) {
      if (err == ENOENT) {
        continue;  // a vanished link removed after a switch
      }
      return ErrnoError(err, "stat", Shown(name));
    }
    int dirfd = root;
    if (S_ISLNK(st.st_mode)) {
      std::string dest;
      if (ReadLinkAt(root, name, &dest) != 0 || dest != std::string(kDataDir) + "/" + name) {
        // SECURITY: the driver would follow it; a sync must not read outside.
        return FailedPreconditionError("atomic writer: top-level symlink " + Shown(name) +
                                       " does not point to " + Shown(kDataDir + ("/" + name)));
      }
      if (!ts_fd.valid()) {
        continue;  // dangling: no current payload
      }
      dirfd = ts_fd.get();
    }
    bool vanished = false;
    RETURN_IF_ERROR(ReadEntry(dirfd, name, name, 0, out, &vanished));
    if (vanished && CurrentTimestampDir(root) != ts) {
      *moved = true;
      return OkStatus();
    }
    // A link into an unchanged ..data whose name is missing was left by a
    // crashed write: not part of the payload.
  }
  // The writer removes a timestamp dir only after switching ..data away from
  // it, and never reuses a name, so an unchanged ..data means nothing was
  // removed under this read. A moved one may have emptied a directory of the
  // old set while it was listed, which no ENOENT reports.
  if (CurrentTimestampDir(root) != ts) {
    *moved = true;
  }
  return OkStatus();
}

}  // namespace

Status ValidatePayloadPath(std::string_view path) {
  if (path.empty()) {
    return InvalidArgumentError("payload path must not be empty");
  }
  if (path.find('\0') != std::string_view::npos) {
    return InvalidArgumentError("payload path " + Shown(path) + " contains a NUL byte");
  }
  if (path.size() > kMaxPathLength) {
    return InvalidArgumentError("payload path of " + std::to_string(path.size()) +
                                " bytes is longer than 4096");
  }
  if (path.front() == '/') {
    return InvalidArgumentError("payload path " + Shown(path) + " must be relative");
  }
  std::vector<std::string_view> parts = Split(path, '/');
  for (std::string_view part : parts) {
    if (part.empty()) {
      return InvalidArgumentError("payload path " + Shown(path) +
                                  " is not in clean form (empty element: '//' or a trailing '/')");
    }
    if (part == ".") {
      return InvalidArgumentError("payload path " + Shown(path) +
                                  " is not in clean form ('.' element)");
    }
    if (part == "..") {
      return InvalidArgumentError("payload path " + Shown(path) + " must not contain '..'");
    }
    if (part.size() > kMaxElementLength) {
      return InvalidArgumentError("payload path " + Shown(path) +
                                  " has an element longer than 255 bytes");
    }
  }
  if (StartsWith(parts[0], "..")) {
    return InvalidArgumentError("payload path " + Shown(path) +
                                " must not start with '..' (the writer's own names)");
  }
  return OkStatus();
}

StatusOr<WriteResult> WritePayload(const std::string& target_dir,
                                   const std::vector<PayloadFile>& files,
                                   const WriteOptions& opts) {
  if (target_dir.empty()) {
    return InvalidArgumentError("atomic writer: empty target directory");
  }
  std::vector<const PayloadFile*> sorted;
  RETURN_IF_ERROR(ValidatePayload(files, &sorted));
  Writer writer(target_dir, opts);
  return writer.Run(sorted);
}

StatusOr<std::map<std::string, std::string>> ReadPayload(const std::string& target_dir) {
  UniqueFd root(::open(target_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!root.valid()) {
    if (errno == ELOOP || errno == ENOTDIR) {
      return FailedPreconditionError("atomic writer: " + Shown(target_dir) +
                                     " is a symlink or not a directory; it is not followed");
    }
    return ErrnoError(errno, "open target", Shown(target_dir));
  }
  std::map<std::string, std::string> out;
  for (int attempt = 0; attempt < kMaxReadAttempts; ++attempt) {
    bool moved = false;
    RETURN_IF_ERROR(ReadOnce(root.get(), CurrentTimestampDir(root.get()), &out, &moved));
    if (!moved) {
      return out;
    }
  }
  return AbortedError("atomic writer: " + Shown(target_dir) + "/..data kept moving during read");
}

}  // namespace coffer::agent
