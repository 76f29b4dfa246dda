#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "storage/records.h"

namespace coffer::authz {

// Key Vault's object types, as access policies name them.
enum class ObjectType { kSecrets, kKeys, kCertificates, kStorage };
inline constexpr int kObjectTypes = 4;

// The member name of an object type in an access policy's `permissions`
// ("secrets", "keys", "certificates", "storage").
std::string_view ObjectTypeName(ObjectType type);

// Key Vault's complete access-policy permission names for a type, in
// Key Vault's order, without "all" (docs/authorization.md).
std::span<const std::string_view> PermissionNames(ObjectType type);

// A set of permissions of one object type: bit i is PermissionNames()[i].
using PermissionSet = uint32_t;

// PermissionBit returns the set holding one permission named
// case-insensitively, every permission for "all", nullopt when Key Vault
// has no such permission.
std::optional<PermissionSet> ParsePermission(ObjectType type, std::string_view name);

// One data-plane operation: the operation name audit records carry
// (`SecretGet`), the access-policy permission it needs and the RBAC
// dataAction it needs. Every data-plane operation has exactly one.
struct DataOperation {
  std::string_view name;
  ObjectType type;
  std::string_view permission;   // access-policy permission, e.g. "get"
  std::string_view data_action;  // e.g. "Microsoft.KeyVault/vaults/secrets/getSecret/action"
  // True when the operation acts on one named object, so that an
  // assignment at that object's scope applies; false for vault-wide
  // operations (list, restore).
  bool on_object;
  PermissionSet bit;
};

// Every data-plane operation Coffer serves.
std::span<const DataOperation> DataOperations();
// The operation named `name` ("SecretGet", case-insensitive), or nullptr.
const DataOperation* FindOperation(std::string_view name);

// Every Key Vault dataAction a role may grant (for validating custom roles;
// wildcards are matched against these).
std::span<const std::string_view> KnownDataActions();

// An access-policy entry, compiled: who it names and what it grants per
// object type.
struct AccessPolicy {
  std::string tenant_id;       // lower-case
  std::string object_id;       // lower-case
  std::string application_id;  // lower-case; "" unless a compound identity
  std::array<PermissionSet, kObjectTypes> granted{};
};

// Hashes strings so that maps keyed by std::string are searched with a
// std::string_view, uncopied.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};

// A vault's access policies, compiled, with the entries of each object id
// indexed so a decision looks only at the caller's.
struct AccessPolicySet {
  std::vector<AccessPolicy> entries;
  // key: lower-case oid
  std::unordered_map<std::string, std::vector<uint32_t>, StringHash, std::equal_to<>> by_object;
};

// ParseAccessPolicies checks ARM `properties.accessPolicies` strictly: an
// array of at most 1024 objects with string tenantId and objectId, an
// optional string applicationId and a permissions object whose members are
// object types (any case) holding arrays of Key Vault's permission names
// (or "all"). kInvalidArgument names the first fault. Names are kept as
// written; a null list is as if absent.
StatusOr<std::vector<storage::AccessPolicyRecord>> ParseAccessPolicies(const Json& policies);

// CompileAccessPolicies indexes stored access policies for decisions.
AccessPolicySet CompileAccessPolicies(const std::vector<storage::AccessPolicyRecord>& policies);
// Parse, then compile.
StatusOr<AccessPolicySet> CompileAccessPolicies(const Json& policies);

// AccessPoliciesToArm renders access policies in ARM's shape.
Json AccessPoliciesToArm(const std::vector<storage::AccessPolicyRecord>& policies);

inline constexpr size_t kMaxAccessPolicies = 1024;

}  // namespace coffer::authz
