#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "audit/query.h"
#include "audit/verify.h"
#include "common/file_system.h"
#include "common/json.h"
#include "common/status.h"

// Several servers' audit logs side by side (docs/audit.md, "Several
// servers"): each server writes its own hash-chained log in
// <audit root>/<server id>/, and readers verify and query them together.
namespace coffer::audit {

// A server id names a server's log: 1 to 63 characters of [a-z0-9-], neither
// first nor last a '-'. The id is a directory name and a record field, so
// nothing else is accepted (no '/', no '.', no upper case). "audit" is
// reserved: a log directly in a directory of that name is the layout from
// before server ids, <data-dir>/audit.
inline constexpr size_t kMaxServerIdLength = 63;
// kInvalidArgument, saying what is wrong, for anything else. SECURITY: an id
// is never used as a path before it passes this.
Status ValidateServerId(std::string_view id);

// The directory of one server's log: root/<server id>. REQUIRES: a valid id.
std::string ServerLogDir(const std::string& root, std::string_view server_id);

// HoldsLog tells whether `dir` holds a log of its own: a head file or a log
// file (audit-<seq>.jsonl). false if `dir` does not exist.
// kUnavailable on I/O errors.
StatusOr<bool> HoldsLog(FileSystem& fs, const std::string& dir);

// AnyLogOpen tells whether a process (a running server) holds a log under
// `root`: a server's own, root/<server id>, or one of the layout before
// server ids, `root` itself. Offline commands that must not run beside a
// server ask this.
bool AnyLogOpen(FileSystem& fs, const std::string& root);

// MoveLegacyLog makes `root` hold the log of server `server_id` in
// root/<server_id>. A log written before servers had ids lies in `root`
// itself (log files, head, checkpoint.key, checkpoint.pub); it is moved,
// file by file, into root/.legacy-migration and that directory is then
// renamed to root/<server_id>, so a crash part-way is finished by the next
// call and never leaves two halves of one chain. Nothing is copied or
// rewritten: the chain, its signatures and its seqs stay as they were.
// `signing_key_path`, when it names root/checkpoint.key itself (the old
// default spelled out as --audit-signing-key), stays where it is, since the
// server will look for it there. Does nothing when `root` holds no such log.
//
// kFailedPrecondition if a process holds the old log (its head is locked),
// or root/<server_id> already holds a log (two logs would claim one id);
// kInvalidArgument for an invalid id; kUnavailable on I/O errors.
Status MoveLegacyLog(FileSystem& fs, const std::string& root, const std::string& server_id,
                     const std::string& signing_key_path = "");

// One server's log as readers find it.
struct ServerLog {
  // The server id: the directory's name when it is a valid id, else ""
  // (a log directory named otherwise, e.g. an old layout's `audit`).
  std::string server_id;
  std::string dir;
  // What reports call it: the server id, or the directory when it has none.
  std::string Label() const { return server_id.empty() ? dir : server_id; }
};

// FindServerLogs resolves the directories a reader was given into logs,
// each directory being either one log (it holds a head or log files) or a
// root holding several (sub-directories named with valid server ids that
// hold a log; other entries are ignored). Logs come in the order given,
// a root's sorted by server id, each once.
//
// kNotFound naming the directory if one does not exist or holds no log
// (a log named explicitly must be there); kInvalidArgument if two
// directories hold logs of the same server id; kUnavailable on I/O errors.
StatusOr<std::vector<ServerLog>> FindServerLogs(FileSystem& fs,
                                                const std::vector<std::string>& dirs);

// The verification of one server's log.
struct ServerVerifyReport {
  ServerLog log;
  Status status;        // not OK: the log could not be read (no key, I/O)
  VerifyReport report;  // when status is OK
  bool ok() const { return status.ok() && report.ok; }
};

// VerifyServerLogs verifies each log with Verify(). `public_key_for` gives
// the public key path of a log (by default its dir/checkpoint.pub). Every
// log is verified whatever the others show; one that is broken or cannot be
// read does not hide the rest. Thread-safe; reads only.
std::vector<ServerVerifyReport> VerifyServerLogs(
    const std::vector<ServerLog>& logs, const VerifyOptions& options = {},
    const std::function<std::string(const ServerLog&)>& public_key_for = nullptr);

// QueryServerLogs is Query() over several servers' logs at once: the newest
// `filter.top` matching records of all of them, oldest first, merged by
// time, ties broken by server id and then seq so the order is stable. A
// record written before records carried `serverId` gets its log's id added
// (when the log has one), so every record returned says which server wrote
// it. Status codes as Query's, for the first log that fails.
StatusOr<std::vector<Json>> QueryServerLogs(
    const std::vector<ServerLog>& logs, const Filter& filter,
    const std::function<bool(const Json&)>& may_read = nullptr);

}  // namespace coffer::audit
