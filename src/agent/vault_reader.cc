#include "agent/vault_reader.h"

#include <utility>

#include "common/encoding.h"
#include "common/strings.h"
#include "crypto/primitives.h"

namespace coffer::agent {
namespace {

std::string ModeName(IdentityMode mode) {
  switch (mode) {
    case IdentityMode::kServicePrincipal:
      return "service principal";
    case IdentityMode::kVmManagedIdentity:
      return "node managed identity";
    case IdentityMode::kWorkloadIdentity:
      return "workload identity";
    case IdentityMode::kPodIdentity:
      return "pod identity";
    case IdentityMode::kTokenProxy:
      return "token proxy";
  }
  return "identity";
}

// The vault looked at the token: the read succeeded, or was refused for
// what the identity may do rather than for who it is, or was throttled
// (Key Vault counts a request against its limits only once it is
// authenticated; a token it refuses is a 401).
bool TokenAccepted(const Status& s) {
  return s.ok() || s.code() == StatusCode::kPermissionDenied || s.code() == StatusCode::kNotFound ||
         s.code() == StatusCode::kResourceExhausted;
}

// The vault, or the way to it, failed: nothing was learnt of the token, and
// more reads now would only add to the load of a vault in trouble.
bool VaultFailed(const Status& s) {
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kDeadlineExceeded;
}

}  // namespace

std::string MountIdentity::Principal() const {
  switch (mode) {
    case IdentityMode::kVmManagedIdentity:
      return "mi|" + client_id;
    default:
      return "app|" + tenant_id + "|" + client_id;
  }
}

std::string MountIdentity::CredentialKey() const {
  std::string key = std::to_string(static_cast<int>(mode)) + "|" + tenant_id + "|" + client_id;
  if (!proof.empty()) {
    key += "|" + HexEncode(crypto::Sha256(proof));
  }
  if (!token_file.empty()) {
    key += "|file:" + token_file;
  }
  return key;
}

std::string MountIdentity::Describe() const {
  std::string out = ModeName(mode);
  if (mode == IdentityMode::kVmManagedIdentity) {
    return out + (client_id.empty() ? " (system-assigned)"
                                    : " (user-assigned, client id " + client_id + ")");
  }
  return out + " (tenant " + tenant_id + ", client id " + client_id + ")";
}

StatusOr<MountIdentity> IdentityOf(const AzureMountParameters& params) {
  MountIdentity id;
  id.mode = params.identity_mode;
  id.tenant_id = params.tenant_id;
  switch (params.identity_mode) {
    case IdentityMode::kVmManagedIdentity:
      id.client_id = params.user_assigned_identity_id;
      return id;
    case IdentityMode::kWorkloadIdentity:
      id.client_id = params.client_id;
      id.proof = params.workload_identity_token;
      id.token_file = params.workload_identity_token_file;
      return id;
    case IdentityMode::kServicePrincipal:
      id.client_id = params.sp_client_id;
      id.proof = params.sp_client_secret;
      return id;
    case IdentityMode::kPodIdentity:
      return UnimplementedError(
          "usePodIdentity (aad-pod-identity) is not supported: use workload identity (clientID "
          "and a service-account token) or useVMManagedIdentity");
    case IdentityMode::kTokenProxy:
      return UnimplementedError(
          "useAzureTokenProxy (AKS identity binding) is not supported: use workload identity "
          "(clientID and a service-account token)");
  }
  return InvalidArgumentError("unknown identity mode");
}

// ---- rounds ------------------------------------------------------------------------------

ReadRound::ReadRound(VaultReader& reader, std::chrono::steady_clock::time_point started)
    : reader_(reader), started_(started) {}

Status ReadRound::Proof(const std::string& vault_url, const MountIdentity& identity,
                        const std::function<Status()>& own_read) {
  std::string key = vault_url + "|" + identity.CredentialKey();
  std::promise<Status> promise;
  std::shared_future<Status> proof;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = proofs_.find(key);
    if (it != proofs_.end()) {
      proof = it->second;
    } else {
      proofs_.emplace(key, promise.get_future().share());
    }
  }
  if (proof.valid()) {
    return proof.get();
  }
  Status first = own_read();
  promise.set_value(first);
  return first;
}

template <typename T>
StatusOr<T> ReadRound::Shared(std::map<std::string, Flight<T>>& flights, const std::string& key,
                              const std::function<StatusOr<T>()>& read) {
  std::promise<StatusOr<T>> promise;
  Flight<T> flight;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = flights.find(key);
    if (it != flights.end()) {
      flight = it->second;
    } else {
      flights.emplace(key, promise.get_future().share());
    }
  }
  if (flight.valid()) {
    return flight.get();
  }
  StatusOr<T> result = read();
  promise.set_value(result);
  return result;
}

