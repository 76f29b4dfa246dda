#include "audit/servers.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "audit/layout.h"
#include "audit/record.h"
#include "common/strings.h"

namespace coffer::audit {
namespace {

constexpr std::string_view kLegacyStaging = ".legacy-migration";

// The files of a log directory that move with the log (docs/audit.md,
// "Files"); a log file name is recognised by SeqFromLogFileName.
bool IsLogDirFile(std::string_view name) {
  return SeqFromLogFileName(name).has_value() || name == "head" || name == "checkpoint.key" ||
         name == "checkpoint.pub";
}

std::string Basename(std::string_view path) {
  size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

// Whether two paths name one file, judged by their text (the file may not
// exist; a symlink is not followed).
bool SamePath(const std::string& a, const std::string& b) {
  std::error_code ec;
  std::filesystem::path pa = std::filesystem::absolute(a, ec).lexically_normal();
  std::filesystem::path pb = std::filesystem::absolute(b, ec).lexically_normal();
  return !ec && pa == pb;
}

std::string StripTrailingSlashes(std::string path) {
  while (path.size() > 1 && path.back() == '/') {
    path.pop_back();
  }
  return path;
}

}  // namespace

Status ValidateServerId(std::string_view id) {
  if (id.empty() || id.size() > kMaxServerIdLength) {
    return InvalidArgumentError("a server id must be 1 to " + std::to_string(kMaxServerIdLength) +
                                " characters long");
  }
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
      return InvalidArgumentError(
          "a server id may hold only lower-case letters, digits and '-' (it names a directory "
          "and a record field)");
    }
  }
  if (id.front() == '-' || id.back() == '-') {
    return InvalidArgumentError("a server id may not begin or end with '-'");
  }
  // A log found in a directory named `audit` is one from before server ids
  // (<data-dir>/audit itself), not the log of a server called so.
  if (id == "audit") {
    return InvalidArgumentError("the server id 'audit' is reserved: it names the audit directory");
  }
  return OkStatus();
}

std::string ServerLogDir(const std::string& root, std::string_view server_id) {
  return root + "/" + std::string(server_id);
}

StatusOr<bool> HoldsLog(FileSystem& fs, const std::string& dir) {
  auto names = fs.ListDirectory(dir);
  if (!names.ok()) {
    if (names.status().code() == StatusCode::kNotFound) {
      return false;
    }
    return names.status();
  }
  for (const std::string& name : *names) {
    if (name == "head" || SeqFromLogFileName(name)) {
      return true;
    }
  }
  return false;
}

bool AnyLogOpen(FileSystem& fs, const std::string& root) {
  std::vector<std::string> dirs = {root};
  if (auto names = fs.ListDirectory(root); names.ok()) {
    for (const std::string& name : *names) {
      if (ValidateServerId(name).ok()) {
        dirs.push_back(ServerLogDir(root, name));
      }
    }
  }
  for (const std::string& dir : dirs) {
    auto locked = fs.IsLocked(HeadPath(dir));
    if (locked.ok() && *locked) {
      return true;
    }
  }
  return false;
}

Status MoveLegacyLog(FileSystem& fs, const std::string& root, const std::string& server_id,
                     const std::string& signing_key_path) {
  RETURN_IF_ERROR(ValidateServerId(server_id));
  auto listed = fs.ListDirectory(root);
  if (!listed.ok()) {
    return listed.status().code() == StatusCode::kNotFound ? OkStatus() : listed.status();
  }
  std::vector<std::string> names = std::move(*listed);
  const std::string staging = root + "/" + std::string(kLegacyStaging);
  bool staged = std::find(names.begin(), names.end(), kLegacyStaging) != names.end();
  bool legacy = std::any_of(names.begin(), names.end(), [](const std::string& n) {
    return n == "head" || SeqFromLogFileName(n).has_value();
  });
  if (!legacy && !staged) {
    return OkStatus();
  }
  const std::string target = ServerLogDir(root, server_id);
  ASSIGN_OR_RETURN(bool taken, HoldsLog(fs, target));
  if (taken) {
    return FailedPreconditionError(
        root + " holds a log written before servers had ids, and " + target +
        " already holds the log of server id " + server_id +
        "; the two cannot be one chain. Move the older log's files into a directory of their "
        "own and verify it with coffer audit verify --dir");
  }
  // SECURITY: never move a log a running server writes (it holds its head).
  for (const std::string& dir : {root, staging}) {
    auto locked = fs.IsLocked(HeadPath(dir));
    if (locked.ok() && *locked) {
      return FailedPreconditionError("the audit log in " + dir +
                                     " is open in another process; stop that server first");
    }
  }
  RETURN_IF_ERROR(fs.CreateDirectories(staging, 0700));
  const bool keep_key =
      !signing_key_path.empty() && SamePath(signing_key_path, DefaultSigningKeyPath(root));
  for (const std::string& name : names) {
    if (IsLogDirFile(name) && !(keep_key && name == "checkpoint.key")) {
      RETURN_IF_ERROR(fs.Rename(root + "/" + name, staging + "/" + name));
    }
  }
  RETURN_IF_ERROR(fs.SyncDirectory(staging));
  RETURN_IF_ERROR(fs.SyncDirectory(root));
  // rename(2) replaces an empty target directory, e.g. one made by hand.
  RETURN_IF_ERROR(fs.Rename(staging, target));
  return fs.SyncDirectory(root);
}

