#include "audit/layout.h"

#include <fcntl.h>

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

StatusOr<std::vector<LogFile>> ListLogFiles(FileSystem& fs, const std::string& dir) {
  ASSIGN_OR_RETURN(std::vector<std::string> names, fs.ListDirectory(dir));
  std::vector<LogFile> files;
  for (std::string& name : names) {
    if (auto seq = SeqFromLogFileName(name)) {
      files.push_back(LogFile{dir + "/" + name, std::move(name), *seq});
    }
  }
  std::sort(files.begin(), files.end(),
            [](const LogFile& a, const LogFile& b) { return a.first_seq < b.first_seq; });
  return files;
}

std::string DefaultSigningKeyPath(const std::string& dir) {
  return dir + "/checkpoint.key";
}

std::string PublicKeyPath(const std::string& dir) {
  return dir + "/checkpoint.pub";
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

StatusOr<Tail> ReadTail(FileSystem& fs, const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<File> file, fs.Open(path, O_RDONLY));
  ASSIGN_OR_RETURN(FileInfo info, file->Stat());
  Tail tail;
  tail.size = info.size;
  // `window` holds the bytes [pos, size) read so far.
  std::string window;
  uint64_t pos = tail.size;
  bool have_end = false;
  while (pos > 0) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kReadChunk, pos));
    pos -= n;
    std::string chunk(n, '\0');
    RETURN_IF_ERROR(PReadFully(*file, chunk.data(), n, pos));
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

StatusOr<std::optional<std::string>> ReadFirstLine(FileSystem& fs, const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<File> file, fs.Open(path, O_RDONLY));
  std::string line;
  std::string buf(kReadChunk, '\0');
  while (true) {
    ASSIGN_OR_RETURN(size_t r, file->Read(buf.data(), buf.size()));
    if (r == 0) {
      return std::optional<std::string>();
    }
    std::string_view got(buf.data(), r);
    size_t nl = got.find('\n');
    if (nl != std::string_view::npos) {
      line.append(got.substr(0, nl));
      return std::optional<std::string>(std::move(line));
    }
    line.append(got);
  }
}

StatusOr<ReverseLineReader> ReverseLineReader::Open(FileSystem& fs, const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<File> file, fs.Open(path, O_RDONLY));
  ASSIGN_OR_RETURN(FileInfo info, file->Stat());
  return ReverseLineReader(std::move(file), info.size);
}

StatusOr<std::optional<std::string>> ReverseLineReader::Next() {
  while (true) {
    if (at_end_) {
      // Drop a trailing fragment: only lines that end with '\n' count.
      size_t nl = window_.rfind('\n');
      if (nl != std::string::npos) {
        window_.resize(nl + 1);
        at_end_ = false;
      } else if (pos_ == 0) {
        return std::optional<std::string>();
      }
    }
    if (!at_end_ && !window_.empty()) {
      // window_ ends with the newline of the line to return.
      size_t before =
          window_.size() >= 2 ? window_.rfind('\n', window_.size() - 2) : std::string::npos;
      if (before != std::string::npos || pos_ == 0) {
        size_t start = before == std::string::npos ? 0 : before + 1;
        std::string line = window_.substr(start, window_.size() - start - 1);
        window_.resize(start);
        return std::optional<std::string>(std::move(line));
      }
    }
    if (pos_ == 0) {
      return std::optional<std::string>();
    }
    size_t n = static_cast<size_t>(std::min<uint64_t>(kReadChunk, pos_));
    pos_ -= n;
    std::string chunk(n, '\0');
    RETURN_IF_ERROR(PReadFully(*file_, chunk.data(), n, pos_));
    window_.insert(0, chunk);
  }
}

std::optional<Checkpoint> ParseCheckpoint(const Json& line) {
  auto it = line.find("checkpoint");
  if (it == line.end() || !it->is_object() || !line.contains("seq") ||
      !line["seq"].is_number_unsigned()) {
    return std::nullopt;
  }
  const Json& cp = *it;
  auto uint_member = [&](const char* name) -> std::optional<uint64_t> {
    if (!cp.contains(name) || !cp[name].is_number_unsigned()) {
      return std::nullopt;
    }
    return cp[name].get<uint64_t>();
  };
  auto covered = uint_member("seq");
  auto retained_from = uint_member("retainedFrom");
  auto signature = Base64Decode(StringMember(cp, "signature"));
  Checkpoint out;
  out.seq = line["seq"].get<uint64_t>();
  out.prev = StringMember(line, "prev");
  out.hash = StringMember(cp, "hash");
  out.key_id = StringMember(cp, "keyId");
  if (!covered || !retained_from || out.hash.empty() || !signature) {
    return std::nullopt;
  }
  out.covered = *covered;
  out.retained_from = *retained_from;
  out.signature = std::move(*signature);
  return out;
}

std::string CheckCheckpoint(const Checkpoint& cp, const crypto::Ed25519Key& key) {
  if (cp.covered + 1 != cp.seq || cp.hash != cp.prev) {
    return "the checkpoint does not cover the record before it (seq or hash altered)";
  }
  if (cp.key_id != KeyId(key)) {
    return "the checkpoint is signed by another key (keyId " + cp.key_id + ")";
  }
  if (!key.Verify(CheckpointSigningInput(cp.covered, cp.hash, cp.retained_from), cp.signature)) {
    return "the checkpoint's signature does not verify (forged or altered)";
  }
  return "";
}

StatusOr<std::string> FindLine(FileSystem& fs, const std::string& dir, uint64_t seq) {
  ASSIGN_OR_RETURN(std::vector<LogFile> files, ListLogFiles(fs, dir));
  // The file that begins at or before `seq` and last among those.
  auto it = std::upper_bound(files.begin(), files.end(), seq,
                             [](uint64_t s, const LogFile& f) { return s < f.first_seq; });
  if (it == files.begin()) {
    return NotFoundError("no audit log file holds seq " + std::to_string(seq));
  }
  --it;
  ASSIGN_OR_RETURN(std::string text, ReadWholeFile(fs, it->path));
  size_t pos = 0;
  while (true) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) {
      break;
    }
    std::string_view line(text.data() + pos, nl - pos);
    auto json = ParseJson(line, 8);
    if (json && json->is_object() && json->contains("seq") && (*json)["seq"].is_number_unsigned() &&
        (*json)["seq"].get<uint64_t>() == seq) {
      return std::string(line);
    }
    pos = nl + 1;
  }
  return NotFoundError("no audit log file holds seq " + std::to_string(seq) + " (" + it->name +
                       " should)");
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
