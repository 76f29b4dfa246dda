#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "auth/failure_limiter.h"
#include "common/clock.h"
#include "common/status.h"
#include "storage/store.h"

namespace coffer::auth {

struct ClientSecretInfo {
  std::string key_id;
  std::string hint;  // the first three characters
  int64_t created = 0;
  int64_t expires = 0;
};

struct NewClientSecret {
  ClientSecretInfo info;
  std::string secret;  // in the clear, this once
};

struct ClientCertificateInfo {
  std::string key_id;
  std::string thumbprint;  // SHA-1, upper-case hex (Entra's customKeyIdentifier)
  int64_t created = 0;
  int64_t not_before = 0;
  int64_t not_after = 0;
};

struct ServicePrincipalInfo {
  storage::PrincipalRecord principal;
  std::vector<ClientSecretInfo> secrets;
  std::vector<ClientCertificateInfo> certificates;
};

struct NewServicePrincipal {
  storage::PrincipalRecord principal;
  // The client secret in the clear. It exists only in this value: the store
  // keeps a keyed hash of it.
  std::string client_secret;
  std::string secret_key_id;
  int64_t secret_expires = 0;
};

struct DirectoryOptions {
  // The key of the hash under which client secrets are stored (32 bytes,
  // derived from the master key). Without it no secret can be added.
  std::string secret_hash_key;
  // Failed client-secret checks allowed per client id and per client address
  // (http::ClientAddressKey) before further failures are answered
  // kResourceExhausted (AuthenticateClientSecret).
  FailureLimit per_client_id{10, 6};
  FailureLimit per_address{30, 2};
  // Client ids and addresses each limiter holds at most.
  size_t max_limited_keys = 16384;
};

// Directory manages the principals of the tenant and checks their
// credentials. Thread-safe. `store` and `clock` must outlive it.
class Directory {
 public:
  Directory(storage::Store& store, const Clock& clock, std::string tenant_id,
            DirectoryOptions options);
  // Wipes the secret hash key.
  ~Directory();

  // CreateServicePrincipal registers a new app with a fresh client id, object
  // id and client secret valid for `secret_lifetime_days`.
  StatusOr<NewServicePrincipal> CreateServicePrincipal(const std::string& display_name,
                                                       int secret_lifetime_days);

  // AddClientSecret adds a new secret, made by the server, to an existing
  // principal. kNotFound if the principal does not exist,
  // kFailedPrecondition without a secret hash key.
  //
  // SECURITY: a secret of 30 random bytes cannot be guessed, so it is stored
  // as an HMAC-SHA256 under the secret hash key (iterations 0), which costs a
  // check almost nothing. A slow hash only defends secrets a person chose: a
  // secret supplied by a caller, should the API ever accept one, must be
  // stored as PBKDF2 (iterations > 0), as secrets of earlier releases are.
  StatusOr<NewClientSecret> AddClientSecret(const std::string& object_id, int lifetime_days);
  // RemoveClientSecret removes one secret. kNotFound if there is no such key.
  Status RemoveClientSecret(const std::string& object_id, const std::string& key_id);

  // AddClientCertificate registers a certificate (PEM, base64 DER or DER)
  // whose key may sign client assertions. kInvalidArgument for a malformed,
  // non-RSA or expired certificate; kAlreadyExists if already registered.
  StatusOr<ClientCertificateInfo> AddClientCertificate(const std::string& object_id,
                                                       const std::string& certificate);
  Status RemoveClientCertificate(const std::string& object_id, const std::string& key_id);

  // AuthenticateClientAssertion checks a client assertion (RFC 7523 JWT
  // bearer) for `app`, the principal of the requested client id (null when
  // there is none), signed with one of its registered certificates: RS256 with
  // `x5t` or PS256 with `x5t#S256`; `iss` and `sub` the client id; `aud`
  // one of `audiences` (the token endpoint); `exp` in the future, lifetime at
  // most one day; `jti` never seen before (replays are refused).
  // kUnauthenticated with a message for the OAuth error otherwise.
  StatusOr<storage::PrincipalRecord> AuthenticateClientAssertion(
      const storage::PrincipalRecord* app, const std::string& assertion,
      const std::vector<std::string>& audiences);

