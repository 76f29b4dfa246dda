#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace coffer::storage {

// Plain records kept by a Store. Secret values arrive here already sealed
// (crypto/primitives.h AesGcmSeal); a Store never sees plaintext.

struct PrincipalRecord {
  std::string object_id;  // `oid` claim
  std::string app_id;     // client id, `appid` claim
  std::string tenant_id;
  std::string display_name;
  // "ServicePrincipal", "UserAssignedIdentity", "SystemAssignedIdentity" or
  // "User" (a person: its UserRecord has the rest; its app id is
  // "user:<object id>", which no client authenticates as).
  std::string kind;
  int64_t created = 0;
  // A user-assigned identity is an ARM resource: its resource id (as
  // created), location and tags. A system-assigned identity carries the
  // resource id of its workload. Empty for service principals.
  std::string resource_id;
  std::string location;
  std::string tags_json = "{}";
  // 1 when created, incremented by every update; the ARM etag.
  int64_t version = 0;
};

// A person in the directory (docs/users.md): a principal of kind "User"
// and this record, under the same object id.
struct UserRecord {
  std::string object_id;
  std::string user_principal_name;  // as created; unique in any case
  // The principal's display name, read and written with the user.
  std::string display_name;
  std::string mail_nickname;
  std::string given_name;
  std::string surname;
  bool account_enabled = true;
  std::string password_hash;  // Argon2id (crypto/password_hash.h); never the password
  int64_t password_changed = 0;
  bool force_change_password = false;
  // Tokens issued before this time (Unix seconds) are refused, and refresh
  // tokens issued under another value. Each change increases it, by at
  // least one, so that a change is seen even within a second.
  int64_t sessions_valid_from = 0;
  // Sign-in failures since the last success or lockout, the time a lockout
  // ends, and the lockouts in a row (each lasts twice the one before).
  int64_t failed_sign_ins = 0;
  int64_t locked_until = 0;
  int64_t lockouts = 0;
  int64_t created = 0;
  // 1 when created, incremented by every update.
  int64_t version = 0;
};

struct ClientSecretRecord {
  std::string key_id;
  std::string principal_object_id;
  std::string salt;
  // iterations 0: HMAC-SHA256(key, salt || secret) under a key derived from
  // the master key; above 0: PBKDF2-SHA256 of the secret (earlier releases).
  std::string hash;
  int iterations = 0;
  std::string hint;  // first characters, as Entra shows them
  int64_t created = 0;
  int64_t expires = 0;
};

struct ClientCertificateRecord {
  std::string key_id;
  std::string principal_object_id;
  std::string certificate_der;
  std::string sha1_thumbprint;    // raw bytes
  std::string sha256_thumbprint;  // raw bytes
  int64_t created = 0;
  int64_t not_before = 0;
  int64_t not_after = 0;
};

// A federated identity credential: the user-assigned identity trusts tokens
// of `issuer` whose subject is `subject` and whose audience is one of
// `audiences`.
struct FederatedCredentialRecord {
  std::string principal_object_id;
  std::string name;  // as created; unique per identity, case-insensitively
  std::string issuer;
  std::string subject;
  std::vector<std::string> audiences;
  int64_t created = 0;
};

// A workload resource: an ARM resource that runs code and may carry managed
// identities (docs/identities.md).
struct WorkloadRecord {
  std::string uid;          // random, stable; the identity header names it
  std::string resource_id;  // as created; unique case-insensitively
  std::string type;         // e.g. "Microsoft.Web/sites"
  std::string location;
  std::string tags_json = "{}";
  // Object id of the system-assigned identity's principal, or "" when the
  // workload has none.
  std::string system_principal_id;
  // Resource ids of the user-assigned identities assigned to it, as given.
  std::vector<std::string> user_assigned;
  // Bumped to invalidate every identity header issued before.
  int64_t header_generation = 1;
  int64_t created = 0;
  // 1 when created, incremented by every update; the ARM etag.
  int64_t version = 0;
};

// A custom role definition (built-in roles live in code: authz/roles.h).
struct RoleDefinitionRecord {
  std::string id;         // GUID, lower-case
  std::string role_name;  // unique case-insensitively
  // roleName, description, permissions and assignableScopes, as validated.
  std::string definition_json;
  int64_t created = 0;
  int64_t updated = 0;
  // 1 when created, incremented by every update; the ARM etag.
  int64_t version = 0;
};

