#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/file_system.h"
#include "common/json.h"
#include "common/status.h"
#include "crypto/ed25519.h"

// The on-disk layout of an audit log directory, shared by the writer, the
// verifier and the query scanner. See docs/audit.md. Every file operation
// goes through the FileSystem given (the writer's seam; readers pass
// FileSystem::Default()).
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
StatusOr<std::vector<LogFile>> ListLogFiles(FileSystem& fs, const std::string& dir);

// The default signing key path, dir/checkpoint.key, and where the public key
// is published for verifiers whatever the signing key's path,
// dir/checkpoint.pub.
std::string DefaultSigningKeyPath(const std::string& dir);
std::string PublicKeyPath(const std::string& dir);
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

// A checkpoint line's fields (docs/audit.md).
struct Checkpoint {
  uint64_t seq = 0;  // the line's own seq and prev
  std::string prev;
  uint64_t covered = 0;  // checkpoint.seq: the line it signs
  std::string hash;      // checkpoint.hash
  uint64_t retained_from = 0;
  std::string key_id;
  std::string signature;  // raw bytes
};
// ParseCheckpoint reads the fields of a parsed checkpoint line; nullopt if
// one is missing or malformed.
std::optional<Checkpoint> ParseCheckpoint(const Json& line);
// CheckCheckpoint returns "" if the checkpoint covers the line before it
// (its seq and prev) and `key` signed it, else what is wrong with it.
std::string CheckCheckpoint(const Checkpoint& cp, const crypto::Ed25519Key& key);

// FindLine returns the complete line with `seq` in the log files of `dir`.
// kNotFound if no file holds it, kUnavailable on I/O errors.
StatusOr<std::string> FindLine(FileSystem& fs, const std::string& dir, uint64_t seq);

// The last complete line of a file and where complete lines end.
struct Tail {
  uint64_t size = 0;          // file size
  uint64_t complete_end = 0;  // offset just past the last '\n' (0 if none)
  std::string last_line;      // last complete line, without its newline
};
// ReadTail reads backwards from the end only as far as needed.
// kNotFound if the file does not exist, kUnavailable on I/O errors.
StatusOr<Tail> ReadTail(FileSystem& fs, const std::string& path);
// ReadFirstLine returns the first complete line (without newline), or
// nullopt if the file holds no complete line.
StatusOr<std::optional<std::string>> ReadFirstLine(FileSystem& fs, const std::string& path);

// ReverseLineReader returns the complete lines of a file last to first,
// reading backwards from the end in chunks, so that finding the last few
// lines of a large file reads only its end. A trailing fragment without a
// newline is skipped. Not thread-safe.
class ReverseLineReader {
 public:
  // kNotFound if the file does not exist, kUnavailable on I/O errors.
  static StatusOr<ReverseLineReader> Open(FileSystem& fs, const std::string& path);
  // Next returns the line before the one it returned last (without its
  // newline), or nullopt at the start of the file.
  StatusOr<std::optional<std::string>> Next();

 private:
  explicit ReverseLineReader(std::unique_ptr<File> file, uint64_t end)
      : file_(std::move(file)), pos_(end) {}
  std::unique_ptr<File> file_;
  uint64_t pos_;        // bytes before pos_ are not in window_ yet
  std::string window_;  // bytes [pos_, pos_ + window_.size()) not yet returned
  bool at_end_ = true;  // the trailing fragment has not been dropped yet
};
// LineTimeUs returns the "time" of a log line in microseconds, if it
// parses.
std::optional<int64_t> LineTimeUs(std::string_view line);

}  // namespace coffer::audit
