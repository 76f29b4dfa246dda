#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/json.h"
#include "common/status.h"
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
// Creation with the Self issuer signs at once, so the operation a create
// returns is already "completed". Authorization is the caller's job. Errors
// carry Key Vault's codes as reasons ("CertificateNotFound",
// "BadParameter", "Conflict", "Forbidden").
//
// SECURITY: private keys exist in memory only while a version is made or
// imported, in buffers that wipe themselves; nothing here logs or returns
// them.
//
// Thread-safe. The referenced objects must outlive it.
class CertificateService {
 public:
  using Vault = std::shared_ptr<const OpenVault>;

  CertificateService(storage::Store& store, const Clock& clock, SecretService& secrets,
                     KeyService& keys);

  // Makes a new version under the request's policy (or the current one).
  // kInvalidArgument for a policy it cannot take, or an issuer other than
  // Self.
  StatusOr<CertificateOperation> Create(const Vault& vault, const std::string& name,
                                        const CertificateCreateInput& input);
  // The operation that made the latest version. kNotFound
  // ("CertificateOperationNotFound") when it was imported.
  StatusOr<CertificateOperation> GetOperation(const Vault& vault, const std::string& name);
  // Imports a key and its chain (reference azure-sdk-compat.md §4.4 for how
  // the value's format is told).
  StatusOr<Certificate> Import(const Vault& vault, const std::string& name,
                               const CertificateImportInput& input);
  // `version` empty means the latest; the latest also carries the policy.
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

  StatusOr<CertificatePolicy> GetPolicy(const Vault& vault, const std::string& name);
  // Merges `patch` (snake_case policy JSON) into the current policy; the
  // next version is made under it.
  StatusOr<CertificatePolicy> UpdatePolicy(const Vault& vault, const std::string& name,
                                           const Json& patch);

 private:
  // What a certificate version stores in its record's key_json.
  struct Stored;
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
  const Clock& clock_;
  SecretService& secrets_;
  KeyService& keys_;
};

}  // namespace coffer::keyvault
