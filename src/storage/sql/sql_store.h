#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "storage/sql_db.h"
#include "storage/store.h"

namespace coffer::storage {

// SqlStore is the Store of the SQL backends: every operation is written once,
// against Db and Stmt (sql_db.h), in the SQL that SQLite and PostgreSQL
// share. A backend supplies the schema (tables, indexes, the triggers that
// write the change feed) and how statements run:
//   Write(fn)  runs `fn` inside a write transaction and returns once it is
//              durable (or failed and left nothing behind); `fn` may run
//              again when the transaction has to be retried, so it must be
//              deterministic apart from fresh ids;
//   Read(fn)   runs `fn` on a consistent snapshot.
// Thread safety and blocking are the backend's (both backends: thread-safe,
// call from worker threads).
class SqlStore : public Store {
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
  StatusOr<int64_t> QueueDeliveries(const std::string& position_key, int64_t position,
                                    const std::vector<PendingDelivery>& deliveries) override;
  StatusOr<std::vector<PendingDelivery>> ListDeliveries(const std::optional<DeliveryCursor>& after,
                                                        int limit) override;
  Status UpdateDelivery(const PendingDelivery& delivery) override;
  Status DeleteDelivery(const std::string& vault_key, const std::string& name_key,
                        int64_t seq) override;
  StatusOr<EventSubscriptionRecord> PutEventSubscription(
      const std::string& vault, const std::string& name,
      const EventSubscriptionUpsert& make) override;
  StatusOr<std::vector<EventSubscriptionRecord>> ListEventSubscriptions(
      const std::string& vault) override;
  Status DeleteEventSubscription(const std::string& vault, const std::string& name) override;

 protected:
  using WriteFn = std::function<Status(Db&)>;
  virtual Status Write(WriteFn fn) = 0;
  virtual Status Read(const std::function<Status(Db&)>& fn) = 0;
  // The statement that appends a VaultAccessPolicyChanged change for the
  // vault named by ?1 (the other changes are written by the schema's
  // triggers).
  virtual const char* VaultAccessChangeSql() const = 0;
  // A query of one row: the newest change seq ever assigned (NULL when
  // none; pruning does not lower it) and the oldest kept (NULL when none).
  virtual const char* ChangeBoundsSql() const = 0;
  // A statement run in the transaction of every meta write, with the key as
  // ?1, that tells the other processes sharing the store (their OnChange);
  // nullptr when no other process shares it.
  virtual const char* MetaChangedSql() const { return nullptr; }
  // One statement that adds a secret version, for a backend where every
  // statement of a write is a round trip made while other servers wait
  // (nullptr: the portable statements are used). Parameters: ?1 vault key,
  // ?2 name key, ?3 name, ?4 version, ?5 sealed value, ?6 content type,
  // ?7 tags, ?8 enabled, ?9 nbf, ?10 exp, ?11 created, ?12 updated. It
  // inserts the version and makes it the secret's latest only when the
  // vault exists and the secret is not deleted, and returns one row: how
  // many vaults matched (0 or 1), the secret's stored name (NULL when new)
  // and its deleted flag (NULL when new).
  virtual const char* AddSecretVersionSql() const { return nullptr; }

 private:
  // Statements shared by several writes, run inside a write.
  static Status InsertPrincipal(Db& db, const PrincipalRecord& principal);
  // kNotFound unless the principal exists.
  static Status RequirePrincipal(Db& db, const std::string& object_id);
  // Deletes the role assignments at `scope` and below.
  static Status DeleteRoleAssignmentsUnder(Db& db, const std::string& scope);
  // Deletes a principal and its credentials; kNotFound if absent.
  static Status DeletePrincipalRows(Db& db, const std::string& object_id);
  // Removes a vault and everything in it (and its time-shift total).
  static Status RemoveVault(Db& db, const std::string& key);
  // Reads a meta row inside a read or write; nullopt when there is none.
  static StatusOr<std::optional<std::string>> ReadMeta(Db& db, const std::string& key);
  // Writes a meta row and announces it (MetaChangedSql), inside a write.
  Status WriteMeta(Db& db, const std::string& key, const std::string& value) const;
};

}  // namespace coffer::storage
