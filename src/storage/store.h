#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "storage/records.h"

namespace coffer::storage {

// Store is the persistence interface of the server. Names of vaults and
// secrets are matched case-insensitively (Key Vault identifiers are); the
// record keeps the case it was created with.
//
// Durability: every mutating call returns only after its effect is durable
// (or has failed and left nothing behind). Each call is atomic.
//
// Thread safety: implementations are thread-safe.
//
// Errors common to all calls: kUnavailable or kInternal when the backend
// fails; kDataLoss when stored data is corrupt.
//
// Atomic changes: management state is changed by read-modify-write, and two
// requests must never lose each other's change. The calls that change a
// record take a function instead of the new record: the store reads the
// current record inside its write transaction, calls the function and
// stores what it returns (or what it left in the record), incrementing
// `version`. When the function returns an error, nothing is written and the
// call returns that error. The function runs while the store holds its
// write lock (on SQLite, on the writer thread inside the group commit): it
// must be quick, deterministic apart from fresh ids, and must never call the
// store.
template <typename Record>
using Mutation = std::function<Status(Record& record)>;
// Makes the record to store from the current one, or from nothing when
// there is none yet.
template <typename Record>
using Upsert = std::function<StatusOr<Record>(const std::optional<Record>& current)>;
// Applies a version mutation to a copy of `current`, keeping what is not
// the mutation's to change (name, version id, value, created); what
// UpdateObjectVersion stores.
inline StatusOr<SecretVersionRecord> MutateVersion(const SecretVersionRecord& current,
                                                   const Mutation<SecretVersionRecord>& mutate) {
  SecretVersionRecord next = current;
  RETURN_IF_ERROR(mutate(next));
  next.name = current.name;
  next.version = current.version;
  next.sealed_value = current.sealed_value;
  next.created = current.created;
  return next;
}

// What a workload change writes: the workload, and in the same transaction
// its new system-assigned principal and the one it dropped.
struct WorkloadWrite {
  WorkloadRecord workload;
  std::optional<PrincipalRecord> add_principal;
  std::string remove_principal_id;
};

class Store {
 public:
  virtual ~Store() = default;

  // --- installation metadata (tenant id, dev bootstrap state) ---
  virtual StatusOr<std::optional<std::string>> GetMeta(const std::string& key) = 0;
  virtual Status PutMeta(const std::string& key, const std::string& value) = 0;
  // UpdateMeta stores what `make` returns given the current value (nullopt
  // when there is none), in one write transaction, and returns it: the
  // compare-and-set that several servers sharing a store use to agree on a
  // value only one of them may choose (the tenant, the administrator). When
  // `make` fails, nothing is written and its status is returned.
  virtual StatusOr<std::string> UpdateMeta(const std::string& key,
                                           const Upsert<std::string>& make) = 0;

  // --- principals and their client secrets ---
  // kAlreadyExists if the object id or app id is taken, or a user-assigned
  // identity with the same resource id (any case) exists.
  virtual Status CreatePrincipal(const PrincipalRecord& principal) = 0;
  // kNotFound if no principal has that app (client) id. Never a user: no
  // client authenticates as a person.
  virtual StatusOr<PrincipalRecord> GetPrincipalByAppId(const std::string& app_id) = 0;
  virtual StatusOr<PrincipalRecord> GetPrincipal(const std::string& object_id) = 0;
  virtual StatusOr<std::vector<PrincipalRecord>> ListPrincipals() = 0;
  // Changes display name, location and tags (other fields are kept) as
  // `mutate` leaves them. kNotFound if absent.
  virtual StatusOr<PrincipalRecord> UpdatePrincipal(const std::string& object_id,
                                                    const Mutation<PrincipalRecord>& mutate) = 0;
  // Deletes the principal and its credentials (a user's record too).
  // kNotFound if absent.
  virtual Status DeletePrincipal(const std::string& object_id) = 0;

