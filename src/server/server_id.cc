#include "server/server_id.h"

#include "audit/servers.h"
#include "common/files.h"
#include "common/strings.h"
#include "crypto/primitives.h"

namespace coffer::server {

std::string ServerIdPath(const std::string& data_dir) {
  return data_dir + "/server-id";
}

StatusOr<std::string> ResolveServerId(const std::string& data_dir, const std::string& configured) {
  if (!configured.empty()) {
    Status valid = audit::ValidateServerId(configured);
    if (!valid.ok()) {
      return InvalidArgumentError("--server-id: " + std::string(valid.message()));
    }
  }
  const std::string path = ServerIdPath(data_dir);
  auto stored = ReadFile(path);
  if (stored.ok()) {
    if (!configured.empty()) {
      return configured;
    }
    std::string id(TrimWhitespace(*stored));
    // SECURITY: the id becomes a directory name; a file edited to hold a
    // path must not lead the log elsewhere.
    Status valid = audit::ValidateServerId(id);
    if (!valid.ok()) {
      return FailedPreconditionError(path + " holds no valid server id (" +
                                     std::string(valid.message()) +
                                     "); fix it or start with --server-id");
    }
    return id;
  }
  if (stored.status().code() != StatusCode::kNotFound) {
    return stored.status();
  }
  std::string id = configured.empty() ? crypto::RandomHex(6) : configured;
  RETURN_IF_ERROR(WriteFileAtomic(path, id + "\n", 0600));
  return id;
}

}  // namespace coffer::server
