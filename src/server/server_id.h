#pragma once

#include <string>

#include "common/status.h"

namespace coffer::server {

// The file in the data directory that keeps the server's id.
std::string ServerIdPath(const std::string& data_dir);

// ResolveServerId returns the id this server writes its audit log under
// (docs/audit.md, "Several servers"): `configured` (--server-id) when it is
// not empty, else the id kept in data_dir/server-id. When that file does not
// exist yet it is written (mode 0600) with `configured`, or with a new
// random id of 12 hex digits, so the id stays with the data directory and
// its log across restarts, host renames and rescheduled containers.
//
// kInvalidArgument for a configured id that ValidateServerId refuses;
// kFailedPrecondition for a server-id file that holds no valid id;
// kUnavailable on I/O errors.
StatusOr<std::string> ResolveServerId(const std::string& data_dir, const std::string& configured);

}  // namespace coffer::server
