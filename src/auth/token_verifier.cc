#include "auth/token_verifier.h"

#include <algorithm>

#include "common/encoding.h"
#include "common/json.h"
#include "common/strings.h"

namespace coffer::auth {
namespace {

constexpr size_t kMaxTokenBytes = 16 * 1024;

Status Reject(const std::string& why) {
  return UnauthenticatedError("the access token is invalid: " + why, "Unauthorized");
}

bool StringClaim(const Json& claims, const char* name, std::string& out) {
  auto it = claims.find(name);
  if (it == claims.end() || !it->is_string()) {
    return false;
  }
  out = it->get<std::string>();
  return true;
}

bool IntClaim(const Json& claims, const char* name, int64_t& out) {
  auto it = claims.find(name);
  if (it == claims.end() || !it->is_number_integer()) {
    return false;
  }
  out = it->get<int64_t>();
  return true;
}

}  // namespace

TokenVerifier::TokenVerifier(SigningKeySet& keys, const Clock& clock,
                             std::vector<std::string> issuers, std::string tenant_id,
                             int64_t skew_seconds)
    : keys_(keys),
      clock_(clock),
      issuers_(std::move(issuers)),
      tenant_id_(std::move(tenant_id)),
      skew_seconds_(skew_seconds) {}

StatusOr<VerifiedToken> TokenVerifier::Verify(std::string_view token,
                                              const std::vector<std::string>& audiences,
                                              TokenRejection* rejection) const {
  TokenRejection unused;
  TokenRejection& why = rejection != nullptr ? *rejection : unused;
  why = TokenRejection::kInvalid;
  if (token.empty() || token.size() > kMaxTokenBytes) {
    return Reject("malformed token");
  }
  auto parts = Split(token, '.');
  if (parts.size() != 3 || parts[0].empty() || parts[1].empty() || parts[2].empty()) {
    return Reject("malformed token");
  }
  auto header_text = Base64UrlDecode(parts[0]);
  auto payload_text = Base64UrlDecode(parts[1]);
  auto signature = Base64UrlDecode(parts[2]);
  if (!header_text || !payload_text || !signature) {
    return Reject("malformed token encoding");
  }
  auto header = ParseJson(*header_text, 4);
  if (!header || !header->is_object()) {
    return Reject("malformed token header");
  }
  std::string alg;
  std::string kid;
  // SECURITY: the algorithm is pinned; "none", HS256 (key confusion) and
  // anything else are refused before any key is touched.
  if (!StringClaim(*header, "alg", alg) || alg != "RS256") {
    return Reject("unsupported signing algorithm");
  }
  if (header->contains("crit")) {
    return Reject("unsupported critical header");
  }
  if (!StringClaim(*header, "kid", kid)) {
    return Reject("missing key id");
  }
  auto key = keys_.FindOrReload(kid);
  if (key == nullptr) {
    return Reject("unknown signing key");
  }
  std::string_view signing_input = token.substr(0, parts[0].size() + 1 + parts[1].size());
  if (!key->VerifyRs256(signing_input, *signature)) {
    return Reject("signature verification failed");
  }
  auto claims = ParseJson(*payload_text, 8);
  if (!claims || !claims->is_object()) {
    return Reject("malformed token payload");
  }
  VerifiedToken t;
  if (!StringClaim(*claims, "iss", t.issuer_) ||
      std::find(issuers_.begin(), issuers_.end(), t.issuer_) == issuers_.end()) {
    return Reject("issuer is not this token service");
  }
  if (!StringClaim(*claims, "aud", t.audience_) ||
      std::find(audiences.begin(), audiences.end(), t.audience_) == audiences.end()) {
    why = TokenRejection::kWrongAudience;
    return Reject("audience is not this resource");
  }
  if (!StringClaim(*claims, "tid", t.tenant_id_) || t.tenant_id_ != tenant_id_) {
    return Reject("tenant does not match");
  }
  if (!StringClaim(*claims, "oid", t.object_id_) || t.object_id_.empty()) {
    return Reject("missing object id");
  }
  StringClaim(*claims, "appid", t.app_id_);
  StringClaim(*claims, "idtyp", t.identity_type_);
  StringClaim(*claims, "xms_mirid", t.mi_resource_id_);
  StringClaim(*claims, "appidacr", t.app_id_acr_);
  StringClaim(*claims, "upn", t.upn_);
  StringClaim(*claims, "name", t.name_);
  if (claims->contains("iat")) {
    IntClaim(*claims, "iat", t.issued_at_);
  }
  if (claims->contains("xms_svf")) {
    IntClaim(*claims, "xms_svf", t.sessions_valid_from_);
  }
  int64_t now = clock_.NowSeconds();
  if (!IntClaim(*claims, "exp", t.expires_)) {
    return Reject("missing expiry");
  }
  if (now >= t.expires_ + skew_seconds_) {
    why = TokenRejection::kExpired;
    return Reject("token is expired");
  }
  int64_t nbf = 0;
  if (claims->contains("nbf") && (!IntClaim(*claims, "nbf", nbf) || now < nbf - skew_seconds_)) {
    why = IntClaim(*claims, "nbf", nbf) ? TokenRejection::kExpired : TokenRejection::kInvalid;
    return Reject("token is not yet valid");
  }
  return t;
}

}  // namespace coffer::auth
