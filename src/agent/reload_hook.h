#pragma once

// What a mount's reload hook may act on: the process named by a pidFile, and
// the environment of a reload command (docs/agent.md, "Reload hook").

#include <string>
#include <vector>

#include "common/status.h"

#include <sys/types.h>

namespace coffer::agent {

// ReadReloadPid reads the process id in a reload hook's `pid_file`.
//
// SECURITY: the agent signals as root, so the file must not let another user
// choose the process: it is opened without following a symlink, must be a
// regular file, and must be writable only by root and the agent's own user
// (CheckWritableOnlyByTrusted, agent/owner_check.h).
//
// kPermissionDenied for a file another user could write,
// kFailedPrecondition for a symlink or anything but a regular file,
// kInvalidArgument when it holds no process id above 1 (decimal, surrounding
// whitespace allowed, at most 64 bytes), kNotFound when it is missing,
// kUnavailable for other I/O errors. Messages name the file, not its bytes.
StatusOr<pid_t> ReadReloadPid(const std::string& pid_file);

// ReloadEnvironment is the whole environment of a reload command: PATH (the
// agent's own, or /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
// when it has none), COFFER_MOUNT=<mount> and COFFER_MOUNT_TARGET=<target>.
//
// SECURITY: nothing else of the agent's environment reaches the command: not
// its credentials (AZURE_CLIENT_SECRET, IDENTITY_HEADER, ...) nor any other
// AZURE_*, IDENTITY_* or COFFER_* setting.
std::vector<std::string> ReloadEnvironment(const std::string& mount, const std::string& target);

}  // namespace coffer::agent