  // --- users: a principal of kind "User" and its UserRecord ---
  // CreateUser writes both in one transaction. kAlreadyExists if the object
  // id or app id is taken, or another user has the user principal name (in
  // any case).
  virtual Status CreateUser(const PrincipalRecord& principal, const UserRecord& user) = 0;
  // kNotFound if absent.
  virtual StatusOr<UserRecord> GetUser(const std::string& object_id) = 0;
  // By user principal name, in any case. kNotFound if absent.
  virtual StatusOr<UserRecord> GetUserByName(const std::string& user_principal_name) = 0;
  // Every user, by user principal name (lower case).
  virtual StatusOr<std::vector<UserRecord>> ListUsers() = 0;
  // UpdateUser stores what `mutate` leaves (the object id and creation time
  // kept) and increments `version`. kNotFound if absent; kAlreadyExists if
  // the new user principal name is another user's.
  virtual StatusOr<UserRecord> UpdateUser(const std::string& object_id,
                                          const Mutation<UserRecord>& mutate) = 0;
  // kNotFound if the principal does not exist.
  virtual Status AddClientSecret(const ClientSecretRecord& secret) = 0;
  virtual StatusOr<std::vector<ClientSecretRecord>> ListClientSecrets(
      const std::string& principal_object_id) = 0;
  // Certificates a principal may sign client assertions with. Add:
  // kNotFound if the principal does not exist, kAlreadyExists if the
  // principal already has this certificate. Remove: kNotFound if absent.
  virtual Status AddClientCertificate(const ClientCertificateRecord& certificate) = 0;
  virtual StatusOr<std::vector<ClientCertificateRecord>> ListClientCertificates(
      const std::string& principal_object_id) = 0;
  virtual Status RemoveClientCertificate(const std::string& principal_object_id,
                                         const std::string& key_id) = 0;
  // Removes one client secret. kNotFound if the principal has no such key.
  virtual Status RemoveClientSecret(const std::string& principal_object_id,
                                    const std::string& key_id) = 0;

  // RecordAssertionId remembers that the client assertion `jti` of `app_id`
  // was used, until `expires` (Unix seconds): true when it is new, false
  // when it was seen before (a replay). Forgets assertions expired at `now`.
  virtual StatusOr<bool> RecordAssertionId(const std::string& app_id, const std::string& jti,
                                           int64_t expires, int64_t now) = 0;

  // Federated identity credentials of a principal. Put creates or replaces
  // the credential `name` (matched case-insensitively) with what `make`
  // returns, given every credential the principal holds now (so that limits
  // and uniqueness are checked atomically); kNotFound if the principal does
  // not exist. Delete: kNotFound if absent. DeletePrincipal removes them.
  using FederatedCredentialsUpsert = std::function<StatusOr<FederatedCredentialRecord>(
      const std::vector<FederatedCredentialRecord>& existing)>;
  virtual StatusOr<FederatedCredentialRecord> PutFederatedCredential(
      const std::string& principal_object_id, const std::string& name,
      const FederatedCredentialsUpsert& make) = 0;
  virtual StatusOr<std::vector<FederatedCredentialRecord>> ListFederatedCredentials(
      const std::string& principal_object_id) = 0;
  virtual Status DeleteFederatedCredential(const std::string& principal_object_id,
                                           const std::string& name) = 0;

  // --- workload resources ---
  // PutWorkload creates or changes the workload with this resource id
  // (case-insensitively): `make` gets the current one (or nullopt) and
  // returns the workload to store and, in the same transaction, the
  // principal to create (its new system-assigned identity) and the one to
  // delete (the identity it dropped). The uid of an existing workload never
  // changes. kAlreadyExists if the new principal's ids are taken; kNotFound
  // if the principal to delete does not exist. Nothing is written on error.
  virtual StatusOr<WorkloadRecord> PutWorkload(const std::string& resource_id,
                                               const Upsert<WorkloadWrite>& make) = 0;
  // kNotFound if absent.
  virtual StatusOr<WorkloadRecord> GetWorkload(const std::string& uid) = 0;
  virtual StatusOr<std::vector<WorkloadRecord>> ListWorkloads() = 0;
  // Deletes the workload and its system-assigned principal (with its
  // credentials) atomically. kNotFound if absent.
  virtual Status DeleteWorkload(const std::string& uid) = 0;

  // --- role definitions and assignments (docs/authorization.md) ---
  // Creates or replaces the custom role `id` with what `make` returns from
  // the current one. kAlreadyExists (reason
  // "RoleDefinitionWithSameNameExists") if another role has the same name.
  virtual StatusOr<RoleDefinitionRecord> PutRoleDefinition(
      const std::string& id, const Upsert<RoleDefinitionRecord>& make) = 0;
  virtual StatusOr<std::vector<RoleDefinitionRecord>> ListRoleDefinitions() = 0;
  // Deletes the role when `check` accepts the current definition (its error
  // is returned otherwise). kNotFound if absent; kFailedPrecondition (reason
  // "RoleDefinitionHasAssignments") while an assignment uses it.
  virtual Status DeleteRoleDefinition(
      const std::string& id, const std::function<Status(const RoleDefinitionRecord&)>& check) = 0;
  // kAlreadyExists (reason "RoleAssignmentExists") if the id is taken or the
  // same principal already holds the same role at the same scope.
  virtual Status CreateRoleAssignment(const RoleAssignmentRecord& assignment) = 0;
  virtual StatusOr<std::vector<RoleAssignmentRecord>> ListRoleAssignments() = 0;
  // kNotFound if absent.
  virtual Status DeleteRoleAssignment(const std::string& id) = 0;

