#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "auth/token_verifier.h"
#include "common/clock.h"
#include "server/denial.h"
#include "storage/store.h"

namespace coffer::server {

// Caller is the authenticated principal of a request.
struct Caller {
  std::string object_id;
  std::string app_id;
  std::string tenant_id;
  std::string identity_type;
  std::string mi_resource_id;  // xms_mirid, for managed identities
  std::string app_id_acr;
  // The caller's identity.claim object for audit records, formatted once
  // per verified token.
  std::shared_ptr<const std::string> audit_claims;
  // When the token expires (its `exp`, Unix seconds).
  int64_t expires = 0;
  // A user's (identity_type "user"): the user principal name and name.
  std::string upn;
  std::string name;
};

// AuditClaims formats a caller's claims as audit records carry them:
// identity.claim.{oid, its URI form, appid, tid, appidacr, idtyp, xms_mirid,
// and a user's upn and its URI form}.
std::string AuditClaims(const Caller& caller);

// Authenticator turns an Authorization header into a Caller: a Bearer token
// verified by TokenVerifier, whose principal still exists (and, for a user,
// is enabled and has not ended the token's session since it was issued:
// a password change, reset or revocation). Successful
// verifications are cached, keyed by the whole token, until the token
// expires (bounded), so the RSA check and the principal lookup run once per
// token; a hit costs one hash of the token and one comparison.
//
// Errors are kUnauthenticated with a message for the 401 body, and then
// *denial (when given) says why in a word; other errors (storage) leave it.
// Thread-safe. The referenced objects must outlive it.
class Authenticator {
 public:
  Authenticator(const auth::TokenVerifier& verifier, storage::Store& store, const Clock& clock);

  StatusOr<Caller> Authenticate(std::string_view authorization,
                                const std::vector<std::string>& audiences,
                                Denial* denial = nullptr);

  // TryCached answers from the cache only, without blocking: the caller of a
  // token verified before, or nullopt.
  std::optional<Caller> TryCached(std::string_view authorization,
                                  const std::vector<std::string>& audiences);

  // ForgetPrincipal drops cached tokens of a deleted principal, then tells
  // the listeners.
  void ForgetPrincipal(const std::string& object_id);
  // OnForgetPrincipal adds a listener that ForgetPrincipal calls with the
  // object id, for what outlives a request (watch streams). Before serving
  // only; a listener must not block.
  void OnForgetPrincipal(std::function<void(const std::string& object_id)> listener);
  // ForgetAll drops every cached token (after a signing key is retired).
  void ForgetAll();

 private:
  struct Entry {
    Caller caller;
    std::string audience;
    int64_t expires;
  };
  const auth::TokenVerifier& verifier_;
  storage::Store& store_;
  const Clock& clock_;
  std::shared_mutex mu_;  // lookups share it; inserts and removals own it
  // Transparent hashing: lookups take the token as a string_view, uncopied.
  struct TokenHash {
    using is_transparent = void;
    size_t operator()(std::string_view token) const { return std::hash<std::string_view>()(token); }
  };
  std::unordered_map<std::string, Entry, TokenHash, std::equal_to<>> cache_;  // guarded by mu_
  std::vector<std::function<void(const std::string&)>> forget_listeners_;     // set before serving
  // Counts ForgetPrincipal and ForgetAll calls: a verification that began
  // before one is answered but not cached, so that it cannot put back what
  // was just forgotten (a revoked user's session). Changed under mu_.
  std::atomic<uint64_t> forgets_{0};
};

}  // namespace coffer::server
