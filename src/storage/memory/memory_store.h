#pragma once

#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "storage/store.h"

namespace coffer::storage {

// MemoryStore keeps everything in process memory. It is the fake used by
// unit tests and the reference the conformance suite checks SqliteStore
// against. Thread-safe (one mutex).
class MemoryStore final : public Store {
 public:
  StatusOr<std::optional<std::string>> GetMeta(const std::string& key) override;
  Status PutMeta(const std::string& key, const std::string& value) override;
  StatusOr<std::string> UpdateMeta(const std::string& key,
                                   const Upsert<std::string>& make) override;

  Status CreatePrincipal(const PrincipalRecord& principal) override;
  StatusOr<PrincipalRecord> GetPrincipalByAppId(const std::string& app_id) override;
  StatusOr<PrincipalRecord> GetPrincipal(const std::string& object_id) override;
  StatusOr<std::vector<PrincipalRecord>> ListPrincipals() override;
  StatusOr<PrincipalRecord> UpdatePrincipal(const std::string& object_id,
                                            const Mutation<PrincipalRecord>& mutate) override;
  Status DeletePrincipal(const std::string& object_id) override;
  Status CreateUser(const PrincipalRecord& principal, const UserRecord& user) override;
  StatusOr<UserRecord> GetUser(const std::string& object_id) override;
  StatusOr<UserRecord> GetUserByName(const std::string& user_principal_name) override;
  StatusOr<std::vector<UserRecord>> ListUsers() override;
  StatusOr<UserRecord> UpdateUser(const std::string& object_id,
                                  const Mutation<UserRecord>& mutate) override;
  Status AddClientSecret(const ClientSecretRecord& secret) override;
  StatusOr<std::vector<ClientSecretRecord>> ListClientSecrets(
      const std::string& principal_object_id) override;
  Status RemoveClientSecret(const std::string& principal_object_id,
                            const std::string& key_id) override;
  Status AddClientCertificate(const ClientCertificateRecord& certificate) override;
  StatusOr<std::vector<ClientCertificateRecord>> ListClientCertificates(
      const std::string& principal_object_id) override;
  Status RemoveClientCertificate(const std::string& principal_object_id,
                                 const std::string& key_id) override;
  StatusOr<bool> RecordAssertionId(const std::string& app_id, const std::string& jti,
                                   int64_t expires, int64_t now) override;

  StatusOr<FederatedCredentialRecord> PutFederatedCredential(
      const std::string& principal_object_id, const std::string& name,
      const FederatedCredentialsUpsert& make) override;
  StatusOr<std::vector<FederatedCredentialRecord>> ListFederatedCredentials(
      const std::string& principal_object_id) override;
  Status DeleteFederatedCredential(const std::string& principal_object_id,
                                   const std::string& name) override;
  StatusOr<RoleDefinitionRecord> PutRoleDefinition(
      const std::string& id, const Upsert<RoleDefinitionRecord>& make) override;
  StatusOr<std::vector<RoleDefinitionRecord>> ListRoleDefinitions() override;
  Status DeleteRoleDefinition(
      const std::string& id,
      const std::function<Status(const RoleDefinitionRecord&)>& check) override;
  Status CreateRoleAssignment(const RoleAssignmentRecord& assignment) override;
  StatusOr<std::vector<RoleAssignmentRecord>> ListRoleAssignments() override;
  Status DeleteRoleAssignment(const std::string& id) override;