template <typename T>
void ReadRound::Offer(std::map<std::string, Flight<T>>& flights, const std::string& key,
                      const StatusOr<T>& result) {
  std::promise<StatusOr<T>> ready;
  ready.set_value(result);
  std::lock_guard<std::mutex> lock(mu_);
  flights.emplace(key, ready.get_future().share());  // keeps an earlier flight
}

template <typename T>
StatusOr<T> ReadRound::Read(std::map<std::string, Flight<T>>& flights, const std::string& vault_url,
                            const MountIdentity& identity, const std::string& key,
                            const std::function<StatusOr<T>()>& read) {
  std::optional<StatusOr<T>> own;
  Status proof = Proof(vault_url, identity, [&] {
    own = read();
    if (TokenAccepted(own->status())) {
      Offer<T>(flights, key, *own);
    }
    return own->status();
  });
  if (own.has_value()) {
    return *own;
  }
  if (TokenAccepted(proof)) {
    return Shared<T>(flights, key, read);
  }
  if (VaultFailed(proof)) {
    // The round's failure for every read of this identity: one read per
    // mount would multiply the load on a vault that is already failing.
    return proof;
  }
  return read();  // this identity's token was refused: nothing is shared
}

namespace {

// The key of one object's reads in a round. Each kind of object has maps of
// its own: a secret, a key and a certificate of one name are three objects.
std::string RoundKey(const std::string& vault_url, const MountIdentity& identity,
                     const std::string& name, const std::string& version) {
  return vault_url + "|" + identity.Principal() + "|" + AsciiLower(name) + "|" + version;
}

}  // namespace

template <typename T>
StatusOr<T> VaultReader::Upstream(const char* type, const std::string& name,
                                  const std::function<StatusOr<T>()>& read) {
  upstream_reads_.fetch_add(1);
  auto start = std::chrono::steady_clock::now();
  StatusOr<T> result = read();
  Observe(type, name, result.status(), start);
  return result;
}

StatusOr<KeyVaultSecret> ReadRound::GetSecret(const std::string& vault_url,
                                              const MountIdentity& identity,
                                              const std::string& name, const std::string& version) {
  ASSIGN_OR_RETURN(std::shared_ptr<SecretClient> client, reader_.Client(vault_url, identity));
  return Read<KeyVaultSecret>(
      secrets_, vault_url, identity, RoundKey(vault_url, identity, name, version), [&] {
        return reader_.Upstream<KeyVaultSecret>("secret", name,
                                                [&] { return client->GetSecret(name, version); });
      });
}

StatusOr<std::vector<SecretProperties>> ReadRound::ListVersions(const std::string& vault_url,
                                                                const MountIdentity& identity,
                                                                const std::string& name) {
  using List = std::vector<SecretProperties>;
  ASSIGN_OR_RETURN(std::shared_ptr<SecretClient> client, reader_.Client(vault_url, identity));
  return Read<List>(lists_, vault_url, identity, RoundKey(vault_url, identity, name, ""), [&] {
    return reader_.Upstream<List>("secret", name,
                                  [&] { return client->ListPropertiesOfSecretVersions(name); });
  });
}

StatusOr<std::vector<SecretProperties>> ReadRound::ListSecrets(const std::string& vault_url,
                                                               const MountIdentity& identity) {
  using List = std::vector<SecretProperties>;
  ASSIGN_OR_RETURN(std::shared_ptr<SecretClient> client, reader_.Client(vault_url, identity));
  return Read<List>(secret_lists_, vault_url, identity, RoundKey(vault_url, identity, "", ""), [&] {
    return reader_.Upstream<List>("secret", "", [&] { return client->ListPropertiesOfSecrets(); });
  });
}

StatusOr<KeyVaultKey> ReadRound::GetKey(const std::string& vault_url, const MountIdentity& identity,
                                        const std::string& name, const std::string& version) {
  ASSIGN_OR_RETURN(std::shared_ptr<KeyClient> client, reader_.KeyClientFor(vault_url, identity));
  return Read<KeyVaultKey>(keys_, vault_url, identity, RoundKey(vault_url, identity, name, version),
                           [&] {
                             return reader_.Upstream<KeyVaultKey>(
                                 "key", name, [&] { return client->GetKey(name, version); });
                           });
}

StatusOr<std::vector<KeyProperties>> ReadRound::ListKeyVersions(const std::string& vault_url,
                                                                const MountIdentity& identity,
                                                                const std::string& name) {
  using List = std::vector<KeyProperties>;
  ASSIGN_OR_RETURN(std::shared_ptr<KeyClient> client, reader_.KeyClientFor(vault_url, identity));
  return Read<List>(key_lists_, vault_url, identity, RoundKey(vault_url, identity, name, ""), [&] {
    return reader_.Upstream<List>("key", name,
                                  [&] { return client->ListPropertiesOfKeyVersions(name); });
  });
}

