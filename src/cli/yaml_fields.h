#pragma once

// Typed fields out of a parsed YAML tree, for the CLI's declarative files:
// seed files (seed_file.h) and environment files (env_file.h). One form of
// error, "FILE: line N: ENTRY: message" (kInvalidArgument, reason
// BadParameter), unknown keys refused, and placeholders ("${name}") expanded
// by a function the file's parser supplies. Messages never carry a scalar
// that may be a secret's value.

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/spc_yaml.h"
#include "cli/seed_file.h"
#include "common/json.h"
#include "common/status.h"

namespace coffer::cli {

// ParseDuration reads "N<unit>" with units s, m, h, d, w (e.g. "30d") as
// seconds; nothing for anything else or more than 100 years.
std::optional<int64_t> ParseDuration(std::string_view text);

// ReadYamlDocument parses a file that is one YAML document of at most
// `max_bytes` and `max_nodes` (aliases expanded, 12 levels deep); an empty
// file is a null node. Errors start with "FILE: ".
StatusOr<agent::YamlNode> ReadYamlDocument(std::string_view text, const std::string& file,
                                           size_t max_bytes, size_t max_nodes);

class FieldReader {
 public:
  // Expander returns what placeholder `name` stands for, or an error made
  // with Error(where, ...) naming `key`.
  using Expander = std::function<StatusOr<std::string>(
      const std::string& name, const std::string& where, const std::string& key)>;

  // `file` names the file in errors; both must outlive the reader.
  FieldReader(const std::string& file, Expander expand) : file_(file), expand_(std::move(expand)) {}

  Status Error(const std::string& where, const std::string& message) const;
  // "line N: path", the start of an entry's `where`.
  static std::string At(const agent::YamlNode& n, const std::string& path);

  // Keys refuses a node that is not a map or has a member not in `allowed`.
  Status Keys(const agent::YamlNode& n, const std::string& where,
              std::initializer_list<std::string_view> allowed) const;

  // List calls each(item, "path[i]") for every item of a sequence; a null
  // node is an empty list.
  template <typename Fn>
  Status List(const agent::YamlNode& n, const std::string& path, const Fn& each) const {
    if (n.IsNull()) {
      return OkStatus();
    }
    if (!n.IsSequence()) {
      return Error(At(n, path), "must be a list");
    }
    for (size_t i = 0; i < n.items.size(); ++i) {
      RETURN_IF_ERROR(each(n.items[i], path + "[" + std::to_string(i) + "]"));
    }
    return OkStatus();
  }

  // Text is a scalar's text with its placeholders expanded ("$${" is a
  // literal "${").
  StatusOr<std::string> Text(const agent::YamlNode& n, const std::string& where,
                             const std::string& key) const;
  // Strings is a list of scalars (a single scalar is a list of one).
  StatusOr<std::vector<std::string>> Strings(const agent::YamlNode& n, const std::string& where,
                                             const std::string& key) const;
  StatusOr<bool> Bool(const agent::YamlNode& n, const std::string& where,
                      const std::string& key) const;
  // Tags is a map of names to text, valid as Key Vault tags.
  StatusOr<Json> Tags(const agent::YamlNode& n, const std::string& where) const;
  // Name is the `name` member of entry `n`, which must be a map.
  StatusOr<std::string> Name(const agent::YamlNode& n, const std::string& where) const;

  Status ResourceGroup(const std::string& where, const std::string& rg) const;
  // IdentityName: 3-128 letters, digits, - and _, starting with a letter or
  // digit (user-assigned identities' rule, used for every named identity).
  Status IdentityName(const std::string& where, const std::string& name) const;
  static bool IsGuid(const std::string& s);

  // VaultSettings reads the members a vault entry may have besides its
  // name: resourceGroup, location, enableRbacAuthorization,
  // softDeleteRetentionInDays, enablePurgeProtection and tags. `v.where`
  // names it. (Which keys are allowed is the caller's Keys call.)
  Status VaultSettings(const agent::YamlNode& n, SeedVault& v) const;

  // AccessTarget reads `vault` and `principal` of an access entry.
  Status AccessTarget(const agent::YamlNode& n, const std::string& where, SeedAccess& a) const;
  // AccessGrant reads `role` or `permissions` (exactly one) of an access
  // entry to a vault whose model is `rbac` (unset: not known yet).
  Status AccessGrant(const agent::YamlNode& n, const std::string& where, std::optional<bool> rbac,
                     SeedAccess& a) const;

 private:
  const std::string& file_;
  Expander expand_;
};

}  // namespace coffer::cli