  StatusOr<WorkloadRecord> PutWorkload(const std::string& resource_id,
                                       const Upsert<WorkloadWrite>& make) override;
  StatusOr<WorkloadRecord> GetWorkload(const std::string& uid) override;
  StatusOr<std::vector<WorkloadRecord>> ListWorkloads() override;
  Status DeleteWorkload(const std::string& uid) override;
  Status CreateVault(const VaultRecord& vault) override;
  StatusOr<VaultRecord> UpdateVault(const std::string& name,
                                    const Mutation<VaultRecord>& mutate) override;
  StatusOr<VaultRecord> GetVault(const std::string& name) override;
  StatusOr<std::vector<VaultRecord>> ListVaults() override;
  Status MarkVaultDeleted(const std::string& name, int64_t deleted_date,
                          int64_t scheduled_purge_date) override;
  Status RecoverVault(const std::string& name) override;
  Status PurgeVault(const std::string& name) override;
  StatusOr<int> PurgeExpiredVaults(int64_t now) override;

  using Store::AddObjectVersion;
  using Store::RestoreObject;
  StatusOr<std::string> AddObjectVersion(ObjectKind kind, const std::string& vault,
                                         const SecretVersionRecord& rec,
                                         const std::vector<OwnedVersion>& owned) override;
  StatusOr<SecretView> UpdateObjectVersion(ObjectKind kind, const std::string& vault,
                                           const std::string& name, const std::string& version,
                                           const Mutation<SecretVersionRecord>& mutate) override;
  StatusOr<SecretView> GetObject(ObjectKind kind, const std::string& vault, const std::string& name,
                                 const std::string& version, bool include_deleted) override;
  StatusOr<SecretPage> ListObjects(ObjectKind kind, const std::string& vault, bool deleted,
                                   const std::string& cursor, int limit) override;
  StatusOr<VersionPage> ListObjectVersions(ObjectKind kind, const std::string& vault,
                                           const std::string& name, const std::string& cursor,
                                           int limit) override;
  StatusOr<std::vector<SecretVersionRecord>> GetAllObjectVersions(ObjectKind kind,
                                                                  const std::string& vault,
                                                                  const std::string& name) override;
  Status MarkObjectDeleted(ObjectKind kind, const std::string& vault, const std::string& name,
                           int64_t deleted_date, int64_t scheduled_purge_date) override;
  Status RecoverObject(ObjectKind kind, const std::string& vault, const std::string& name) override;
  Status PurgeObject(ObjectKind kind, const std::string& vault, const std::string& name) override;
  StatusOr<int> PurgeExpiredObjects(int64_t now) override;
  StatusOr<int64_t> ShiftTime(const std::string& vault, int64_t seconds) override;
  StatusOr<std::string> GetObjectPolicy(ObjectKind kind, const std::string& vault,
                                        const std::string& name) override;
  StatusOr<std::string> UpdateObjectPolicy(ObjectKind kind, const std::string& vault,
                                           const std::string& name,
                                           const Upsert<std::string>& make) override;
  StatusOr<std::vector<ObjectPolicy>> ListObjectPolicies(ObjectKind kind, int limit) override;
  Status RestoreObject(ObjectKind kind, const std::string& vault,
                       const std::vector<SecretVersionRecord>& versions,
                       const std::vector<OwnedVersions>& owned) override;

  StatusOr<std::vector<ChangeRecord>> ListChanges(int64_t after_seq, int limit) override;
  StatusOr<ChangeBounds> GetChangeBounds() override;
  StatusOr<int> PruneChanges(int64_t before_ms, int keep) override;
  StatusOr<std::vector<ExpiringSecret>> ListExpiringObjects(ObjectKind kind,
                                                            const std::string& type,
                                                            int64_t exp_before, int limit) override;
  StatusOr<bool> RecordNotice(const ChangeRecord& change) override;
  StatusOr<EventSubscriptionRecord> PutEventSubscription(
      const std::string& vault, const std::string& name,
      const EventSubscriptionUpsert& make) override;
  StatusOr<std::vector<EventSubscriptionRecord>> ListEventSubscriptions(
      const std::string& vault) override;
  Status DeleteEventSubscription(const std::string& vault, const std::string& name) override;
  StatusOr<int64_t> QueueDeliveries(const std::string& position_key, int64_t position,
                                    const std::vector<PendingDelivery>& deliveries) override;
  StatusOr<std::vector<PendingDelivery>> ListDeliveries(const std::optional<DeliveryCursor>& after,
                                                        int limit) override;
  Status UpdateDelivery(const PendingDelivery& delivery) override;
  Status DeleteDelivery(const std::string& vault_key, const std::string& name_key,
                        int64_t seq) override;

