#include "server/authenticator.h"

#include <algorithm>

#include "audit/record.h"
#include "common/strings.h"

namespace coffer::server {

std::string AuditClaims(const Caller& c) {
  std::vector<std::pair<std::string, std::string>> claims = {
      {"oid", c.object_id},
      {"http://schemas.microsoft.com/identity/claims/objectidentifier", c.object_id},
      {"appid", c.app_id},
      {"tid", c.tenant_id}};
  if (!c.app_id_acr.empty()) {
    claims.emplace_back("appidacr", c.app_id_acr);
  }
  if (!c.identity_type.empty()) {
    claims.emplace_back("idtyp", c.identity_type);
  }
  if (!c.mi_resource_id.empty()) {
    claims.emplace_back("xms_mirid", c.mi_resource_id);
  }
  if (!c.upn.empty()) {
    claims.emplace_back("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn", c.upn);
    claims.emplace_back("upn", c.upn);
  }
  std::string out;
  audit::AppendClaimsJson(out, claims);
  return out;
}
namespace {

constexpr size_t kMaxCachedTokens = 20000;

}  // namespace

Authenticator::Authenticator(const auth::TokenVerifier& verifier, storage::Store& store,
                             const Clock& clock)
    : verifier_(verifier), store_(store), clock_(clock) {}

StatusOr<Caller> Authenticator::Authenticate(std::string_view authorization,
                                             const std::vector<std::string>& audiences,
                                             Denial* denial) {
  Denial unused;
  Denial& why = denial != nullptr ? *denial : unused;
  constexpr std::string_view kBearer = "bearer ";
  if (authorization.size() <= kBearer.size() ||
      !EqualsIgnoreCase(authorization.substr(0, kBearer.size()), kBearer)) {
    why = Denial::kMissingToken;
    return UnauthenticatedError("AKV10000: Request is missing a Bearer or PoP token.",
                                "Unauthorized");
  }
  std::string_view token = TrimWhitespace(authorization.substr(kBearer.size()));
  int64_t now = clock_.NowSeconds();
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    auto it = cache_.find(token);
    if (it != cache_.end()) {
      if (it->second.expires > now &&
          std::find(audiences.begin(), audiences.end(), it->second.audience) != audiences.end()) {
        return it->second.caller;
      }
    }
  }
  const uint64_t forgets_before = forgets_.load();
  auth::TokenRejection rejection = auth::TokenRejection::kInvalid;
  auto checked = verifier_.Verify(token, audiences, &rejection);
  if (!checked.ok()) {
    why = rejection == auth::TokenRejection::kExpired         ? Denial::kExpiredToken
          : rejection == auth::TokenRejection::kWrongAudience ? Denial::kWrongAudience
                                                              : Denial::kInvalidToken;
    return checked.status();
  }
  auth::VerifiedToken verified = std::move(checked).value();
  // SECURITY: a token outlives nothing it names: a deleted principal's
  // tokens stop working even though their signatures still verify.
  auto principal = store_.GetPrincipal(verified.object_id());
  if (!principal.ok()) {
    if (principal.status().code() == StatusCode::kNotFound) {
      why = Denial::kUnknownPrincipal;
      return UnauthenticatedError("the access token's principal no longer exists", "Unauthorized");
    }
    return principal.status();
  }
  if (principal->kind == "User") {
    // SECURITY: a user's token ends with the user's session: disabling the
    // account, a password change or reset, or a revocation refuses every
    // token issued before it, on every server (the store says so).
    auto user = store_.GetUser(principal->object_id);
    if (!user.ok()) {
      if (user.status().code() == StatusCode::kNotFound) {
        why = Denial::kUnknownPrincipal;
        return UnauthenticatedError("the access token's principal no longer exists",
                                    "Unauthorized");
      }
      return user.status();
    }
    if (!user->account_enabled || verified.sessions_valid_from() != user->sessions_valid_from) {
      why = Denial::kSessionRevoked;
      return UnauthenticatedError(
          "the access token's session has ended: the user was disabled, changed their password "
          "or had their sessions revoked; sign in again",
          "Unauthorized");
    }
  }
  Caller caller{verified.object_id(),
                verified.app_id(),
                verified.tenant_id(),
                verified.identity_type(),
                verified.mi_resource_id(),
                verified.app_id_acr(),
                nullptr,
                verified.expires(),
                principal->kind == "User" ? verified.upn() : std::string(),
                principal->kind == "User" ? verified.name() : std::string()};
  caller.audit_claims = std::make_shared<const std::string>(AuditClaims(caller));
  std::lock_guard<std::shared_mutex> lock(mu_);
  if (forgets_.load() != forgets_before) {
    return caller;  // something was forgotten meanwhile: check again next time
  }
  if (cache_.size() >= kMaxCachedTokens) {
    cache_.clear();
  }
  // SECURITY: the key is the whole token, compared in full: a lookup can
  // only find the very token that was verified.
  cache_.insert_or_assign(std::string(token),
                          Entry{caller, verified.audience(), verified.expires()});
  return caller;
}

std::optional<Caller> Authenticator::TryCached(std::string_view authorization,
                                               const std::vector<std::string>& audiences) {
  constexpr std::string_view kBearer = "bearer ";
  if (authorization.size() <= kBearer.size() ||
      !EqualsIgnoreCase(authorization.substr(0, kBearer.size()), kBearer)) {
    return std::nullopt;
  }
  std::string_view token = TrimWhitespace(authorization.substr(kBearer.size()));
  int64_t now = clock_.NowSeconds();
  std::shared_lock<std::shared_mutex> lock(mu_);
  auto it = cache_.find(token);
  if (it == cache_.end() || it->second.expires <= now ||
      std::find(audiences.begin(), audiences.end(), it->second.audience) == audiences.end()) {
    return std::nullopt;
  }
  return it->second.caller;
}

void Authenticator::ForgetAll() {
  std::lock_guard<std::shared_mutex> lock(mu_);
  forgets_.fetch_add(1);
  cache_.clear();
}

void Authenticator::ForgetPrincipal(const std::string& object_id) {
  {
    std::lock_guard<std::shared_mutex> lock(mu_);
    forgets_.fetch_add(1);
    for (auto it = cache_.begin(); it != cache_.end();) {
      if (it->second.caller.object_id == object_id) {
        it = cache_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const auto& listener : forget_listeners_) {
    listener(object_id);
  }
}

void Authenticator::OnForgetPrincipal(std::function<void(const std::string&)> listener) {
  forget_listeners_.push_back(std::move(listener));
}

}  // namespace coffer::server