  // --- vaults ---
  // Vault records include soft-deleted vaults (VaultRecord::deleted()); a
  // deleted vault keeps its name reserved until it is purged.
  // kAlreadyExists if a vault of that name (any case) exists, deleted or not.
  virtual Status CreateVault(const VaultRecord& vault) = 0;
  // Changes a live vault as `mutate` leaves it: location, tags and the
  // settings (sku, retention, purge protection, permission model, access
  // policies) and `updated`; name, group, key and deletion state are kept.
  // When the access model changes (AccessModelChanged), a
  // VaultAccessPolicyChanged change is appended in the same transaction.
  // kNotFound if there is no live vault.
  virtual StatusOr<VaultRecord> UpdateVault(const std::string& name,
                                            const Mutation<VaultRecord>& mutate) = 0;
  virtual StatusOr<VaultRecord> GetVault(const std::string& name) = 0;
  virtual StatusOr<std::vector<VaultRecord>> ListVaults() = 0;
  // Soft-deletes a live vault and, in the same transaction, deletes the
  // role assignments at its scope and below (as Azure does; recovering the
  // vault does not bring them back). kNotFound if there is no live vault.
  virtual Status MarkVaultDeleted(const std::string& name, int64_t deleted_date,
                                  int64_t scheduled_purge_date) = 0;
  // Undoes a vault's soft delete. kNotFound if it is not soft-deleted.
  virtual Status RecoverVault(const std::string& name) = 0;
  // Removes a vault and every object in it. kNotFound if absent.
  virtual Status PurgeVault(const std::string& name) = 0;
  // Purges every soft-deleted vault whose scheduled purge date is <= now.
  virtual StatusOr<int> PurgeExpiredVaults(int64_t now) = 0;

