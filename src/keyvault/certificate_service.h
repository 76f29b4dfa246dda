#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/json.h"
#include "common/status.h"
#include "keyvault/certificate_issuers.h"
#include "keyvault/certificate_policy.h"
#include "keyvault/envelope.h"
#include "keyvault/key_service.h"
#include "keyvault/secret_service.h"
#include "keyvault/vault_registry.h"
#include "storage/store.h"

namespace coffer::keyvault {

// A certificate version as reads show it.
struct Certificate {
  storage::SecretVersionRecord record;      // sealed_value is always empty here
  std::string cer;                          // the certificate, DER
  std::string x5t;                          // SHA-1 of the DER, raw
  std::optional<CertificatePolicy> policy;  // set by reads that return a bundle
  bool deleted = false;
  int64_t deleted_date = 0;
  int64_t scheduled_purge_date = 0;
  int recoverable_days = 0;
  std::string recovery_level;
  // An operation is in progress (its GET is /certificates/{name}/pending).
  // With no `cer`, this is that operation's version-to-be: a certificate
  // whose first version is not made yet, read as Key Vault shows it
  // (disabled, with its policy).
  bool pending = false;
};

struct CertificateList {
  std::vector<Certificate> items;
  std::string next_cursor;  // empty on the last page
};

// A certificate's creation operation (GET /certificates/{name}/pending).
struct CertificateOperation {
  std::string name;    // the certificate's stored name
  std::string issuer;  // the policy's issuer
  std::string csr;     // DER
  std::string status;  // "inProgress", "completed" or "failed"
  std::string status_details;
  std::string request_id;  // lower-case UUID
  bool cancellation_requested = false;
};

// What POST /certificates/{name}/create takes.
struct CertificateCreateInput {
  std::optional<Json> policy;  // the request's `policy`; absent: the current one
  std::string tags_json = "{}";
  bool enabled = true;
};

// What POST /certificates/{name}/import takes.
struct CertificateImportInput {
  std::string value;  // PEM text, base64 of PEM, or base64 of a PFX
  std::string password;
  std::optional<Json> policy;
  std::string tags_json = "{}";
  bool enabled = true;
};

// What POST /certificates/{name}/pending/merge takes.
struct CertificateMergeInput {
  std::vector<std::string> x5c;  // DER, the signed certificate first
  std::optional<std::string> tags_json;
  std::optional<bool> enabled;
};

// What PATCH /certificates/{name}/{version} changes; absent stays.
struct CertificatePatch {
  std::optional<bool> enabled;
  std::optional<std::string> tags_json;
};

// CertificateService implements the Key Vault certificates operations
// (docs/certificates.md) on top of a Store. A certificate version is three
// objects of one name and version id, written in one transaction: the
// certificate (its DER, the policy it was made under, its creation
// operation), the key that holds its private key (KeyService's sealed
// form) and the secret that holds key and chain as the policy's content
// type asks (a password-less PFX in base64, or PEM). The key and the secret
// are the certificate's (Store, "Owned objects"): read through the keys and
// secrets APIs with `managed: true`, changed only with the certificate.
//
// Creation with the Self issuer, or an issuer of the Coffer provider
// (CertificateIssuers), signs at once, so the operation a create returns is
// already "completed". With the Unknown issuer it stays "inProgress": the
// operation holds the request (CSR) and the new private key, sealed, in a
// document of its own (VaultDocumentKey) until a merge brings the signed
// certificate, a cancel stops it or a delete drops it; the certificate's
// versions are untouched meanwhile. The version id is chosen when the
// operation starts, so two merges cannot both succeed. The current policy
// is kept in the certificate's policy slot (Store::UpdateObjectPolicy),
// written after each version a create or import makes.
//
// Authorization is the caller's job. Errors carry Key Vault's codes as
// reasons ("CertificateNotFound", "BadParameter", "Conflict", "Forbidden").
//
// SECURITY: private keys exist in memory only while a version is made or
// imported, in buffers that wipe themselves; nothing here logs or returns
// them.
//
// Thread-safe. The referenced objects must outlive it.
class CertificateService {
 public:
  using Vault = std::shared_ptr<const OpenVault>;

  CertificateService(storage::Store& store, const Envelope& envelope, const Clock& clock,
                     SecretService& secrets, KeyService& keys, CertificateIssuers& issuers);

