#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/status.h"
#include "storage/store.h"

namespace coffer::crypto {
class RsaKey;
}

namespace coffer::auth {

// UrlFetcher GETs a URL and returns the body of a 200 answer; an error
// status otherwise. It is the only way this layer reaches the network.
using UrlFetcher = std::function<StatusOr<std::string>(const std::string& url)>;

// FederatedTrust checks client assertions issued by external OIDC issuers
// (a Kubernetes service-account token, say) for user-assigned identities
// that hold a federated identity credential naming that issuer and subject
// (docs/identities.md):
// - the assertion is an RS256 JWT with a `kid`; its `iss` and `sub` match a
//   credential of the identity exactly, and its `aud` holds one of that
//   credential's audiences;
// - the signature verifies with the issuer's key of that `kid`, found
//   through `{iss}/.well-known/openid-configuration` and its `jwks_uri`
//   (only issuers some credential names are ever fetched, and only URLs
//   http::IsTrustworthyUrl accepts);
// - `exp` is in the future and `nbf`/`iat` not in the future (60 s skew).
// Like Entra, the same assertion may be presented again until it expires.
//
// Issuer keys are cached for ten minutes; an unknown `kid` refetches them,
// at most every 30 seconds per issuer. One fetch of an issuer runs at a time:
// callers that need the same issuer meanwhile wait for it and share its
// outcome. A failed fetch is remembered: the first is retried by the next
// caller (an issuer being fixed recovers at once), and after the second
// consecutive failure the issuer is not fetched again for 1 s, doubling with
// each failure up to 5 minutes; callers in between are refused without a
// fetch. Keys already cached stay usable until they expire.
//
// SECURITY: whatever went wrong with a fetch (unreachable, timed out, a
// non-200 answer, not JSON, no usable jwks_uri, not a JWKS, an issuer that
// is not a trustworthy URL), the caller gets one and the same message; the
// detail goes to the log only. Otherwise the answer would tell whoever can
// create a federated credential what any host the server can reach answers.
//
// Thread-safe.
class FederatedTrust {
 public:
  FederatedTrust(storage::Store& store, const Clock& clock, UrlFetcher fetch);
  ~FederatedTrust();

  // Authenticate returns `identity` when `assertion` passes every check;
  // kUnauthenticated with the failed check otherwise (never the token).
  StatusOr<storage::PrincipalRecord> Authenticate(const storage::PrincipalRecord& identity,
                                                  std::string_view assertion);

  // waiting is the number of callers now waiting for another caller's fetch
  // of the same issuer (for tests and diagnostics).
  size_t waiting() const;

 private:
  struct IssuerKeys {
    std::map<std::string, std::shared_ptr<const crypto::RsaKey>> keys;  // by kid
  };
  // What is known of one issuer. GUARDED_BY(mu_).
  struct IssuerState {
    std::map<std::string, std::shared_ptr<const crypto::RsaKey>> keys;  // by kid
    int64_t fetched = 0;   // time of the last successful fetch; 0: none
    int failures = 0;      // consecutive failed fetches
    int64_t retry_at = 0;  // no fetch before this time (back-off)
    bool fetching = false;
    uint64_t attempts = 0;  // completed fetches, to tell waiters which one ended
    bool last_failed = false;
  };
  StatusOr<std::shared_ptr<const crypto::RsaKey>> KeyFor(const std::string& issuer,
                                                         const std::string& kid);
  // FetchKeys reads an issuer's keys; the error is the detail, for the log.
  StatusOr<IssuerKeys> FetchKeys(const std::string& issuer);
  void EvictIdleLocked();

  storage::Store& store_;
  const Clock& clock_;
  UrlFetcher fetch_;
  mutable std::mutex mu_;
  std::condition_variable fetched_;
  std::map<std::string, IssuerState> issuers_;  // GUARDED_BY(mu_)
  size_t waiting_ = 0;                          // GUARDED_BY(mu_)
};

}  // namespace coffer::auth
