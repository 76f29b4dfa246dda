#pragma once

// The environments file of `coffer env` (docs/environments.md): a team's
// environments (dev, staging, prod, ...), each with its vaults and
// identities; the secrets each application needs; who may do what; and
// optionally the SecretProviderClass manifests and @Microsoft.KeyVault(...)
// references the applications use. Entries are written once and expanded
// for every environment they apply to, with ${env} and the environment's
// own variables.
//
// The parser reads untrusted text and checks everything it can without a
// server, so that a wrong file changes nothing. Errors name the file, the
// line, the entry and the environment, e.g.
//   envs.yaml: line 31: applications[0].secrets[1] [prod] (db-password):
//   unknown key 'sharable'
// The file never holds a secret's value.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/seed_file.h"
#include "common/status.h"

namespace coffer::cli {

// An identity that belongs to an environment, made (by `coffer env apply`)
// as its kind says.
enum class EnvIdentityKind {
  kUserAssigned,      // Microsoft.ManagedIdentity/userAssignedIdentities
  kServicePrincipal,  // a directory service principal (display name = name)
  kWebApp,            // a web app's system-assigned identity
  kVm,                // a virtual machine's system-assigned identity
};

struct EnvIdentity {
  std::string name;
  std::string where;
  EnvIdentityKind kind = EnvIdentityKind::kUserAssigned;
  std::string resource_group;  // "" = the installation's default
  std::string location = "local";
};

// What an environment's copy of a secret must be like.
struct EnvSecret {
  std::string name;
  std::string where;
  std::string vault;         // the vault that holds it
  std::string content_type;  // "" = not checked
  // May the value equal another environment's? Not unless marked.
  bool shareable = false;
  bool expiry_required = false;
  // The expiry may be at most this far ahead (apply sets new values'
  // expiry to now + max_ahead).
  std::optional<int64_t> max_ahead;
  // `check` reports a secret that expires sooner than this.
  std::optional<int64_t> min_remaining;
};

// One object an application reads, from a SecretProviderClass or a
// reference, with where that was written.
struct EnvReadObject {
  std::string vault;
  std::string type = "secret";  // "secret", "key" or "cert"
  std::string name;
  std::string version;    // "" = the current one
  std::string client_id;  // the SPC's identity (clientID / userAssignedIdentityID), if any
  std::string where;
};

struct EnvApplication {
  std::string name;
  std::string where;
  // The identity that reads its secrets: an identity of the environment
  // by name, or an object id / app id; "" = none declared.
  std::string identity;
  std::vector<EnvSecret> secrets;
  std::vector<EnvReadObject> reads;  // from its manifests and references
};

struct Environment {
  std::string name;
  std::string where;
  std::map<std::string, std::string> variables;  // ${env} included
  std::vector<SeedVault> vaults;                 // without secrets
  std::vector<EnvIdentity> identities;
  std::vector<EnvApplication> applications;
  std::vector<SeedAccess> access;
};

struct EnvFile {
  std::vector<Environment> environments;

  // Find is the environment `name`, or nullptr.
  const Environment* Find(std::string_view name) const;
};

// Bounds on what an environments file may hold.
inline constexpr size_t kMaxEnvFileBytes = 4 << 20;
inline constexpr size_t kMaxEnvironments = 20;
inline constexpr size_t kMaxEnvEntries = 5000;  // expanded entries, all kinds together

// ReadFileFn reads a file the environments file names (a
// SecretProviderClass manifest or an env file of references), as a path
// relative to the environments file's directory.
using ReadFileFn = std::function<StatusOr<std::string>(const std::string& path)>;

// ParseEnvFile parses an environments file; `file` names it in errors and
// `read` reads the manifests and reference files it names. kInvalidArgument
// for malformed YAML, unknown keys, wrong types, invalid names, unknown
// placeholders or environments, duplicates, a secret, access entry or
// application naming a vault or identity its environment does not declare
// (unless an object id or app id), and malformed manifests or references.
StatusOr<EnvFile> ParseEnvFile(std::string_view text, const std::string& file,
                               const ReadFileFn& read);

}  // namespace coffer::cli