// A role assignment: `principal_id` holds role `role_definition_id` at
// `scope` and every scope below it.
struct RoleAssignmentRecord {
  std::string id;                  // GUID, lower-case (the ARM name)
  std::string scope;               // as given, without a trailing '/'
  std::string role_definition_id;  // GUID, lower-case
  std::string principal_id;
  std::string principal_type;  // "ServicePrincipal", ...
  std::string description;
  std::string created_by;  // object id of the principal that created it
  int64_t created = 0;
  int64_t updated = 0;
};

// RoleScopeKey is the form scopes are compared in: lower-case, without a
// trailing '/'.
std::string RoleScopeKey(std::string_view scope);

// One entry of a vault's access policies: whom it names and the permission
// names it grants per object type, as written (the management plane
// validates them; authz::CompileAccessPolicies compiles them).
struct AccessPolicyRecord {
  std::string tenant_id;
  std::string object_id;
  std::string application_id;  // "" unless a compound identity
  // Permission names per object type as written, or nullopt when the entry
  // does not mention the type.
  std::optional<std::vector<std::string>> keys;
  std::optional<std::vector<std::string>> secrets;
  std::optional<std::vector<std::string>> certificates;
  std::optional<std::vector<std::string>> storage;

  bool operator==(const AccessPolicyRecord&) const = default;
};

struct VaultRecord {
  std::string name;  // as created; lookups are case-insensitive
  std::string subscription_id;
  std::string resource_group;
  std::string location;
  std::string tenant_id;
  // The settings Key Vault's properties carry (docs/management-plane.md).
  std::string sku = "standard";  // "standard" or "premium"
  int retention_days = 90;       // soft-delete retention, 7-90
  bool purge_protection = false;
  bool rbac_authorization = false;
  std::vector<AccessPolicyRecord> access_policies;
  std::string tags_json = "{}";  // ARM `tags`
  std::string wrapped_data_key;  // per-vault data key sealed by the master key
  int64_t created = 0;
  int64_t updated = 0;
  // Soft delete: both 0 while the vault is live.
  int64_t deleted_date = 0;
  int64_t scheduled_purge_date = 0;
  // 1 when created, incremented by every update; the ARM etag.
  int64_t version = 0;

  bool deleted() const { return deleted_date != 0; }
  // The vault's ARM resource id.
  std::string ResourceId() const;
};

// AccessModelChanged is the one rule for Key Vault's VaultAccessPolicyChanged
// event: the permission model or the access policies differ.
bool AccessModelChanged(const VaultRecord& before, const VaultRecord& after);

// The kinds of object a vault holds. Each kind has names of its own (a
// secret and a key may share a name), and the same lifecycle: versions,
// soft delete, recovery, purge, backup. A certificate owns the key and the
// secret of its name (Store, "Owned objects").
enum class ObjectKind { kSecret, kKey, kCertificate };

// ObjectKindName is the kind as stored and as the change feed's object type
// names it: "Secret", "Key", "Certificate".
std::string_view ObjectKindName(ObjectKind kind);
// ParseObjectKind is its inverse; nullopt for anything else.
std::optional<ObjectKind> ParseObjectKind(std::string_view name);
// The kind's collection in Key Vault's URLs: "secrets", "keys", "certificates".
std::string_view ObjectCollectionName(ObjectKind kind);
// The stores' kNotFound for an object, live or soft-deleted, with Key
// Vault's reason for its kind ("SecretNotFound", "KeyNotFound").
// Where Store::ShiftTime keeps each vault's total shift, and the most any vault's
// total may reach (ten years of 365.25 days).
inline constexpr char kTimeShiftMetaKey[] = "time_shift";
inline constexpr int64_t kMaxTimeShiftSeconds = 315576000;

// The time-shift totals (Store::ShiftTime) after `seconds` more for each of
// `vault_keys`, from the stored totals `current` (absent: none yet), as the
// JSON meta value. kInvalidArgument when `seconds` is out of range or a
// total would pass kMaxTimeShiftSeconds.
StatusOr<std::string> AddTimeShift(const std::optional<std::string>& current,
                                   const std::vector<std::string>& vault_keys, int64_t seconds);
// The time-shift totals without vault `vault_key`'s (a purged vault's: a
// new vault of its name starts with none), or nullopt when it has none.
std::optional<std::string> RemoveTimeShift(const std::string& current,
                                           const std::string& vault_key);
Status ObjectNotFoundError(ObjectKind kind, const std::string& name);
Status DeletedObjectNotFoundError(ObjectKind kind, const std::string& name);

