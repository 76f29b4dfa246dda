#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace coffer::audit {

// Where the chain is broken and how. `file` is a log file name (or "head");
// `line` counts from 1 within it; `seq` is the record concerned.
struct VerifyProblem {
  std::string file;
  uint64_t line = 0;
  uint64_t seq = 0;
  std::string what;
};

struct VerifyReport {
  bool ok = false;         // no problems
  uint64_t records = 0;    // lines checked, checkpoints excluded
  uint64_t first_seq = 0;  // first and last seq present (0 if none)
  uint64_t last_seq = 0;
  uint64_t checkpoints = 0;  // checkpoint lines
  std::vector<VerifyProblem> problems;
  std::vector<std::string> notes;  // facts that are not tampering
};

// Verify checks the audit log in `dir` against the Ed25519 public key in
// `public_key_path` (docs/audit.md): every line links to the one before it
// by hash and seq, every checkpoint's signature holds, the head (if present)
// matches the last line, and the files begin where the newest checkpoint's
// retainedFrom says retention left them. It finds edited, deleted and
// reordered records, a truncated tail, forged checkpoints and files removed
// by hand, and tolerates a last line being written at the same time.
//
// Returns kNotFound if `dir` or the key does not exist, kInvalidArgument if
// the key file holds no Ed25519 key, kUnavailable on I/O errors. Problems in
// the log itself are reported in the VerifyReport, not as a status.
// Thread-safe; reads only.
StatusOr<VerifyReport> Verify(const std::string& dir, const std::string& public_key_path);

}  // namespace coffer::audit
