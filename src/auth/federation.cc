#include "auth/federation.h"

#include <algorithm>
#include <iterator>
#include <optional>

#include "auth/jwt.h"
#include "common/encoding.h"
#include "common/json.h"
#include "common/log.h"
#include "crypto/rsa_key.h"
#include "http/message.h"

namespace coffer::auth {
namespace {

constexpr int64_t kSkew = 60;
constexpr int64_t kKeysTtl = 600;
constexpr int64_t kRefetchAfter = 30;
constexpr size_t kMaxKeys = 64;
constexpr int64_t kFirstBackoff = 1;
constexpr int64_t kMaxBackoff = 300;
constexpr size_t kMaxIssuers = 1024;

Status Deny(const std::string& why) {
  return UnauthenticatedError("Federated assertion failed validation: " + why + ".",
                              "invalid_client");
}

// Unobtainable is the one answer to every failed or backed-off fetch.
Status Unobtainable() {
  return Deny("the issuer's signing keys could not be obtained");
}

// Backoff is the wait after `failures` consecutive failed fetches: none
// after the first, then 1 s doubling up to kMaxBackoff.
int64_t Backoff(int failures) {
  if (failures < 2) {
    return 0;
  }
  int64_t wait = kFirstBackoff;
  for (int i = 2; i < failures && wait < kMaxBackoff; ++i) {
    wait *= 2;
  }
  return std::min(wait, kMaxBackoff);
}

}  // namespace

FederatedTrust::FederatedTrust(storage::Store& store, const Clock& clock, UrlFetcher fetch)
    : store_(store), clock_(clock), fetch_(std::move(fetch)) {}

FederatedTrust::~FederatedTrust() = default;

size_t FederatedTrust::waiting() const {
  std::lock_guard<std::mutex> lock(mu_);
  return waiting_;
}

StatusOr<FederatedTrust::IssuerKeys> FederatedTrust::FetchKeys(const std::string& issuer) {
  std::string base = issuer;
  while (!base.empty() && base.back() == '/') {
    base.pop_back();
  }
  std::string discovery_url = base + "/.well-known/openid-configuration";
  // SECURITY: only https, or http on loopback, is fetched (docs/identities.md).
  if (!http::IsTrustworthyUrl(discovery_url)) {
    return UnavailableError("the issuer is not an https URL");
  }
  auto discovery = fetch_(discovery_url);
  if (!discovery.ok()) {
    return UnavailableError("the OpenID configuration could not be fetched: " +
                            std::string(discovery.status().message()));
  }
  auto doc = ParseJson(*discovery, 8);
  std::string jwks_uri = doc ? StringMember(*doc, "jwks_uri") : "";
  if (jwks_uri.empty() || !http::IsTrustworthyUrl(jwks_uri)) {
    return UnavailableError("the OpenID configuration has no usable jwks_uri");
  }
  auto jwks_text = fetch_(jwks_uri);
  if (!jwks_text.ok()) {
    return UnavailableError("the keys could not be fetched from " + jwks_uri + ": " +
                            std::string(jwks_text.status().message()));
  }
  auto jwks = ParseJson(*jwks_text, 8);
  if (!jwks || !jwks->is_object() || !jwks->contains("keys") || !(*jwks)["keys"].is_array()) {
    return UnavailableError("the key set at " + jwks_uri + " is not a JWKS");
  }
  IssuerKeys out;
  for (const auto& k : (*jwks)["keys"]) {
    if (out.keys.size() >= kMaxKeys) {
      break;
    }
    std::string kid = StringMember(k, "kid");
    auto n = Base64UrlDecode(StringMember(k, "n"));
    auto e = Base64UrlDecode(StringMember(k, "e"));
    if (StringMember(k, "kty") != "RSA" || kid.empty() || !n || !e || n->empty() || e->empty()) {
      continue;  // other key types are not used for RS256
    }
    auto key = crypto::RsaKey::FromPublicComponents(*n, *e);
    if (key.ok() && (*key)->bits() >= 2048) {
      out.keys[kid] = std::shared_ptr<const crypto::RsaKey>(std::move(*key));
    }
  }
  return out;
}

void FederatedTrust::EvictIdleLocked() {
  // Issuers only enter through credentials, but credentials are cheap to
  // make: keep the map bounded, dropping what nobody is fetching.
  if (issuers_.size() < kMaxIssuers) {
    return;
  }
  for (auto it = issuers_.begin(); it != issuers_.end();) {
    it = it->second.fetching ? std::next(it) : issuers_.erase(it);
  }
}

StatusOr<std::shared_ptr<const crypto::RsaKey>> FederatedTrust::KeyFor(const std::string& issuer,
                                                                       const std::string& kid) {
  std::unique_lock<std::mutex> lock(mu_);
  if (issuers_.find(issuer) == issuers_.end()) {
    EvictIdleLocked();
  }
  std::optional<uint64_t> waited_for;
  for (;;) {
    IssuerState& st = issuers_[issuer];
    int64_t now = clock_.NowSeconds();
    auto key = st.keys.find(kid);
    if (key != st.keys.end() && now - st.fetched < kKeysTtl) {
      return key->second;
    }
    if (waited_for && st.attempts != *waited_for && st.last_failed) {
      return Unobtainable();  // the fetch this caller waited for failed
    }
    if (st.fetching) {
      // Single flight: share the fetch under way instead of starting another.
      waited_for = st.attempts;
      ++waiting_;
      fetched_.wait(lock, [&] { return !issuers_[issuer].fetching; });
      --waiting_;
      continue;
    }
    if (st.fetched != 0 && now - st.fetched < kRefetchAfter && !st.last_failed) {
      return Deny("the issuer has no key '" + kid.substr(0, 64) + "'");
    }
    if (now < st.retry_at) {
      return Unobtainable();  // backed off
    }
    st.fetching = true;
    break;
  }

  // Fetched without the lock: a slow issuer must not stall other issuers.
  lock.unlock();
  StatusOr<IssuerKeys> fetched = FetchKeys(issuer);
  lock.lock();
  IssuerState& st = issuers_[issuer];
  int64_t now = clock_.NowSeconds();
  st.fetching = false;
  ++st.attempts;
  st.last_failed = !fetched.ok();
  std::shared_ptr<const crypto::RsaKey> found;
  if (fetched.ok()) {
    st.keys = std::move(fetched->keys);
    st.fetched = now;
    st.failures = 0;
    st.retry_at = 0;
    if (auto key = st.keys.find(kid); key != st.keys.end()) {
      found = key->second;
    }
  } else {
    ++st.failures;
    st.retry_at = now + Backoff(st.failures);
    COFFER_LOG(kWarning) << "federation: issuer " << issuer << ": " << fetched.status().message()
                         << " (failure " << st.failures << "; "
                         << (st.retry_at == now ? std::string("retried on the next request")
                                                : "not fetched again for " +
                                                      std::to_string(st.retry_at - now) + " s")
                         << ")";
  }
  lock.unlock();
  fetched_.notify_all();
  if (!fetched.ok()) {
    return Unobtainable();
  }
  if (!found) {
    return Deny("the issuer has no key '" + kid.substr(0, 64) + "'");
  }
  return found;
}

StatusOr<storage::PrincipalRecord> FederatedTrust::Authenticate(
    const storage::PrincipalRecord& identity, std::string_view assertion) {
  auto jwt = ParseJwt(assertion);
  if (!jwt.ok()) {
    return Deny(std::string(jwt.status().message()));
  }
  // SECURITY: the algorithm is pinned before any key is looked at.
  if (StringMember(jwt->header, "alg") != "RS256") {
    return Deny("the algorithm must be RS256");
  }
  std::string kid = StringMember(jwt->header, "kid");
  if (kid.empty()) {
    return Deny("the assertion names no key (kid)");
  }
  std::string issuer = StringMember(jwt->claims, "iss");
  std::string subject = StringMember(jwt->claims, "sub");
  ASSIGN_OR_RETURN(auto credentials, store_.ListFederatedCredentials(identity.object_id));
  const storage::FederatedCredentialRecord* match = nullptr;
  for (const auto& c : credentials) {
    if (c.issuer == issuer && c.subject == subject && AudienceMatches(jwt->claims, c.audiences)) {
      match = &c;
      break;
    }
  }
  if (match == nullptr) {
    return Deny(
        "no federated identity credential of the identity matches the assertion's "
        "issuer, subject and audience");
  }
  ASSIGN_OR_RETURN(auto key, KeyFor(issuer, kid));
  if (!key->VerifyRs256(jwt->signing_input, jwt->signature)) {
    return Deny("the signature does not verify");
  }
  int64_t now = clock_.NowSeconds();
  auto exp = NumericDate(jwt->claims, "exp");
  if (!exp || *exp + kSkew <= now) {
    return Deny("the assertion is expired or has no exp");
  }
  auto nbf = NumericDate(jwt->claims, "nbf");
  auto iat = NumericDate(jwt->claims, "iat");
  if ((nbf && *nbf - kSkew > now) || (iat && *iat - kSkew > now)) {
    return Deny("the assertion is not yet valid");
  }
  return identity;
}

}  // namespace coffer::auth
