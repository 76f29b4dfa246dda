#pragma once

// How the node agent reads from vaults: one credential, and one
// SecretClient, KeyClient and CertificateClient, per (vault, identity), and
// rounds that share reads between the mounts of a node (docs/agent.md,
// "Shared reads").

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/spc.h"
#include "coffer/certificate_client.h"
#include "coffer/credentials.h"
#include "coffer/key_client.h"
#include "coffer/secret_client.h"
#include "common/status.h"

namespace coffer::agent {

// MountIdentity is who one mount reads as (csi-driver.md §3.3).
struct MountIdentity {
  IdentityMode mode = IdentityMode::kVmManagedIdentity;
  std::string tenant_id;
  // The service principal's application id, the workload identity's client
  // id, or the user-assigned identity's client id ("" is the node's
  // system-assigned identity).
  std::string client_id;
  // SECURITY: the client secret or the service-account token; only its
  // SHA-256 leaves this struct (in CredentialKey).
  std::string proof;
  std::string token_file;  // workload identity from a file (standalone mounts)

  // Principal names the identity without its proof. Mounts of one principal
  // share reads, once their own proof has been accepted in the round.
  std::string Principal() const;
  // CredentialKey names the identity with (a hash of) its proof: one
  // credential, and so one token cache, per key.
  std::string CredentialKey() const;
  // Describe is for messages: the mode and the ids, never the proof.
  std::string Describe() const;
};

// IdentityOf maps the Azure provider's parameters to an identity.
// kUnimplemented for pod identity (NMI) and the AKS token proxy, which have no
// counterpart here; the message says what to use instead.
StatusOr<MountIdentity> IdentityOf(const AzureMountParameters& params);

struct VaultReaderOptions {
  SecretClientOptions client;
  CredentialOptions credential;
  // Credentials (and their token caches) kept for identities not used
  // lately; the least recently used beyond this are dropped.
  size_t max_identities = 1024;
};

class VaultReader;

// A ReadRound is one sweep of reads: a poll cycle, one push, or (for the CSI
// provider) the mounts that arrive within a short window. Within a round,
// each (vault, principal, object type, object, version) is read upstream
// once (a secret, a key and a certificate of one name are three objects),
// however
// many mounts ask, and concurrent askers wait for that one read (single
// flight). Authorization stays per identity: an identity's first read in a
// round goes upstream with its own token, and only when the vault accepted
// that token (the read succeeded, was refused as 403/404, or was throttled
// with a 429) does it share the round's other reads of its principal. When
// that first read found the vault failing (unreachable, 5xx, timed out),
// the identity's other reads of the round fail with it without going
// upstream. Thread-safe.
class ReadRound {
 public:
  ReadRound(VaultReader& reader, std::chrono::steady_clock::time_point started);

  StatusOr<KeyVaultSecret> GetSecret(const std::string& vault_url, const MountIdentity& identity,
                                     const std::string& name, const std::string& version);
  // ListVersions lists the versions' properties (no values).
  StatusOr<std::vector<SecretProperties>> ListVersions(const std::string& vault_url,
                                                       const MountIdentity& identity,
                                                       const std::string& name);
  // ListSecrets lists the properties (names, tags, enabled; no values) of
  // the vault's secrets, every page: what objectSelector entries choose
  // from. One listing per (vault, principal) per round.
  StatusOr<std::vector<SecretProperties>> ListSecrets(const std::string& vault_url,
                                                      const MountIdentity& identity);
  // GetKey reads a key's public JWK (GET /keys/{name}/{version}).
  StatusOr<KeyVaultKey> GetKey(const std::string& vault_url, const MountIdentity& identity,
                               const std::string& name, const std::string& version);
  // ListKeyVersions lists a key's versions' properties.
  StatusOr<std::vector<KeyProperties>> ListKeyVersions(const std::string& vault_url,
                                                       const MountIdentity& identity,
                                                       const std::string& name);
  // GetCertificate reads a certificate version, its DER without the key
  // (GET /certificates/{name}/{version}).
  StatusOr<KeyVaultCertificate> GetCertificate(const std::string& vault_url,
                                               const MountIdentity& identity,
                                               const std::string& name, const std::string& version);
  // ListCertificateVersions lists a certificate's versions' properties.
  StatusOr<std::vector<CertificateProperties>> ListCertificateVersions(
      const std::string& vault_url, const MountIdentity& identity, const std::string& name);

  std::chrono::steady_clock::time_point started() const { return started_; }

 private:
  template <typename T>
  using Flight = std::shared_future<StatusOr<T>>;