// One version of a secret, a key or a certificate.
struct SecretVersionRecord {
  std::string name;  // display name, case as first created
  std::string version;
  // A secret's value, a key's private key, or a certificate's DER, sealed
  // (keyvault/envelope.h).
  std::string sealed_value;
  std::string content_type;  // secrets only
  // Keys: the public key and its permitted operations, as JSON (the key
  // service's format, keyvault/key_service.h); certificates: what the
  // certificate service keeps of the version (keyvault/certificate_service.h);
  // "" for secrets.
  std::string key_json;
  std::string tags_json;  // "{}" when none
  bool enabled = true;
  std::optional<int64_t> nbf;
  std::optional<int64_t> exp;
  int64_t created = 0;
  int64_t updated = 0;
};

// A secret as seen by listing and reads: one version plus the secret's
// deletion state.
struct SecretView {
  SecretVersionRecord version;
  bool deleted = false;
  int64_t deleted_date = 0;
  int64_t scheduled_purge_date = 0;
  // The kind of the object that owns this one (a certificate's key and
  // secret, Key Vault's managed objects); nullopt when none does.
  std::optional<ObjectKind> owner;
};

// A version of an object that another object owns, written with a version
// of its owner (Store::AddObjectVersion): the object of `kind` with the
// owner's name.
struct OwnedVersion {
  ObjectKind kind = ObjectKind::kSecret;
  SecretVersionRecord record;
};
// Every version of such an object, for a restore; the last is the latest.
struct OwnedVersions {
  ObjectKind kind = ObjectKind::kSecret;
  std::vector<SecretVersionRecord> versions;
};

struct SecretPage {
  std::vector<SecretView> items;
  std::string next_cursor;  // empty when this is the last page
};

struct VersionPage {
  std::vector<SecretVersionRecord> items;
  std::string next_cursor;
};

// One entry of the change feed (docs/events.md): written by the store in the
// same transaction as the change it describes, numbered in commit order.
struct ChangeRecord {
  int64_t seq = 0;       // 1, 2, ... in commit order; never reused
  std::string event_id;  // UUID, lower-case
  int64_t time_ms = 0;   // when it was committed (UTC, milliseconds)
  std::string vault;     // the vault's name as created
  // Key Vault's event type without the "Microsoft.KeyVault." prefix
  // ("SecretNewVersionCreated", "SecretNearExpiry", "SecretExpired",
  // "KeyNewVersionCreated", ..., "VaultAccessPolicyChanged") or one of
  // Coffer's own ("SecretUpdated", "SecretDeleted", "SecretRecovered",
  // "SecretPurged", and the same for keys): an object's events are its
  // object type followed by what happened.
  std::string type;
  std::string object_type;  // "Secret", "Key" (ObjectKindName) or "Vault"
  std::string name;         // object name, case as stored ("" for the vault)
  std::string version;      // "" when the event is not about one version
  std::optional<int64_t> nbf;
  std::optional<int64_t> exp;
};

// A webhook delivery waiting for its first or next attempt (docs/events.md):
// one per (subscription, change). It carries the change itself, since the
// feed may be pruned before the delivery ends.
struct PendingDelivery {
  std::string vault_key;     // the subscription's vault, lower-case
  std::string name_key;      // the subscription's name, lower-case
  ChangeRecord change;       // what is delivered; change.seq is part of the key
  int attempts = 0;          // made so far
  int64_t due_ms = 0;        // when the next attempt may start (UTC, milliseconds)
  int64_t first_ms = 0;      // when it was queued; the time to live runs from it
  std::string last_outcome;  // of the last attempt ("" before the first)
  int last_status = 0;       // its HTTP status, 0 when none came
};

// The current version of a live secret or key that has an expiry date.
struct ExpiringSecret {
  ObjectKind kind = ObjectKind::kSecret;
  std::string vault;
  std::string name;
  std::string version;
  std::optional<int64_t> nbf;
  int64_t exp = 0;
};

// A live object that has a policy (a key's rotation policy), with what its
// schedule needs of its latest version.
struct ObjectPolicy {
  std::string vault;  // the vault's name as created
  std::string name;
  std::string policy_json;
  std::string latest_version;
  int64_t latest_created = 0;
  std::optional<int64_t> latest_exp;
};

// An Event Grid subscription on a vault (docs/events.md).
struct EventSubscriptionRecord {
  std::string vault;            // the vault's name as created
  std::string name;             // unique per vault, case-insensitively
  std::string properties_json;  // ARM `properties` as validated
  int64_t key_generation = 1;   // the HMAC key is derived from it
  int64_t start_seq = 0;        // changes after this one are delivered
  int64_t created = 0;
  int64_t updated = 0;
  // 1 when created, incremented by every update; the ARM etag.
  int64_t version = 0;
};

}  // namespace coffer::storage
