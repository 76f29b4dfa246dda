#pragma once

// Who may change a path the agent acts on as root: a mount target's parent
// directory (the writer creates and fills the target in it) and a reload
// hook's pidFile (the agent signals the process it names).

#include <string_view>

#include "common/status.h"

#include <sys/stat.h>
#include <sys/types.h>

namespace coffer::agent {

// CheckWritableOnlyByTrusted accepts `st` (from fstat or lstat) only when no
// non-root user other than `self` can change it: its owner is root or
// `self`, it is not writable by everyone (sticky or not), and it is not
// writable by its group unless that group is root's (gid 0).
// kPermissionDenied naming `what` and the rule it breaks otherwise.
//
// SECURITY: a directory another user can write lets that user put a symlink
// or a directory of their own where the target will be, or swap it later; a
// pid file another user can write lets that user choose which process the
// agent signals.
Status CheckWritableOnlyByTrusted(const struct stat& st, uid_t self, std::string_view what);

}  // namespace coffer::agent
