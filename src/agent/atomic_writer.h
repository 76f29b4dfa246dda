#pragma once

// The node agent's atomic writer: puts a provider's payload into a pod's mount
// directory with the layout of kubelet's AtomicWriter, which the Secrets Store
// CSI driver vendors (reference: csi-driver.md §4.3, §4.4):
//
//   <target>/
//     ..2026_04_30_10_15_02.1234567890/   timestamp dir (UTC), mode 0755
//         db-pass
//         tls/0
//     ..data -> ..2026_04_30_10_15_02.1234567890   relative symlink
//     db-pass -> ..data/db-pass                     one symlink per top-level
//     tls -> ..data/tls                             name of the payload
//
// A write fills a fresh timestamp dir, creates the missing top-level links and
// switches `..data` with one rename(2) of `..data_tmp`, so that a reader that
// opens `<target>/name` sees the whole old set or the whole new set.
//
// Threads: one writer per target at a time; the caller serialises writes to
// the same target (two writers may remove each other's timestamp dirs).
// Readers (ReadPayload, or a pod) may run concurrently with a writer.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace coffer::agent {

// One file of a payload.
struct PayloadFile {
  // Relative and in clean form, may contain '/' (see ValidatePayloadPath).
  std::string path;
  std::string contents;
  // Permission bits, applied exactly (umask does not apply). Only 0777 bits;
  // setuid, setgid and sticky are refused.
  uint32_t mode = 0644;
};

struct WriteOptions {
  // When set, files, the timestamp dir and its subdirectories are chowned
  // (fchown) and the symlinks lchowned; a target the writer creates too.
  // Unset means the writer's own ids (root, as the driver; issue #858).
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  // Names the timestamp dir. nullptr means SystemClock::Get(). Not owned.
  Clock* clock = nullptr;
  // TEST ONLY: called before every file-system mutation with a short name of
  // the step ("create file", "rename ..data", ...). A non-zero return is an
  // errno value the step then fails with, as if the system call had. The
  // rollback after a failure does not consult it.
  std::function<int(std::string_view step)> inject_fault;
};

struct WriteResult {
  // False when the payload already matched (bytes, mode, and owner when
  // uid/gid are set) and nothing vanished: then nothing at all was touched.
  bool changed = false;
  // User-visible paths (payload-relative, sorted) added, changed or removed.
  // May be empty with changed == true: an empty payload's first write, or a
  // repaired top-level link.
  std::vector<std::string> changed_paths;
  // First failure after the switch (removing vanished links, the old or a
  // stale timestamp dir, fsync of the target). The new content is in place;
  // this is reported, not fatal.
  Status cleanup_status;
};

// ValidatePayloadPath applies the driver's rules (§1.5 item 5): non-empty,
// relative, at most 4096 bytes, each element at most 255 bytes, clean form (no
// empty element, so no "//" or trailing '/', no "." element), plus: no ".."
// element, no NUL, first element not starting with ".." (that is the
// writer's own namespace). kInvalidArgument naming the rule.
Status ValidatePayloadPath(std::string_view path);

// WritePayload makes `target_dir` hold exactly `files` (see the layout above).
//
// `target_dir` is created with mode 0750 when missing (its parent must
// exist: kNotFound otherwise). Its parent must be writable only by root and
// the writer's own user (CheckWritableOnlyByTrusted, agent/owner_check.h):
// kPermissionDenied otherwise, before anything is created; a `target_dir`
// that is a symlink (or not a directory) is kFailedPrecondition, never
// followed. The whole payload is validated before anything
// is written: a bad path or mode, a duplicate path, or a path that is both a
// file and a directory of another is kInvalidArgument.
//
// All or nothing: any failure before the switch removes the new timestamp dir
// and the links this call created, and leaves the old `..data`, its timestamp
// dir and its links as they were. Errors name the step, the path and the
// errno text, never contents: kNotFound, kPermissionDenied,
// kResourceExhausted (ENOSPC, EDQUOT, EFBIG), kUnavailable for other I/O
// errors, kFailedPrecondition when `..data` is not a symlink or a top-level
// name the payload needs is something other than a symlink, regular file or
// directory.
//
// SECURITY: nothing is followed out of the target: every step works on
// directory descriptors with O_NOFOLLOW / AT_SYMLINK_NOFOLLOW. A `..data`
// that does not name a real directory directly inside the target counts as
// no current payload (and is replaced by the switch); a top-level name that
// is a symlink anywhere else than `..data/<name>` is replaced by the right
// link; a regular file or directory at a top-level name (left over from a
// provider that wrote directly) is removed, as the driver does, but only once
// the new timestamp dir is complete, and is then not restored on failure.
// Stale timestamp dirs (from a crashed write) are removed after the switch.
StatusOr<WriteResult> WritePayload(const std::string& target_dir,
                                   const std::vector<PayloadFile>& files, const WriteOptions& opts);

// ReadPayload reads a target back as the driver does for Secret sync: the
// top-level entries not starting with "..", top-level symlinks followed,
// directories walked; the key is the path relative to the target ("tls/0").
//
// The `..data` timestamp dir is resolved once per attempt, so the result is
// one complete set even while a writer switches (it retries when `..data`
// moved under it). A top-level link into `..data` whose name the timestamp dir
// lacks (left by a crash) is skipped.
//
// SECURITY: only links of the form `<name> -> ..data/<name>` are followed;
// any other symlink, or a special file, is kFailedPrecondition rather than
// a read outside the target, and so is a target that is itself a symlink.
// kNotFound when the target does not exist.
StatusOr<std::map<std::string, std::string>> ReadPayload(const std::string& target_dir);

}  // namespace coffer::agent
