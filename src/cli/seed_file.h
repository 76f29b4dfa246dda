#pragma once

// The seed file (docs/testing-with-coffer.md): vaults, their secrets with
// versions, user-assigned identities and access, in one YAML document, for
// `coffer server --dev --seed`, `coffer keyvault import` and (written)
// `coffer keyvault export`. This is its parser and writer; applying one is
// seed_apply.h.
//
// The parser reads untrusted text. It checks all it can without a server
// (ImportSeed checks the rest before it changes anything), so that a file
// that is wrong anywhere changes nothing; each error names the file, the
// line and the entry, e.g.
//   seed.yaml: line 14: vaults[0].secrets[2] (db-password): unknown key 'valeu'
// and never a secret's value.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace coffer::cli {

struct SeedVersion {
  std::optional<std::string> value;  // absent in an export without values
  std::string content_type;
  Json tags = Json::object();
  bool enabled = true;
  std::optional<int64_t> nbf;
  std::optional<int64_t> exp;
};

struct SeedSecret {
  std::string name;
  std::string where;                  // "line N: vaults[i].secrets[j] (name)", for errors
  std::vector<SeedVersion> versions;  // oldest first; the last is the current one
};

struct SeedVault {
  std::string name;
  std::string where;
  std::string resource_group;  // "" = the installation's default (dev.env)
  std::string location = "local";
  // Unset settings take Key Vault's defaults for a new vault and are not
  // compared for an existing one.
  std::optional<bool> rbac;
  std::optional<int> retention_days;
  std::optional<bool> purge_protection;
  Json tags = Json::object();
  std::vector<SeedSecret> secrets;
};

struct SeedIdentity {
  std::string name;
  std::string where;
  std::string resource_group;  // "" = the installation's default
  std::string location = "local";
  Json tags = Json::object();
};

// Who may do what in a vault: a role assignment at the vault's scope (RBAC
// vaults) or an access-policy entry (access-policy vaults).
struct SeedAccess {
  std::string where;
  std::string vault;
  // An identity of the file by name, or a principal's object id or app id.
  std::string principal;
  std::string role;  // role name or id; "" for an access policy
  // Access policy: "secrets", "keys", "certificates" -> permission names.
  std::map<std::string, std::vector<std::string>> permissions;
};

struct Seed {
  std::vector<SeedVault> vaults;
  std::vector<SeedIdentity> identities;
  std::vector<SeedAccess> access;
};

// What placeholders expand to: ${host}, ${port}, ${now} and ${now+N<unit>} /
// ${now-N<unit>} with units s, m, h, d, w (Unix seconds); $${ is a literal
// "${".
struct SeedContext {
  std::string host;
  int port = 0;
  int64_t now = 0;
};

// Bounds on what a seed file may hold; beyond them it is refused.
inline constexpr size_t kMaxSeedBytes = 16 << 20;
inline constexpr size_t kMaxSeedVaults = 100;
inline constexpr size_t kMaxSeedSecrets = 10000;  // all vaults together
inline constexpr size_t kMaxSeedVersions = 100;   // per secret

// ParseSeed parses a seed file. `file` names it in errors. kInvalidArgument
// for malformed YAML, unknown keys, wrong types, invalid names, values,
// tags, times or permissions, duplicates (a vault or identity twice, a
// secret twice in a vault), access to a vault or identity the file names
// wrongly, and unknown placeholders.
StatusOr<Seed> ParseSeed(std::string_view text, const std::string& file,
                         const SeedContext& context);

// RenderSeed writes `seed` in the format ParseSeed reads (times as RFC 3339
// UTC), values included when they are present.
std::string RenderSeed(const Seed& seed);

}  // namespace coffer::cli