  // --- objects of a vault: secrets, keys and certificates ---
  // Each kind has its own names: every call acts on the objects of `kind`
  // alone, and on the objects it owns. Errors name the kind
  // ("SecretNotFound", "KeyNotFound", "CertificateNotFound").
  //
  // Owned objects. A certificate owns the key and the secret of its name
  // (Key Vault's managed objects; SecretView::owner). They are written with
  // their owner's versions (AddObjectVersion's `owned`) and follow it, in
  // the same transaction: deleting, recovering, purging or restoring the
  // owner does the same to them, and an update of an owner's version sets
  // the enabled flag, nbf, exp and updated of their versions of the same
  // id. On their own they are read-only: AddObjectVersion,
  // UpdateObjectVersion, MarkObjectDeleted, RecoverObject and PurgeObject
  // on an owned object return kPermissionDenied (reason "Forbidden"). A
  // soft-deleted owned object is not listed with the deleted objects of its
  // kind; GetObject with include_deleted finds it.
  //
  // Adds a version and makes it the latest, creating the object if needed,
  // and in the same transaction each of `owned` (objects of other kinds with
  // the same name, whose records carry the same version id) as a version of
  // an object this one owns. Returns the object's stored name, whose case is
  // that of its first version. kFailedPrecondition (reason "Conflict") if
  // the object or an owned one is soft-deleted, or if an object `owned`
  // names exists and is not owned by this kind; kNotFound if the vault does
  // not exist; kAlreadyExists if the version id is taken.
  virtual StatusOr<std::string> AddObjectVersion(ObjectKind kind, const std::string& vault,
                                                 const SecretVersionRecord& rec,
                                                 const std::vector<OwnedVersion>& owned) = 0;
  StatusOr<std::string> AddObjectVersion(ObjectKind kind, const std::string& vault,
                                         const SecretVersionRecord& rec) {
    return AddObjectVersion(kind, vault, rec, {});
  }
  // Changes one version (`version` empty: the latest) of a live object as
  // `mutate` leaves it, read and written in one write transaction (see
  // Mutation above): content type, key JSON, tags, enabled, nbf, exp and
  // updated are the mutation's to change; name, version id, value and
  // created are kept. Returns the stored version with the object's state.
  // kNotFound if the object or the version is absent.
  virtual StatusOr<SecretView> UpdateObjectVersion(ObjectKind kind, const std::string& vault,
                                                   const std::string& name,
                                                   const std::string& version,
                                                   const Mutation<SecretVersionRecord>& mutate) = 0;
  // `version` empty means the latest. Finds live objects only unless
  // `include_deleted`. kNotFound if absent.
  virtual StatusOr<SecretView> GetObject(ObjectKind kind, const std::string& vault,
                                         const std::string& name, const std::string& version,
                                         bool include_deleted) = 0;
  // Lists objects (latest version each) ordered by lower-case name, starting
  // after `cursor`, at most `limit`. `deleted` selects soft-deleted objects
  // instead of live ones.
  virtual StatusOr<SecretPage> ListObjects(ObjectKind kind, const std::string& vault, bool deleted,
                                           const std::string& cursor, int limit) = 0;
  // Lists the versions of a live object ordered by version id.
  virtual StatusOr<VersionPage> ListObjectVersions(ObjectKind kind, const std::string& vault,
                                                   const std::string& name,
                                                   const std::string& cursor, int limit) = 0;
  // Returns every version of a live object (for backup).
  virtual StatusOr<std::vector<SecretVersionRecord>> GetAllObjectVersions(
      ObjectKind kind, const std::string& vault, const std::string& name) = 0;
  // Soft-deletes a live object. kNotFound if there is no live object.
  virtual Status MarkObjectDeleted(ObjectKind kind, const std::string& vault,
                                   const std::string& name, int64_t deleted_date,
                                   int64_t scheduled_purge_date) = 0;
  // Undoes a soft delete. kNotFound if the object is not soft-deleted.
  virtual Status RecoverObject(ObjectKind kind, const std::string& vault,
                               const std::string& name) = 0;
  // Removes a soft-deleted object and all its versions. kNotFound if it is
  // not soft-deleted.
  virtual Status PurgeObject(ObjectKind kind, const std::string& vault,
                             const std::string& name) = 0;
  // Purges every soft-deleted object, of every kind, whose scheduled purge
  // date is <= now. Returns how many were purged.
  virtual StatusOr<int> PurgeExpiredObjects(int64_t now) = 0;
  // ShiftTime moves the clock of vault `vault` (of every vault, deleted ones
  // too, when `vault` is empty) `seconds` forward, as far as anything stored
  // can tell: each object version's created, updated, nbf and exp, each
  // deleted object's deletion and scheduled purge dates, and a deleted
  // vault's, move `seconds` into the past. Each version moved is an update
  // in the change feed. The total shift of each vault moved is kept in meta
  // key kTimeShiftMetaKey ({"<lower-case vault name>": seconds, ...}), in the
  // same transaction. Returns how many versions moved. kNotFound
  // (VaultNotFound) when `vault` names no vault, live or deleted;
  // kInvalidArgument when `seconds` is not in 1..kMaxTimeShiftSeconds or a
  // vault's total would pass it (nothing moves then).
  virtual StatusOr<int64_t> ShiftTime(const std::string& vault, int64_t seconds) = 0;
  // Creates an object from a backup, all versions at once, the last entry of
  // `versions` becoming the latest, with the objects it owns (`owned`, the
  // same way). kAlreadyExists if the name is taken (live or soft-deleted)
  // for the object or one of `owned`.
  virtual Status RestoreObject(ObjectKind kind, const std::string& vault,
                               const std::vector<SecretVersionRecord>& versions,
                               const std::vector<OwnedVersions>& owned) = 0;
  Status RestoreObject(ObjectKind kind, const std::string& vault,
                       const std::vector<SecretVersionRecord>& versions) {
    return RestoreObject(kind, vault, versions, {});
  }

  // An object's policy (a key's rotation policy, docs/keys.md): JSON the
  // service owns, kept with the object (not its versions), "" when it has
  // none. Get: kNotFound when there is no live object. Update stores what
  // `make` returns given the current policy, in one write transaction
  // (kNotFound when there is no live object; nothing is written when `make`
  // fails). Purging the object removes it.
  virtual StatusOr<std::string> GetObjectPolicy(ObjectKind kind, const std::string& vault,
                                                const std::string& name) = 0;
  virtual StatusOr<std::string> UpdateObjectPolicy(ObjectKind kind, const std::string& vault,
                                                   const std::string& name,
                                                   const Upsert<std::string>& make) = 0;
  // Live objects of `kind` in live vaults that have a policy, at most `limit`.
  virtual StatusOr<std::vector<ObjectPolicy>> ListObjectPolicies(ObjectKind kind, int limit) = 0;

