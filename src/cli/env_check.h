#pragma once

// `coffer env check` and `coffer env diff` (docs/environments.md): what is
// wrong with an environment before a deploy finds it, and two
// environments' inventories side by side. Values are compared by keyed
// hashes the vaults compute (POST .../secrets/{name}/hash); no value is
// ever read.

#include <string>
#include <vector>

#include "cli/env_file.h"
#include "cli/env_plan.h"
#include "common/json.h"
#include "common/status.h"

namespace coffer::cli {

// One finding of `check`: a kind (MISSING, DISABLED, EXPIRED, ...), the
// environment, what it is about, and what to do.
struct EnvFinding {
  std::string kind;
  std::string environment;
  std::string subject;
  std::string detail;

  std::string Line() const;
};

// HashKey is a fresh random key for one run's keyed hashes (base64url).
std::string NewHashKey();

// SecretHash is the keyed hash of the current version of `vault`/`name`
// under `key`, as the vault computes it.
StatusOr<std::string> SecretHash(Session& s, const std::string& vault, const std::string& name,
                                 const std::string& key);

// CheckEnvironments checks the environments of `file` named in `only` (all
// when empty); see docs/environments.md for what each finding means. Errors
// are for requests that fail, not for findings.
StatusOr<std::vector<EnvFinding>> CheckEnvironments(Installation& inst, const EnvFile& file,
                                                    const std::vector<std::string>& only,
                                                    int64_t now);

// One side of a diff: the vaults of an environment of the file, or one
// vault by name.
struct DiffSide {
  std::string label;
  std::vector<std::string> vaults;
};

// DiffInventories compares the secrets of two sides. `shareable` are the
// names (lower case) whose values may be equal. Returns
// {"left", "right", "rows": [...], "differences": N}; each row has "name",
// "left"/"right" (null when absent there, else vault, enabled,
// contentType, exp), "value" ("equal", "different" or "unknown") and
// "notes" (what differs, including a shared value that is not shareable).
StatusOr<Json> DiffInventories(Installation& inst, const DiffSide& left, const DiffSide& right,
                               const std::vector<std::string>& shareable);

}  // namespace coffer::cli
