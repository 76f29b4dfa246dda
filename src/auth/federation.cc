#include "auth/federation.h"

#include <algorithm>

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

Status Deny(const std::string& why) {
  return UnauthenticatedError("Federated assertion failed validation: " + why + ".",
                              "invalid_client");
}

}  // namespace

FederatedTrust::FederatedTrust(storage::Store& store, const Clock& clock, UrlFetcher fetch)
    : store_(store), clock_(clock), fetch_(std::move(fetch)) {}

FederatedTrust::~FederatedTrust() = default;

StatusOr<FederatedTrust::IssuerKeys> FederatedTrust::FetchKeys(const std::string& issuer) {
  std::string base = issuer;
  while (!base.empty() && base.back() == '/') {
    base.pop_back();
  }
  std::string discovery_url = base + "/.well-known/openid-configuration";
  // SECURITY: only https, or http on loopback, is fetched (docs/identities.md).
  if (!http::IsTrustworthyUrl(discovery_url)) {
    return Deny("the issuer is not an https URL");
  }
  auto discovery = fetch_(discovery_url);
  if (!discovery.ok()) {
    return Deny("the issuer's OpenID configuration could not be fetched (" +
                std::string(discovery.status().message()) + ")");
  }
  auto doc = ParseJson(*discovery, 8);
  std::string jwks_uri = doc ? StringMember(*doc, "jwks_uri") : "";
  if (jwks_uri.empty() || !http::IsTrustworthyUrl(jwks_uri)) {
    return Deny("the issuer's OpenID configuration has no usable jwks_uri");
  }
  auto jwks_text = fetch_(jwks_uri);
  if (!jwks_text.ok()) {
    return Deny("the issuer's keys could not be fetched (" +
                std::string(jwks_text.status().message()) + ")");
  }
  auto jwks = ParseJson(*jwks_text, 8);
  if (!jwks || !jwks->is_object() || !jwks->contains("keys") || !(*jwks)["keys"].is_array()) {
    return Deny("the issuer's key set is not a JWKS");
  }
  IssuerKeys out;
  out.fetched = clock_.NowSeconds();
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

StatusOr<std::shared_ptr<const crypto::RsaKey>> FederatedTrust::KeyFor(const std::string& issuer,
                                                                       const std::string& kid) {
  int64_t now = clock_.NowSeconds();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(issuer);
    if (it != cache_.end()) {
      auto key = it->second.keys.find(kid);
      bool fresh = now - it->second.fetched < kKeysTtl;
      if (key != it->second.keys.end() && fresh) {
        return key->second;
      }
      if (now - it->second.fetched < kRefetchAfter) {
        return Deny("the issuer has no key '" + kid.substr(0, 64) + "'");
      }
    }
  }
  // Fetched without the lock: a slow issuer must not stall other issuers.
  auto fetched = FetchKeys(issuer);
  if (!fetched.ok()) {
    COFFER_LOG(kWarning) << "federation: " << fetched.status().message();
    return fetched.status();
  }
  std::shared_ptr<const crypto::RsaKey> found;
  if (auto key = fetched->keys.find(kid); key != fetched->keys.end()) {
    found = key->second;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    cache_[issuer] = std::move(*fetched);
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
