#pragma once

// `coffer env plan` and `coffer env apply` (docs/environments.md): what it
// takes to make an installation match an environments file, and doing it.
// Everything goes through Coffer's public APIs (ARM, the directory and the
// vault data plane), as any client's would, with the caller's credentials.

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cli/api_session.h"
#include "cli/env_file.h"
#include "common/json.h"
#include "common/status.h"
#include "common/strings.h"

namespace coffer::cli {

// What the installation holds of a vault.
struct VaultState {
  bool exists = false;
  std::string id;  // the ARM id (also for a vault still to be made)
  std::string resource_group;
  bool rbac = true;
  int retention_days = 90;
  bool purge_protection = false;
  Json tags = Json::object();
  Json access_policies = Json::array();
};

// One secret of a vault's listing: its current version's attributes.
struct SecretState {
  std::string name;
  bool deleted = false;
  bool enabled = true;
  std::optional<int64_t> nbf;
  std::optional<int64_t> exp;
  std::string content_type;
  bool managed = false;  // a certificate's
};

// Installation reads what the file's environments need, once each, and
// remembers identities made during an apply.
class Installation {
 public:
  explicit Installation(Session& s) : s_(s) {}

  Session& session() { return s_; }

  // Vault is the state of vault `name` (exists == false when there is
  // none; `rg` is the resource group it would be made in). DeletedVault:
  // whether a deleted vault of that name waits for its purge.
  StatusOr<VaultState> Vault(const std::string& name, const std::string& rg = "");
  StatusOr<bool> DeletedVault(const std::string& name);
  void Forget(const std::string& vault);

  // Secrets lists a vault's live and deleted secrets (by lower-case name;
  // a live one wins over a deleted one of the same name).
  StatusOr<const std::map<std::string, SecretState>*> Secrets(const std::string& vault);

  // Principal resolves who an access entry or application names: an
  // identity of `env` by name (nullopt while it does not exist), or an
  // object id / app id, which must name a principal of the directory
  // (kNotFound otherwise). Returns the object id.
  StatusOr<std::optional<std::string>> Principal(const Environment& env, const std::string& who,
                                                 const std::string& where);
  // Identity resolves identity `id` of an environment: its principal's
  // object id, nullopt when it does not exist yet. `exists_without_principal`
  // is set for a workload that exists but has no system-assigned identity.
  StatusOr<std::optional<std::string>> Identity(const EnvIdentity& id,
                                                bool* exists_without_principal = nullptr);
  void Remember(const std::string& identity, const std::string& object_id) {
    identities_[AsciiLower(identity)] = KnownIdentity{object_id, false};
  }

  // The resource group of an entry: its own, else the installation's.
  std::string Group(const std::string& rg) const;
  // DisplayName of a principal's object id, for readable lines ("" when
  // unknown).
  std::string DisplayName(const std::string& object_id);

 private:
  Status LoadVaults();
  StatusOr<VaultState> ReadVault(const std::string& name, const std::string& rg);
  StatusOr<std::optional<std::string>> ReadIdentity(const EnvIdentity& id,
                                                    bool* exists_without_principal);

  struct KnownIdentity {
    std::optional<std::string> object_id;
    bool bare = false;  // a workload without a system-assigned identity
  };

  Session& s_;
  bool loaded_ = false;
  Json vaults_;          // ARM list of vaults
  Json deleted_vaults_;  // ARM list of deleted vaults
  std::map<std::string, std::map<std::string, SecretState>> secrets_;
  // Read once each, by lower-case name; what apply makes or changes is
  // remembered or forgotten.
  std::map<std::string, VaultState> vault_states_;
  std::map<std::string, KnownIdentity> identities_;
  std::map<std::string, std::string> names_;  // object id -> display name
};

// One change of a plan: a readable line and what doing it takes.
struct EnvStep {
  std::string line;  // "+ vault shop-prod (group rg-prod, RBAC, ...)"
  // The secret a person must give a value for (vault/name); "" otherwise.
  std::string needs_value;
  std::function<Status()> run;  // empty for a line that only reports
};

struct EnvPlan {
  std::string environment;
  std::vector<EnvStep> steps;
  // Differences apply cannot repair (a setting that cannot change, a
  // deleted vault in the way); apply refuses the environment while any
  // remain.
  std::vector<std::string> conflicts;
};

// Values apply may set, by "vault/name" or "name" (lower case), read from
// the files `--set` names; a value is wiped when the map is destroyed.
struct EnvValues {
  std::map<std::string, std::string> values;
  ~EnvValues();
};

// PlanEnvironment reads what environment `env` needs from the installation
// (reads only) and returns the steps that make it match: vaults to make or
// change, identities to make, grants to add and grants not in the file to
// remove, deleted secrets to recover, and secrets that need a value (set
// from `values` when given there). Errors: a role, identity or principal
// that does not resolve (kNotFound), a request that fails.
StatusOr<EnvPlan> PlanEnvironment(Installation& inst, const Environment& env,
                                  const EnvValues& values);

// ApplyPlan runs the steps of `plan` in order and stops at the first that
// fails. Returns what it did, as {"environment", "done": [lines],
// "needsValue": [vault/name], "failed": "line: error"}. A plan with
// conflicts runs nothing (the result names them).
Json ApplyPlan(const EnvPlan& plan);

}  // namespace coffer::cli
