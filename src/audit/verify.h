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

struct VerifyOptions {
  // A missing or unreadable head file is a note instead of a problem. Then
  // nothing proves where the log ends: lines cut after the newest checkpoint
  // go unnoticed (the records after it that nothing vouches for are still
  // problems). For copies of rotated files, or a log whose head was lost.
  bool without_head = false;
  // How long a live writer's head may stay behind the lines read before
  // they are called unvouched (a durable batch's head follows its
  // fdatasync, which a busy disk can hold up).
  int live_writer_wait_ms = 10000;
  // The server id the log's directory is named after (servers.h). When set,
  // records whose serverId names another server are noted: the directory was
  // renamed or filled with another server's log. The chain is not broken by
  // it, so it is a note, not a problem (a copy may be named anything).
  std::string server_id{};
};

// Verify checks the audit log in `dir` against the Ed25519 public key in
// `public_key_path` (docs/audit.md): every line links to the one before it
// by hash and seq, every checkpoint's signature holds, the head is present,
// signed and names a line that is there, every line is vouched for by the
// head or a checkpoint after it, the files begin where the newest
// checkpoint's retainedFrom says retention left them, and every recovery
// record the writer wrote is acknowledged by a later acknowledgement line.
// It finds edited, deleted and reordered records, a truncated tail, a
// deleted or garbled head, records appended or rewritten after the newest
// checkpoint, forged checkpoints and files removed by hand.
//
// It tolerates a writer appending at the same time: when a process holds the
// log (Log's lock on dir/head) and the files go past the head it read first,
// it reads the head again, and the lines it then names, for up to
// options.live_writer_wait_ms before it calls the rest unvouched.
//
// Returns kNotFound if `dir` or the key does not exist, kInvalidArgument if
// the key file holds no Ed25519 key, kUnavailable on I/O errors. Problems in
// the log itself are reported in the VerifyReport, not as a status.
// Thread-safe; reads only.
StatusOr<VerifyReport> Verify(const std::string& dir, const std::string& public_key_path,
                              const VerifyOptions& options = {});

}  // namespace coffer::audit
