#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "crypto/ed25519.h"

// The on-disk layout of an audit log directory, shared by the writer, the
// verifier and the query scanner. See docs/audit.md.
namespace coffer::audit {

// One log file: dir/audit-<first seq, 20 digits>.jsonl.
struct LogFile {
  std::string path;
  std::string name;
  uint64_t first_seq = 0;
};

std::string LogFileName(uint64_t first_seq);
// The first seq a log file name announces; nullopt for any other name.
std::optional<uint64_t> SeqFromLogFileName(std::string_view name);
// ListLogFiles returns the log files of `dir` ordered by first seq.
// kNotFound if `dir` does not exist, kUnavailable if it cannot be read.
StatusOr<std::vector<LogFile>> ListLogFiles(const std::string& dir);

// The default signing key path, and where the public key lives beside a
// signing key: "x.key" -> "x.pub", anything else -> "<path>.pub".
std::string DefaultSigningKeyPath(const std::string& dir);
std::string PublicKeyPathFor(const std::string& signing_key_path);
// KeyId names a key in checkpoints: the first 16 hex digits of the SHA-256
// of its raw public key.
std::string KeyId(const crypto::Ed25519Key& key);

// The head file, dir/head: one fixed-size line overwritten in place after
// every batch, naming the last line written and signed over it.
inline constexpr size_t kHeadSize = 256;
struct Head {
  uint64_t seq = 0;
  std::string hash;
  std::string key_id;
  std::string signature;  // raw bytes
};
std::string HeadPath(const std::string& dir);
// FormatHead returns exactly kHeadSize bytes. REQUIRES: key.has_private().
std::string FormatHead(uint64_t seq, std::string_view hash, const crypto::Ed25519Key& key);
// ParseHead reads FormatHead's output; nullopt if malformed. The signature
// is not checked here.
std::optional<Head> ParseHead(std::string_view text);
// VerifyHead checks the key id and the signature.
bool VerifyHead(const Head& head, const crypto::Ed25519Key& key);

// The last complete line of a file and where complete lines end.
struct Tail {
  uint64_t size = 0;          // file size
  uint64_t complete_end = 0;  // offset just past the last '\n' (0 if none)
  std::string last_line;      // last complete line, without its newline
};
// ReadTail reads backwards from the end only as far as needed.
// kNotFound if the file does not exist, kUnavailable on I/O errors.
StatusOr<Tail> ReadTail(const std::string& path);
// ReadFirstLine returns the first complete line (without newline), or
// nullopt if the file holds no complete line.
StatusOr<std::optional<std::string>> ReadFirstLine(const std::string& path);
// LineTimeUs returns the "time" of a log line in microseconds, if it
// parses.
std::optional<int64_t> LineTimeUs(std::string_view line);

}  // namespace coffer::audit