StatusOr<std::vector<ServerLog>> FindServerLogs(FileSystem& fs,
                                                const std::vector<std::string>& dirs) {
  std::vector<ServerLog> logs;
  std::set<std::string> seen_dirs;
  std::map<std::string, std::string> dir_of_id;
  auto add = [&](ServerLog log) -> Status {
    if (!seen_dirs.insert(log.dir).second) {
      return OkStatus();
    }
    if (!log.server_id.empty()) {
      auto [it, fresh] = dir_of_id.emplace(log.server_id, log.dir);
      if (!fresh) {
        return InvalidArgumentError("two audit logs have server id " + log.server_id + ": " +
                                    it->second + " and " + log.dir);
      }
    }
    logs.push_back(std::move(log));
    return OkStatus();
  };
  for (const std::string& given : dirs) {
    const std::string dir = StripTrailingSlashes(given);
    auto info = fs.Stat(dir);
    if (!info.ok()) {
      if (info.status().code() == StatusCode::kNotFound) {
        return NotFoundError("no audit log in " + dir + ": it does not exist");
      }
      return info.status();
    }
    if (!info->is_directory) {
      return NotFoundError("no audit log in " + dir + ": it is not a directory");
    }
    ASSIGN_OR_RETURN(bool own, HoldsLog(fs, dir));
    if (own) {
      std::string base = Basename(dir);
      RETURN_IF_ERROR(add(ServerLog{ValidateServerId(base).ok() ? base : "", dir}));
      continue;
    }
    ASSIGN_OR_RETURN(std::vector<std::string> names, fs.ListDirectory(dir));
    std::sort(names.begin(), names.end());
    size_t found = 0;
    for (const std::string& name : names) {
      if (!ValidateServerId(name).ok()) {
        continue;
      }
      std::string sub = ServerLogDir(dir, name);
      ASSIGN_OR_RETURN(bool holds, HoldsLog(fs, sub));
      if (holds) {
        RETURN_IF_ERROR(add(ServerLog{name, sub}));
        ++found;
      }
    }
    if (found == 0) {
      return NotFoundError("no audit log in " + dir +
                           ": neither log files nor sub-directories named with server ids that "
                           "hold them");
    }
  }
  return logs;
}

std::vector<ServerVerifyReport> VerifyServerLogs(
    const std::vector<ServerLog>& logs, const VerifyOptions& options,
    const std::function<std::string(const ServerLog&)>& public_key_for) {
  std::vector<ServerVerifyReport> out;
  for (const ServerLog& log : logs) {
    ServerVerifyReport r;
    r.log = log;
    std::string key = public_key_for ? public_key_for(log) : PublicKeyPath(log.dir);
    VerifyOptions own = options;
    own.server_id = log.server_id;
    auto report = Verify(log.dir, key, own);
    if (report.ok()) {
      r.report = std::move(*report);
    } else {
      r.status = report.status();
    }
    out.push_back(std::move(r));
  }
  return out;
}

StatusOr<std::vector<Json>> QueryServerLogs(const std::vector<ServerLog>& logs,
                                            const Filter& filter,
                                            const std::function<bool(const Json&)>& may_read) {
  // (time, server id, seq, record): the merge order.
  using Keyed = std::tuple<int64_t, std::string, uint64_t, Json>;
  std::vector<Keyed> merged;
  for (const ServerLog& log : logs) {
    // Each log's newest `top` hold the newest `top` of all of them.
    ASSIGN_OR_RETURN(std::vector<Json> records, Query(log.dir, filter, may_read));
    for (Json& r : records) {
      if (!log.server_id.empty() && !r.contains(kServerIdField)) {
        r[kServerIdField] = log.server_id;
      }
      int64_t time = ParseAuditTime(StringMember(r, "time")).value_or(0);
      std::string id = StringMember(r, kServerIdField);
      uint64_t seq =
          r.contains("seq") && r["seq"].is_number_unsigned() ? r["seq"].get<uint64_t>() : 0;
      merged.emplace_back(time, std::move(id), seq, std::move(r));
    }
  }
  std::stable_sort(merged.begin(), merged.end(), [](const Keyed& a, const Keyed& b) {
    return std::tie(std::get<0>(a), std::get<1>(a), std::get<2>(a)) <
           std::tie(std::get<0>(b), std::get<1>(b), std::get<2>(b));
  });
  size_t skip = merged.size() > filter.top ? merged.size() - filter.top : 0;
  std::vector<Json> out;
  out.reserve(merged.size() - skip);
  for (size_t i = skip; i < merged.size(); ++i) {
    out.push_back(std::move(std::get<3>(merged[i])));
  }
  return out;
}

}  // namespace coffer::audit
