#pragma once

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
//   (only issuers some credential names are ever fetched);
// - `exp` is in the future and `nbf`/`iat` not in the future (60 s skew).
// Like Entra, the same assertion may be presented again until it expires.
//
// Issuer keys are cached for ten minutes; an unknown `kid` refetches them,
// at most every 30 seconds per issuer. Thread-safe.
class FederatedTrust {
 public:
  FederatedTrust(storage::Store& store, const Clock& clock, UrlFetcher fetch);
  ~FederatedTrust();

  // Authenticate returns `identity` when `assertion` passes every check;
  // kUnauthenticated with the failed check otherwise (never the token).
  StatusOr<storage::PrincipalRecord> Authenticate(const storage::PrincipalRecord& identity,
                                                  std::string_view assertion);

 private:
  struct IssuerKeys {
    std::map<std::string, std::shared_ptr<const crypto::RsaKey>> keys;  // by kid
    int64_t fetched = 0;
  };
  StatusOr<std::shared_ptr<const crypto::RsaKey>> KeyFor(const std::string& issuer,
                                                         const std::string& kid);
  StatusOr<IssuerKeys> FetchKeys(const std::string& issuer);

  storage::Store& store_;
  const Clock& clock_;
  UrlFetcher fetch_;
  std::mutex mu_;
  std::map<std::string, IssuerKeys> cache_;  // guarded by mu_
};

}  // namespace coffer::auth