  // SetUnreachable(true) makes GetVault and GetSecret fail with
  // kUnavailable, as a database that cannot be reached does: for unit tests
  // of what the caches above a store do then. Other calls are unaffected.
  void SetUnreachable(bool unreachable);

 private:
  // An object (secret, key or certificate) of a vault.
  struct Secret {
    std::string latest;
    bool deleted = false;
    int64_t deleted_date = 0;
    int64_t scheduled_purge_date = 0;
    std::map<std::string, SecretVersionRecord> versions;
    std::string policy_json;
    std::optional<ObjectKind> owner;  // Store, "Owned objects"
  };
  struct Vault {
    VaultRecord record;
    // Per kind, by lower-case name.
    std::map<ObjectKind, std::map<std::string, Secret>> objects;
  };

  Vault* FindVault(const std::string& name);
  // The change feed, as SqliteStore's triggers write it. mu_ held.
  void AppendChangeLocked(const std::string& vault, std::string type, std::string object_type,
                          std::string name, std::string version, std::optional<int64_t> nbf,
                          std::optional<int64_t> exp);
  void SecretPurgedLocked(const Vault& v, ObjectKind kind, const std::string& key, const Secret& s);
  // Adds `rec` as the latest version of the object `key` of `kind`, made
  // with `owner` when new; returns its stored name. Checked by the caller.
  std::string PutVersionLocked(Vault& v, ObjectKind kind, const std::string& key,
                               const SecretVersionRecord& rec, std::optional<ObjectKind> owner);
  // The objects of other kinds, named `key`, that the object of `kind` owns.
  std::vector<std::pair<ObjectKind, Secret*>> OwnedLocked(Vault& v, ObjectKind kind,
                                                          const std::string& key);
  std::map<std::string, Vault>::iterator EraseVaultLocked(
      std::map<std::string, Vault>::iterator it);
  // Erases a principal and its credentials; false if absent. mu_ held.
  bool ErasePrincipalLocked(const std::string& object_id);
  // `user` with its principal's display name. mu_ held.
  UserRecord NamedLocked(const UserRecord& user) const;

  std::mutex mu_;
  bool unreachable_ = false;  // guarded by mu_
  std::map<std::string, std::string> meta_;
  std::map<std::string, PrincipalRecord> principals_;  // key: object id
  std::map<std::string, UserRecord> users_;            // key: object id
  std::map<std::string, std::vector<ClientSecretRecord>> client_secrets_;
  std::map<std::string, std::vector<ClientCertificateRecord>> client_certificates_;
  // key: object id, then lower-case name
  std::map<std::string, std::map<std::string, FederatedCredentialRecord>> federated_;
  std::map<std::string, WorkloadRecord> workloads_;               // key: uid
  std::map<std::string, Vault> vaults_;                           // key: lower-case name
  std::map<std::string, RoleDefinitionRecord> role_definitions_;  // key: id
  std::vector<RoleAssignmentRecord> role_assignments_;            // in creation order
  std::deque<ChangeRecord> changes_;
  int64_t last_change_seq_ = 0;
  std::set<std::string> notices_;
  std::map<std::string, int64_t>
      assertion_ids_;  // app id '\0' jti -> expires  // "<vault key>/<name key>/<version>/<type>"
  // key: lower-case vault name, then lower-case subscription name
  std::map<std::string, std::map<std::string, EventSubscriptionRecord>> event_subscriptions_;
  // Pending webhook deliveries, by (vault key, name key, change seq).
  std::map<std::tuple<std::string, std::string, int64_t>, PendingDelivery> deliveries_;
};

}  // namespace coffer::storage