  // The calls above for secrets.
  StatusOr<std::string> AddSecretVersion(const std::string& vault, const SecretVersionRecord& rec) {
    return AddObjectVersion(ObjectKind::kSecret, vault, rec);
  }
  StatusOr<SecretView> UpdateSecretVersion(const std::string& vault, const std::string& name,
                                           const std::string& version,
                                           const Mutation<SecretVersionRecord>& mutate) {
    return UpdateObjectVersion(ObjectKind::kSecret, vault, name, version, mutate);
  }
  StatusOr<SecretView> GetSecret(const std::string& vault, const std::string& name,
                                 const std::string& version, bool include_deleted) {
    return GetObject(ObjectKind::kSecret, vault, name, version, include_deleted);
  }
  StatusOr<SecretPage> ListSecrets(const std::string& vault, bool deleted,
                                   const std::string& cursor, int limit) {
    return ListObjects(ObjectKind::kSecret, vault, deleted, cursor, limit);
  }
  StatusOr<VersionPage> ListSecretVersions(const std::string& vault, const std::string& name,
                                           const std::string& cursor, int limit) {
    return ListObjectVersions(ObjectKind::kSecret, vault, name, cursor, limit);
  }
  StatusOr<std::vector<SecretVersionRecord>> GetAllSecretVersions(const std::string& vault,
                                                                  const std::string& name) {
    return GetAllObjectVersions(ObjectKind::kSecret, vault, name);
  }
  Status MarkSecretDeleted(const std::string& vault, const std::string& name, int64_t deleted_date,
                           int64_t scheduled_purge_date) {
    return MarkObjectDeleted(ObjectKind::kSecret, vault, name, deleted_date, scheduled_purge_date);
  }
  Status RecoverSecret(const std::string& vault, const std::string& name) {
    return RecoverObject(ObjectKind::kSecret, vault, name);
  }
  Status PurgeSecret(const std::string& vault, const std::string& name) {
    return PurgeObject(ObjectKind::kSecret, vault, name);
  }
  Status RestoreSecret(const std::string& vault, const std::vector<SecretVersionRecord>& versions) {
    return RestoreObject(ObjectKind::kSecret, vault, versions);
  }

  // --- change feed (docs/events.md) ---
  // Every change to a secret or key (new latest version, attributes
  // updated, deleted, recovered, purged) and to a vault's access model (access
  // policies, enableRbacAuthorization) appends a ChangeRecord in the same
  // transaction, so the feed has exactly the committed changes, in commit
  // order.
  //
  // Changes with seq > after_seq, oldest first, at most `limit`.
  virtual StatusOr<std::vector<ChangeRecord>> ListChanges(int64_t after_seq, int limit) = 0;
  // The newest seq ever assigned (0 when none) and the oldest still kept
  // (newest + 1 when the feed is empty).
  struct ChangeBounds {
    int64_t oldest = 1;
    int64_t newest = 0;
  };
  virtual StatusOr<ChangeBounds> GetChangeBounds() = 0;
  // What a process sharing the store committed, as OnChange reports it:
  //   kFeed    changes were appended to the feed: read it;
  //   kRecord  a record of `table` ("principals", "client_secrets",
  //            "client_certificates", "federated_credentials",
  //            "role_definitions", "role_assignments", "vaults",
  //            "vault_access_policies", "workloads", "event_subscriptions", "meta")
  //            was written (`deleted`: removed), `key` its principal's object id,
  //            the vault's lower-case name, its id, or the meta key;
  //   kAll     anything may have changed (the store could not hear for a
  //            while): drop every cache and read the feed.
  struct ExternalChange {
    enum class Kind { kFeed, kRecord, kAll };
    Kind kind = Kind::kAll;
    std::string table;
    std::string key;
    bool deleted = false;
  };
  // OnChange registers `fn`, called on a thread of the store's for each
  // change committed by any process sharing the store (this one's
  // included), so that caches are dropped and the feed read at once rather
  // than at the next poll. Stores that no other process shares never call
  // it. `fn` must not block for long.
  virtual void OnChange(std::function<void(const ExternalChange&)> fn) { (void)fn; }
  // StopChanges stops calling the functions OnChange registered, waiting for
  // a call in progress; call it before what they use goes away.
  virtual void StopChanges() {}
  // Leads says whether this process is, now, the one of all those sharing
  // the store that does the work done once per installation (expiry scans,
  // scheduled purges, pruning the feed, webhook deliveries). At most one
  // process leads at a time, as far as the store can tell; when the leader
  // dies another takes over. A store no other process shares always leads.
  virtual bool Leads() { return true; }
  // Removes changes committed before `before_ms`, keeping at least the newest
  // `keep`. Returns how many were removed.
  virtual StatusOr<int> PruneChanges(int64_t before_ms, int keep) = 0;
  // Current versions of live objects of `kind` whose exp <= exp_before and
  // that have no notice of `type` yet, at most `limit`.
  virtual StatusOr<std::vector<ExpiringSecret>> ListExpiringObjects(ObjectKind kind,
                                                                    const std::string& type,
                                                                    int64_t exp_before,
                                                                    int limit) = 0;
  StatusOr<std::vector<ExpiringSecret>> ListExpiringSecrets(const std::string& type,
                                                            int64_t exp_before, int limit) {
    return ListExpiringObjects(ObjectKind::kSecret, type, exp_before, limit);
  }
  // Records a notice (change.type for change.vault/name/version; the type
  // starts with the object's kind) and appends `change` to the feed, once:
  // false, appending nothing, when that notice exists. Notices go when
  // their object is purged.
  virtual StatusOr<bool> RecordNotice(const ChangeRecord& change) = 0;