StatusOr<KeyVaultCertificate> ReadRound::GetCertificate(const std::string& vault_url,
                                                        const MountIdentity& identity,
                                                        const std::string& name,
                                                        const std::string& version) {
  ASSIGN_OR_RETURN(std::shared_ptr<CertificateClient> client,
                   reader_.CertificateClientFor(vault_url, identity));
  return Read<KeyVaultCertificate>(
      certificates_, vault_url, identity, RoundKey(vault_url, identity, name, version), [&] {
        return reader_.Upstream<KeyVaultCertificate>(
            "cert", name, [&] { return client->GetCertificate(name, version); });
      });
}

StatusOr<std::vector<CertificateProperties>> ReadRound::ListCertificateVersions(
    const std::string& vault_url, const MountIdentity& identity, const std::string& name) {
  using List = std::vector<CertificateProperties>;
  ASSIGN_OR_RETURN(std::shared_ptr<CertificateClient> client,
                   reader_.CertificateClientFor(vault_url, identity));
  return Read<List>(
      certificate_lists_, vault_url, identity, RoundKey(vault_url, identity, name, ""), [&] {
        return reader_.Upstream<List>(
            "cert", name, [&] { return client->ListPropertiesOfCertificateVersions(name); });
      });
}

// ---- reader ------------------------------------------------------------------------------

VaultReader::VaultReader(VaultReaderOptions options) : options_(std::move(options)) {}

StatusOr<VaultReader::Entry> VaultReader::Find(const std::string& vault_url,
                                               const MountIdentity& identity) {
  std::string key = vault_url + "|" + identity.CredentialKey();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = clients_.find(key);
  if (it != clients_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return it->second;
  }
  std::shared_ptr<TokenCredential> credential;
  switch (identity.mode) {
    case IdentityMode::kVmManagedIdentity:
      credential = std::make_shared<ManagedIdentityCredential>(
          identity.client_id.empty() ? ManagedIdentityId::System()
                                     : ManagedIdentityId::ClientId(identity.client_id),
          options_.credential);
      break;
    case IdentityMode::kWorkloadIdentity:
      if (!identity.token_file.empty()) {
        credential = std::make_shared<WorkloadIdentityCredential>(
            options_.credential, identity.tenant_id, identity.client_id, identity.token_file);
      } else {
        std::string token = identity.proof;
        credential = std::make_shared<ClientAssertionCredential>(
            identity.tenant_id, identity.client_id,
            [token]() -> StatusOr<std::string> { return token; }, options_.credential);
      }
      break;
    case IdentityMode::kServicePrincipal:
      credential = std::make_shared<ClientSecretCredential>(identity.tenant_id, identity.client_id,
                                                            identity.proof, options_.credential);
      break;
    default:
      return UnimplementedError(identity.Describe() + " is not supported");
  }
  auto client = std::make_shared<SecretClient>(vault_url, credential, options_.client);
  auto keys = std::make_shared<KeyClient>(vault_url, credential, options_.client);
  auto certificates =
      std::make_shared<CertificateClient>(vault_url, std::move(credential), options_.client);
  lru_.push_front(key);
  Entry entry{std::move(client), std::move(keys), std::move(certificates), lru_.begin()};
  clients_.emplace(key, entry);
  while (clients_.size() > options_.max_identities) {
    clients_.erase(lru_.back());
    lru_.pop_back();
  }
  return entry;
}

StatusOr<std::shared_ptr<SecretClient>> VaultReader::Client(const std::string& vault_url,
                                                            const MountIdentity& identity) {
  ASSIGN_OR_RETURN(Entry entry, Find(vault_url, identity));
  return entry.client;
}

StatusOr<std::shared_ptr<KeyClient>> VaultReader::KeyClientFor(const std::string& vault_url,
                                                               const MountIdentity& identity) {
  ASSIGN_OR_RETURN(Entry entry, Find(vault_url, identity));
  return entry.keys;
}

StatusOr<std::shared_ptr<CertificateClient>> VaultReader::CertificateClientFor(
    const std::string& vault_url, const MountIdentity& identity) {
  ASSIGN_OR_RETURN(Entry entry, Find(vault_url, identity));
  return entry.certificates;
}

std::shared_ptr<ReadRound> VaultReader::NewRound() {
  return std::make_shared<ReadRound>(*this, std::chrono::steady_clock::now());
}

std::shared_ptr<ReadRound> VaultReader::SharedRound(std::chrono::milliseconds max_age) {
  auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  if (shared_ == nullptr || now - shared_->started() > max_age) {
    shared_ = std::make_shared<ReadRound>(*this, now);
  }
  return shared_;
}

void VaultReader::Observe(const std::string& type, const std::string& object, const Status& status,
                          std::chrono::steady_clock::time_point start) {
  if (observe) {
    observe(type, object, status,
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
}

}  // namespace coffer::agent
