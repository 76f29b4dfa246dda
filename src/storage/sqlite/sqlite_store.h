#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/histogram.h"
#include "storage/sqlite/sqlite_db.h"
#include "storage/store.h"

namespace coffer::storage {

// SqliteStore is the embedded default Store: one SQLite file in WAL mode with
// synchronous=FULL.
//
// Writes go through a single writer thread that commits them in groups: every
// write waiting when a transaction starts joins it, each inside its own
// savepoint, and all are acknowledged after the one fsync'd COMMIT. A failed
// write rolls back to its savepoint and leaves the others intact. Reads use a
// small pool of read-only connections and run concurrently with the writer.
//
// Thread-safe. Blocking: call from worker threads, never from I/O threads.
class SqliteStore final : public Store {
 public:
  // Open opens or creates the database at `path` and applies the schema.
  // kUnavailable if the file cannot be opened; kDataLoss if it is not a
  // Coffer database or is corrupt.
  static StatusOr<std::unique_ptr<SqliteStore>> Open(const std::string& path);
  ~SqliteStore() override;

  // How long each write transaction took, from BEGIN to the fsync'd COMMIT
  // (one per group of writes; failed ones included).
  const LatencyHistogram& commit_latency() const { return commit_latency_; }

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

  StatusOr<std::string> AddSecretVersion(const std::string& vault,
                                         const SecretVersionRecord& rec) override;
  Status UpdateSecretVersion(const std::string& vault, const SecretVersionRecord& rec) override;
  StatusOr<SecretView> GetSecret(const std::string& vault, const std::string& name,
                                 const std::string& version, bool include_deleted) override;
  StatusOr<SecretPage> ListSecrets(const std::string& vault, bool deleted,
                                   const std::string& cursor, int limit) override;
  StatusOr<VersionPage> ListSecretVersions(const std::string& vault, const std::string& name,
                                           const std::string& cursor, int limit) override;
  StatusOr<std::vector<SecretVersionRecord>> GetAllSecretVersions(const std::string& vault,
                                                                  const std::string& name) override;
  Status MarkSecretDeleted(const std::string& vault, const std::string& name, int64_t deleted_date,
                           int64_t scheduled_purge_date) override;
  Status RecoverSecret(const std::string& vault, const std::string& name) override;
  Status PurgeSecret(const std::string& vault, const std::string& name) override;
  StatusOr<int> PurgeExpiredSecrets(int64_t now) override;
  Status RestoreSecret(const std::string& vault,
                       const std::vector<SecretVersionRecord>& versions) override;

  StatusOr<std::vector<ChangeRecord>> ListChanges(int64_t after_seq, int limit) override;
  StatusOr<ChangeBounds> GetChangeBounds() override;
  StatusOr<int> PruneChanges(int64_t before_ms, int keep) override;
  StatusOr<std::vector<ExpiringSecret>> ListExpiringSecrets(const std::string& type,
                                                            int64_t exp_before, int limit) override;
  StatusOr<bool> RecordNotice(const ChangeRecord& change) override;
  StatusOr<EventSubscriptionRecord> PutEventSubscription(
      const std::string& vault, const std::string& name,
      const EventSubscriptionUpsert& make) override;
  StatusOr<std::vector<EventSubscriptionRecord>> ListEventSubscriptions(
      const std::string& vault) override;
  Status DeleteEventSubscription(const std::string& vault, const std::string& name) override;

 private:
  using WriteFn = std::function<Status(Db&)>;
  struct PendingWrite;

  explicit SqliteStore(std::string path) : path_(std::move(path)) {}
  Status Init();
  // Reads the schema version and migrates, inside Init's transaction.
  Status ApplySchema();
  void WriterLoop();
  // Write runs `fn` inside the next group commit and waits for it.
  Status Write(WriteFn fn);
  // Read runs `fn` on a pooled read-only connection.
  Status Read(const std::function<Status(Db&)>& fn);
  StatusOr<std::unique_ptr<Db>> AcquireReader();
  // Statements shared by several writes, run inside a write.
  static Status InsertPrincipal(Db& db, const PrincipalRecord& principal);
  // kNotFound unless the principal exists.
  static Status RequirePrincipal(Db& db, const std::string& object_id);
  // Deletes the role assignments at `scope` and below.
  static Status DeleteRoleAssignmentsUnder(Db& db, const std::string& scope);
  // Deletes a principal and its credentials; kNotFound if absent.
  static Status DeletePrincipalRows(Db& db, const std::string& object_id);
  void ReleaseReader(std::unique_ptr<Db> db);

  const std::string path_;
  std::unique_ptr<Db> writer_db_;  // used only by writer_thread_

  std::mutex write_mu_;
  std::condition_variable write_cv_;
  std::deque<PendingWrite*> write_queue_;  // guarded by write_mu_
  bool stopping_ = false;                  // guarded by write_mu_
  std::thread writer_thread_;
  LatencyHistogram commit_latency_;

  std::mutex read_mu_;
  std::vector<std::unique_ptr<Db>> readers_;  // guarded by read_mu_
};

}  // namespace coffer::storage
