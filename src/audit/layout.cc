#include "audit/layout.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "audit/record.h"
#include "common/encoding.h"
#include "common/json.h"
#include "common/strings.h"
#include "crypto/primitives.h"

namespace coffer::audit {
namespace {

constexpr std::string_view kPrefix = "audit-";
constexpr std::string_view kSuffix = ".jsonl";
constexpr size_t kSeqDigits = 20;
constexpr size_t kReadChunk = size_t{64} * 1024;

Status Errno(const std::string& what, const std::string& path) {
  if (errno == ENOENT) {
    return NotFoundError(what + " " + path + ": " + std::strerror(errno));
  }
  return UnavailableError(what + " " + path + ": " + std::strerror(errno));
}

// Closes a descriptor on every return path.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

Status PreadFully(int fd, char* buf, size_t n, uint64_t offset, const std::string& path) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, buf + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) {
        continue;
      }
      return Errno("cannot read", path);
    }
    if (r == 0) {
      return UnavailableError("file shrank while reading: " + path);
    }
    done += static_cast<size_t>(r);
  }
  return OkStatus();
}

}  // namespace

std::string LogFileName(uint64_t first_seq) {
  std::string digits = std::to_string(first_seq);
  return std::string(kPrefix) + std::string(kSeqDigits - digits.size(), '0') + digits +
         std::string(kSuffix);
}

std::optional<uint64_t> SeqFromLogFileName(std::string_view name) {
  if (name.size() != kPrefix.size() + kSeqDigits + kSuffix.size() || !StartsWith(name, kPrefix) ||
      !EndsWith(name, kSuffix)) {
    return std::nullopt;
  }
  std::string_view digits = name.substr(kPrefix.size(), kSeqDigits);
  uint64_t seq = 0;
  auto r = std::from_chars(digits.data(), digits.data() + digits.size(), seq);
  if (r.ec != std::errc() || r.ptr != digits.data() + digits.size()) {
    return std::nullopt;
  }
  return seq;
}

StatusOr<std::vector<LogFile>> ListLogFiles(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    return Errno("cannot open audit directory", dir);
  }
  std::vector<LogFile> files;
  while (dirent* e = ::readdir(d)) {
    std::string_view name(e->d_name);
    if (auto seq = SeqFromLogFileName(name)) {
      files.push_back(LogFile{dir + "/" + std::string(name), std::string(name), *seq});
    }
  }
  ::closedir(d);
  std::sort(files.begin(), files.end(),
            [](const LogFile& a, const LogFile& b) { return a.first_seq < b.first_seq; });
  return files;
}

std::string DefaultSigningKeyPath(const std::string& dir) {
  return dir + "/checkpoint.key";
}

std::string PublicKeyPathFor(const std::string& signing_key_path) {
  if (EndsWith(signing_key_path, ".key")) {
    return signing_key_path.substr(0, signing_key_path.size() - 4) + ".pub";
  }
  return signing_key_path + ".pub";
}

std::string KeyId(const crypto::Ed25519Key& key) {
  return HexEncode(crypto::Sha256(key.PublicRaw())).substr(0, 16);
}

std::string HeadPath(const std::string& dir) {
  return dir + "/head";
}

std::string FormatHead(uint64_t seq, std::string_view hash, const crypto::Ed25519Key& key) {
  std::string out = "{\"seq\":" + std::to_string(seq) + ",\"hash\":\"";
  out += hash;
  out += "\",\"keyId\":\"" + KeyId(key) + "\",\"signature\":\"";
  out += Base64Encode(key.Sign(HeadSigningInput(seq, hash)));
  out += "\"}";
  // The widest head is about 230 bytes; padding keeps every rewrite the
  // same size, so a reader never sees the tail of an older, longer one.
  out.resize(kHeadSize - 1, ' ');
  out += '\n';
  return out;
}

std::optional<Head> ParseHead(std::string_view text) {
  auto json = ParseJson(TrimWhitespace(text), 4);
  if (!json || !json->is_object()) {
    return std::nullopt;
  }
  auto seq = json->find("seq");
  if (seq == json->end() || !seq->is_number_unsigned()) {
    return std::nullopt;
  }
  Head head;
  head.seq = seq->get<uint64_t>();
  head.hash = StringMember(*json, "hash");
  head.key_id = StringMember(*json, "keyId");
  auto sig = Base64Decode(StringMember(*json, "signature"));
  if (head.hash.empty() || !sig) {
    return std::nullopt;
  }
  head.signature = std::move(*sig);
  return head;
}

bool VerifyHead(const Head& head, const crypto::Ed25519Key& key) {
  return head.key_id == KeyId(key) &&
         key.Verify(HeadSigningInput(head.seq, head.hash), head.signature);
}

StatusOr<Tail> ReadTail(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    return Errno("cannot open", path);
  }
  off_t end = ::lseek(fd.get(), 0, SEEK_END);
  if (end < 0) {
    return Errno("cannot seek", path);
  }
  Tail tail;
  tail.size = static_cast<uint64_t>(end);
  // `window` holds the bytes [pos, size) read so far.
  std::string window;
  uint64_t pos = tail.size;
  bool have_end = false;
  while (pos > 0) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kReadChunk, pos));
    pos -= n;
    std::string chunk(n, '\0');
    RETURN_IF_ERROR(PreadFully(fd.get(), chunk.data(), n, pos, path));
    window.insert(0, chunk);
    if (!have_end) {
      size_t nl = window.rfind('\n');
      if (nl == std::string::npos) {
        continue;
      }
      have_end = true;
      tail.complete_end = pos + nl + 1;
      window.resize(nl + 1);
    }
    // window = [pos, complete_end); find the newline before the last one.
    size_t before = window.size() >= 2 ? window.rfind('\n', window.size() - 2) : std::string::npos;
    if (before != std::string::npos) {
      tail.last_line = window.substr(before + 1, window.size() - before - 2);
      return tail;
    }
  }
  if (have_end) {
    tail.last_line = window.substr(0, window.size() - 1);
  }
  return tail;
}

StatusOr<std::optional<std::string>> ReadFirstLine(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    return Errno("cannot open", path);
  }
  std::string line;
  char buf[kReadChunk];
  while (true) {
    ssize_t r = ::read(fd.get(), buf, sizeof(buf));
    if (r < 0) {
      if (errno == EINTR) {
        continue;
      }
      return Errno("cannot read", path);
    }
    if (r == 0) {
      return std::optional<std::string>();
    }
    std::string_view got(buf, static_cast<size_t>(r));
    size_t nl = got.find('\n');
    if (nl != std::string_view::npos) {
      line.append(got.substr(0, nl));
      return std::optional<std::string>(std::move(line));
    }
    line.append(got);
  }
}

std::optional<int64_t> LineTimeUs(std::string_view line) {
  // Every line Coffer writes starts with its time; anything else is parsed.
  constexpr std::string_view kStart = "{\"time\":\"";
  if (StartsWith(line, kStart)) {
    size_t end = line.find('"', kStart.size());
    if (end != std::string_view::npos) {
      return ParseAuditTime(line.substr(kStart.size(), end - kStart.size()));
    }
  }
  auto json = ParseJson(line);
  if (!json) {
    return std::nullopt;
  }
  return ParseAuditTime(StringMember(*json, "time"));
}

}  // namespace coffer::audit