  // Makes a new version under the request's policy (or the current one), or
  // for the Unknown issuer starts an operation that a merge completes.
  // kInvalidArgument for a policy it cannot take or an issuer that cannot
  // sign it; kFailedPrecondition ("Conflict") while an operation of the
  // certificate is in progress.
  StatusOr<CertificateOperation> Create(const Vault& vault, const std::string& name,
                                        const CertificateCreateInput& input);
  // The operation in progress, or else the one that made the latest
  // version. kNotFound ("PendingCertificateNotFound") when there is none.
  StatusOr<CertificateOperation> GetOperation(const Vault& vault, const std::string& name);
  // Cancels the operation in progress (it becomes "cancelled"; a merge is
  // then refused). A finished operation is returned as it is.
  StatusOr<CertificateOperation> CancelOperation(const Vault& vault, const std::string& name);
  // Drops the operation (the one in progress: its key is forgotten and no
  // version is made; else the record of the latest version's) and returns
  // it.
  StatusOr<CertificateOperation> DeleteOperation(const Vault& vault, const std::string& name);
  // Completes the operation in progress with the signed certificate and its
  // chain: the certificate must carry the operation's public key.
  // kNotFound when no operation is in progress; kFailedPrecondition
  // ("Conflict") when it was cancelled or merged meanwhile.
  StatusOr<Certificate> Merge(const Vault& vault, const std::string& name,
                              const CertificateMergeInput& input);
  // Imports a key and its chain (reference azure-sdk-compat.md §4.4 for how
  // the value's format is told).
  StatusOr<Certificate> Import(const Vault& vault, const std::string& name,
                               const CertificateImportInput& input);
  // `version` empty means the latest; the latest also carries the policy,
  // and says whether an operation is in progress. A certificate whose first
  // version waits for a merge reads as that version-to-be (no `cer`).
  StatusOr<Certificate> Get(const Vault& vault, const std::string& name,
                            const std::string& version);
  StatusOr<Certificate> Update(const Vault& vault, const std::string& name,
                               const std::string& version, const CertificatePatch& patch);
  StatusOr<CertificateList> List(const Vault& vault, const std::string& cursor, int limit);
  StatusOr<CertificateList> ListVersions(const Vault& vault, const std::string& name,
                                         const std::string& cursor, int limit);
  StatusOr<Certificate> Delete(const Vault& vault, const std::string& name);
  StatusOr<Certificate> GetDeleted(const Vault& vault, const std::string& name);
  StatusOr<CertificateList> ListDeleted(const Vault& vault, const std::string& cursor, int limit);
  StatusOr<Certificate> Recover(const Vault& vault, const std::string& name);
  // kPermissionDenied while purge protection holds the certificate.
  Status Purge(const Vault& vault, const std::string& name);

  // Backup returns an encrypted, authenticated blob of every version of the
  // certificate with its key's and secret's versions and its policy, which
  // only this installation opens (as for keys and secrets).
  StatusOr<std::string> Backup(const Vault& vault, const std::string& name);
  // Restore recreates the certificate, its key and its secret from such a
  // blob, in one transaction. kAlreadyExists ("Conflict") when the name
  // is taken by a certificate, key or secret, live or soft-deleted.
  StatusOr<Certificate> Restore(const Vault& vault, const std::string& blob);

  // RenewDue makes a new version, under the current policy, of every
  // certificate whose AutoRenew lifetime action is due for its latest
  // version (a percentage of the version's lifetime from its creation, or
  // days before its expiry); the scheduler calls it on the leader. Returns
  // how many it renewed; one that fails is logged and tried again next
  // time.
  StatusOr<int> RenewDue(VaultRegistry& registry);
  // How long before expiry each certificate whose policy has an
  // EmailContacts action is near expiry (CertificateNearExpiry), by
  // "<vault>/<name>" in lower case (ExpiryScheduler::NoticeLeads).
  StatusOr<std::map<std::string, int64_t>> NoticeLeads();

  StatusOr<CertificatePolicy> GetPolicy(const Vault& vault, const std::string& name);
  // Merges `patch` (snake_case policy JSON) into the current policy; the
  // next version is made under it.
  StatusOr<CertificatePolicy> UpdatePolicy(const Vault& vault, const std::string& name,
                                           const Json& patch);

 private:
  // What a certificate version stores in its record's key_json.
  struct Stored;
  // An operation in progress as its document stores it.
  struct Pending;
  StatusOr<std::optional<Pending>> ReadPending(const OpenVault& vault, const std::string& name);
  // Changes the operation document in one transaction: `change` gets the
  // operation and returns the document to store ("" drops it; an error
  // writes nothing). Returns the operation as `change` left it, or nullopt
  // when there is none.
  StatusOr<std::optional<CertificateOperation>> ChangePending(
      const OpenVault& vault, const std::string& name,
      const std::function<StatusOr<std::string>(Pending&)>& change);
  // Removes the operation document if it still holds `request_id` (any,
  // when empty).
  Status DropPending(const OpenVault& vault, const std::string& name,
                     const std::string& request_id);
  // Makes `policy` the certificate's current one (its policy slot).
  Status SetCurrentPolicy(const OpenVault& vault, const std::string& name,
                          const CertificatePolicy& policy);
  // Starts an Unknown-issuer operation.
  StatusOr<CertificateOperation> StartPending(const Vault& vault, const std::string& name,
                                              const crypto::AsymKey& key,
                                              const CertificatePolicy& policy,
                                              const crypto::CertificateProfile& profile,
                                              const CertificateCreateInput& input, bool exists);
  StatusOr<Certificate> FromView(const storage::SecretView& view, const OpenVault& vault) const;
  // Writes a version: the certificate `chain_der[0]` for `key`, its key
  // and its secret. Returns the certificate version.
  StatusOr<Certificate> Write(const Vault& vault, const std::string& name,
                              const crypto::AsymKey& key, const std::vector<std::string>& chain_der,
                              const CertificatePolicy& policy, const std::string& version,
                              const std::optional<CertificateOperation>& operation,
                              const std::string& tags_json, bool enabled);
  // The private key of the certificate's latest version when it fits
  // `policy` (reuse_key); null when there is none or it does not fit.
  StatusOr<std::unique_ptr<crypto::AsymKey>> LatestKey(const OpenVault& vault,
                                                       const std::string& name,
                                                       const CertificatePolicy& policy);
  // The policy of the certificate's latest version, or the one PATCH set.
  StatusOr<CertificatePolicy> CurrentPolicy(const OpenVault& vault, const std::string& name,
                                            const storage::SecretView& latest);
  StatusOr<CertificateList> ListPage(const Vault& vault, bool deleted, const std::string& cursor,
                                     int limit);
  void Forget(const OpenVault& vault, const std::string& name);

  storage::Store& store_;
  const Envelope& envelope_;
  const Clock& clock_;
  SecretService& secrets_;
  KeyService& keys_;
  CertificateIssuers& issuers_;
};

}  // namespace coffer::keyvault