  StatusOr<std::vector<ServicePrincipalInfo>> ListServicePrincipals();
  // kNotFound if there is no such principal.
  StatusOr<ServicePrincipalInfo> GetServicePrincipal(const std::string& object_id);
  // DeleteServicePrincipal removes the principal and its credentials.
  // kNotFound if absent.
  Status DeleteServicePrincipal(const std::string& object_id);

  // AuthenticateClientSecret returns the principal whose app id is `app_id`
  // if `secret` matches one of its unexpired secrets. kUnauthenticated
  // otherwise, with the same message whether the app or the secret is wrong.
  //
  // Failures are limited per client id and per `client_address` (the
  // caller's; empty counts no address), DirectoryOptions. While either is
  // over its limit, a wrong secret gets kResourceExhausted instead and
  // *retry_after_seconds (if not null) says when to try again. The right
  // secret still succeeds then, so others' failures never lock a client out:
  // a secret with a keyed hash is still checked, as the check is cheap; only
  // a PBKDF2 secret of an earlier release is not tried (unless its check
  // succeeded within the last minutes and is cached), as that check is what
  // the limit protects.
  StatusOr<storage::PrincipalRecord> AuthenticateClientSecret(
      const std::string& app_id, const std::string& secret, const std::string& client_address = {},
      int64_t* retry_after_seconds = nullptr);

  // FindClientSecret returns the unexpired secret of the principal
  // `object_id` that `secret` is, with no limit and no cache (for the
  // server's own start-up). kUnauthenticated if none matches.
  StatusOr<ClientSecretInfo> FindClientSecret(const std::string& object_id,
                                              const std::string& secret);

  // FindPrincipal and FindPrincipalByAppId return the principal (of any
  // kind) with this object id or client id. kNotFound if there is none.
  StatusOr<storage::PrincipalRecord> FindPrincipal(const std::string& object_id) {
    return store_.GetPrincipal(object_id);
  }
  StatusOr<storage::PrincipalRecord> FindPrincipalByAppId(const std::string& app_id) {
    return store_.GetPrincipalByAppId(app_id);
  }
  // FindUser returns the user record of a principal of kind User.
  StatusOr<storage::UserRecord> FindUser(const std::string& object_id) {
    return store_.GetUser(object_id);
  }

  // Forget drops cached verifications for a principal (after deletion or a
  // credential change).
  void Forget(const std::string& object_id);
  // ForgetAll drops every cached verification.
  void ForgetAll();

  const std::string& tenant_id() const { return tenant_id_; }

 private:
  struct CacheEntry {
    storage::PrincipalRecord principal;
    int64_t valid_until;
  };
  struct InFlight {
    std::optional<StatusOr<storage::PrincipalRecord>> result;  // guarded by mu_
  };

  // MatchSecret returns the unexpired record `secret` matches, or null.
  // Without `allow_slow` only keyed hashes are tried, not PBKDF2.
  const storage::ClientSecretRecord* MatchSecret(
      const std::vector<storage::ClientSecretRecord>& records, const std::string& secret,
      int64_t now, bool allow_slow) const;
  StatusOr<storage::PrincipalRecord> VerifyClientSecret(const std::string& app_id,
                                                        const std::string& secret, int64_t now,
                                                        bool allow_slow, const Status& denied,
                                                        int64_t& secret_expires);

  storage::Store& store_;
  const Clock& clock_;
  const std::string tenant_id_;
  std::string secret_hash_key_;  // written only by the destructor
  FailureLimiter client_id_failures_;
  FailureLimiter address_failures_;
  std::mutex mu_;
  // SHA-256(app id, secret) -> a recent successful verification, so that the
  // slow hash runs once per credential every few minutes, not per token.
  std::map<std::string, CacheEntry> verified_;  // guarded by mu_
  std::condition_variable in_flight_cv_;
  std::map<std::string, std::shared_ptr<InFlight>> in_flight_;  // guarded by mu_
};

}  // namespace coffer::auth