  // --- pending webhook deliveries (docs/events.md, docs/ha.md) ---
  // The leader's webhook deliveries live in the store from the moment they
  // are queued until they are delivered or dead-lettered, so that a restart
  // or the next leader continues their schedule.
  //
  // QueueDeliveries, in one write transaction: reads the position stored in
  // meta `position_key` (a decimal seq; 0 when absent or not a number),
  // inserts the `deliveries` whose change seq is above it, and stores
  // max(stored, `position`). Returns the position that was stored before.
  // A writer that is no longer the leader cannot undo the new leader's
  // work: the position never moves backwards, a delivery at or below the
  // stored position is taken as queued already (its leader queued it, and
  // may have delivered it since), and a (subscription, seq) that is queued
  // already stays one row, as it is.
  virtual StatusOr<int64_t> QueueDeliveries(const std::string& position_key, int64_t position,
                                            const std::vector<PendingDelivery>& deliveries) = 0;
  // Where a listing of pending deliveries continues: after this row in the
  // order (due_ms, vault_key, name_key, change seq).
  struct DeliveryCursor {
    int64_t due_ms = 0;
    std::string vault_key;
    std::string name_key;
    int64_t seq = 0;
  };
  // Pending deliveries in that order, after `after` (from the first when
  // nullopt), at most `limit`.
  virtual StatusOr<std::vector<PendingDelivery>> ListDeliveries(
      const std::optional<DeliveryCursor>& after, int limit) = 0;
  // Records an attempt that will be retried: attempts, due time and last
  // outcome of the row (vault_key, name_key, change.seq), and only when
  // `delivery.attempts` is above the stored count, so that a late writer
  // never moves a row's schedule back. kNotFound if the row is gone
  // (delivered, dead-lettered, or its subscription deleted).
  virtual Status UpdateDelivery(const PendingDelivery& delivery) = 0;
  // Removes a delivery that ended (delivered, or dead-lettered). kNotFound if
  // absent. DeleteEventSubscription and PurgeVault remove the deliveries of
  // the subscriptions they remove.
  virtual Status DeleteDelivery(const std::string& vault_key, const std::string& name_key,
                                int64_t seq) = 0;

  // --- event subscriptions ---
  // Creates or replaces the subscription `name` of `vault` (any case) with
  // what `make` returns from the current one; `existing` is how many the
  // vault holds now, for the limit. kNotFound if the vault does not exist.
  // Purging a vault removes its subscriptions.
  using EventSubscriptionUpsert = std::function<StatusOr<EventSubscriptionRecord>(
      const std::optional<EventSubscriptionRecord>& current, size_t existing)>;
  virtual StatusOr<EventSubscriptionRecord> PutEventSubscription(
      const std::string& vault, const std::string& name, const EventSubscriptionUpsert& make) = 0;
  // `vault` empty lists every vault's.
  virtual StatusOr<std::vector<EventSubscriptionRecord>> ListEventSubscriptions(
      const std::string& vault) = 0;
  // kNotFound if absent.
  virtual Status DeleteEventSubscription(const std::string& vault, const std::string& name) = 0;
};

}  // namespace coffer::storage