  // Proof waits for (or makes) the identity's first read of the round and
  // returns how it ended.
  Status Proof(const std::string& vault_url, const MountIdentity& identity,
               const std::function<Status()>& own_read);
  // Read makes or shares one read of the round: the identity's first read
  // goes upstream with its own token, the others share the principal's.
  template <typename T>
  StatusOr<T> Read(std::map<std::string, Flight<T>>& flights, const std::string& vault_url,
                   const MountIdentity& identity, const std::string& key,
                   const std::function<StatusOr<T>()>& read);
  template <typename T>
  StatusOr<T> Shared(std::map<std::string, Flight<T>>& flights, const std::string& key,
                     const std::function<StatusOr<T>()>& read);
  // Offer records an identity's own read for the others of its principal.
  template <typename T>
  void Offer(std::map<std::string, Flight<T>>& flights, const std::string& key,
             const StatusOr<T>& result);

  VaultReader& reader_;
  const std::chrono::steady_clock::time_point started_;
  std::mutex mu_;
  std::map<std::string, std::shared_future<Status>> proofs_;                   // GUARDED_BY(mu_)
  std::map<std::string, Flight<KeyVaultSecret>> secrets_;                      // GUARDED_BY(mu_)
  std::map<std::string, Flight<std::vector<SecretProperties>>> lists_;         // GUARDED_BY(mu_)
  std::map<std::string, Flight<std::vector<SecretProperties>>> secret_lists_;  // GUARDED_BY(mu_)
  std::map<std::string, Flight<KeyVaultKey>> keys_;                            // GUARDED_BY(mu_)
  std::map<std::string, Flight<std::vector<KeyProperties>>> key_lists_;        // GUARDED_BY(mu_)
  std::map<std::string, Flight<KeyVaultCertificate>> certificates_;            // GUARDED_BY(mu_)
  std::map<std::string, Flight<std::vector<CertificateProperties>>>
      certificate_lists_;  // GUARDED_BY(mu_)
};

// VaultReader owns the credentials and clients. Thread-safe.
class VaultReader {
 public:
  explicit VaultReader(VaultReaderOptions options);

  // Client returns the client of (vault, identity), creating its credential
  // and client on first use. kUnimplemented for modes IdentityOf refuses.
  StatusOr<std::shared_ptr<SecretClient>> Client(const std::string& vault_url,
                                                 const MountIdentity& identity);
  // KeyClientFor returns the key client of (vault, identity), which shares
  // the secret client's credential and so its tokens.
  StatusOr<std::shared_ptr<KeyClient>> KeyClientFor(const std::string& vault_url,
                                                    const MountIdentity& identity);
  // CertificateClientFor returns the certificate client of (vault,
  // identity), on the same credential.
  StatusOr<std::shared_ptr<CertificateClient>> CertificateClientFor(const std::string& vault_url,
                                                                    const MountIdentity& identity);

  // NewRound starts a round of its own (a poll cycle, a push).
  std::shared_ptr<ReadRound> NewRound();
  // SharedRound returns the current shared round, or a new one when it is
  // older than `max_age` (for CSI mounts, which arrive one by one).
  std::shared_ptr<ReadRound> SharedRound(std::chrono::milliseconds max_age);

  // Upstream reads made (GetSecret, GetKey, GetCertificate and list calls),
  // for metrics and tests.
  uint64_t upstream_reads() const { return upstream_reads_.load(); }
  // Observe records one upstream call's latency, for the metrics: the
  // object's type ("secret", "key" or "cert") and name; set before use.
  std::function<void(const std::string& type, const std::string& object, const Status& status,
                     double seconds)>
      observe;

 private:
  friend class ReadRound;
  // Upstream makes one read from the vault, counted and observed as an
  // object of `type` ("secret", "key", "cert") named `name`.
  template <typename T>
  StatusOr<T> Upstream(const char* type, const std::string& name,
                       const std::function<StatusOr<T>()>& read);
  void Observe(const std::string& type, const std::string& object, const Status& status,
               std::chrono::steady_clock::time_point start);

  struct Entry {
    std::shared_ptr<SecretClient> client;
    std::shared_ptr<KeyClient> keys;
    std::shared_ptr<CertificateClient> certificates;
    std::list<std::string>::iterator lru;
  };
  // Find returns the entry of (vault, identity), made on first use.
  StatusOr<Entry> Find(const std::string& vault_url, const MountIdentity& identity);
  const VaultReaderOptions options_;
  std::mutex mu_;
  std::map<std::string, Entry> clients_;  // GUARDED_BY(mu_): vault|credential key
  std::list<std::string> lru_;            // GUARDED_BY(mu_): most recent first
  std::shared_ptr<ReadRound> shared_;     // GUARDED_BY(mu_)
  std::atomic<uint64_t> upstream_reads_{0};
};

}  // namespace coffer::agent
