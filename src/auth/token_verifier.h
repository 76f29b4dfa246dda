#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "auth/signing_keys.h"
#include "common/clock.h"
#include "common/status.h"

namespace coffer::auth {

// VerifiedToken holds the claims of an access token whose signature, issuer,
// audience and lifetime were checked. Only TokenVerifier creates one.
class VerifiedToken {
 public:
  const std::string& issuer() const { return issuer_; }
  const std::string& audience() const { return audience_; }
  const std::string& tenant_id() const { return tenant_id_; }
  const std::string& object_id() const { return object_id_; }
  const std::string& app_id() const { return app_id_; }
  const std::string& identity_type() const { return identity_type_; }  // "app"
  // The managed identity's ARM resource id (xms_mirid); "" for others.
  const std::string& mi_resource_id() const { return mi_resource_id_; }
  const std::string& app_id_acr() const { return app_id_acr_; }  // appidacr
  int64_t expires() const { return expires_; }
  int64_t issued_at() const { return issued_at_; }  // iat; 0 if absent
  // A user's token: the user's sessions_valid_from when it was issued
  // (xms_svf, Coffer's claim); -1 if absent.
  int64_t sessions_valid_from() const { return sessions_valid_from_; }
  // A user's token: its user principal name and display name.
  const std::string& upn() const { return upn_; }
  const std::string& name() const { return name_; }

 private:
  friend class TokenVerifier;
  VerifiedToken() = default;
  std::string issuer_;
  std::string audience_;
  std::string tenant_id_;
  std::string object_id_;
  std::string app_id_;
  std::string identity_type_;
  std::string mi_resource_id_;
  std::string app_id_acr_;
  int64_t expires_ = 0;
  int64_t issued_at_ = 0;
  int64_t sessions_valid_from_ = -1;
  std::string upn_;
  std::string name_;
};

// Why Verify refused a token, in a word (the status message says it in
// full): for the server's count of denials by reason.
enum class TokenRejection {
  kInvalid,        // malformed, not signed by a key of the set, another issuer or tenant
  kWrongAudience,  // `aud` is none of the given audiences
  kExpired,        // past `exp`, or before `nbf`
};

// TokenVerifier checks Coffer-issued RS256 access tokens strictly:
// - exactly three base64url parts; header alg must be "RS256" (never "none"
//   or HMAC), `kid` must name a key of the set, no `crit`; a kid the set
//   does not hold makes it reload from the store first (another server may
//   have rotated), at most once a second (SigningKeySet::FindOrReload);
// - the signature verifies with that key;
// - `iss` is one of the accepted issuers, `aud` one of the given audiences,
//   `tid` the installation's tenant, `oid` present;
// - `exp` is required and in the future, `nbf` (if present) in the past,
//   both with `skew_seconds` of tolerance.
// Every failure is kUnauthenticated with a message that says which check
// failed (never the token itself), and sets *rejection when given.
//
// Thread-safe. `keys` and `clock` must outlive the verifier.
class TokenVerifier {
 public:
  TokenVerifier(SigningKeySet& keys, const Clock& clock, std::vector<std::string> issuers,
                std::string tenant_id, int64_t skew_seconds = 60);

  StatusOr<VerifiedToken> Verify(std::string_view token, const std::vector<std::string>& audiences,
                                 TokenRejection* rejection = nullptr) const;

 private:
  SigningKeySet& keys_;
  const Clock& clock_;
  const std::vector<std::string> issuers_;
  const std::string tenant_id_;
  const int64_t skew_seconds_;
};

}  // namespace coffer::auth
