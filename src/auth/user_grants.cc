#include "auth/user_grants.h"

#include <algorithm>

#include "auth/oauth.h"
#include "common/encoding.h"
#include "common/json.h"
#include "common/log.h"
#include "common/strings.h"
#include "crypto/primitives.h"
#include "http/client_address.h"

namespace coffer::auth {
namespace {

constexpr char kDeviceCodeGrant[] = "urn:ietf:params:oauth:grant-type:device_code";
constexpr char kRefreshPrefix[] = "crt1.";
constexpr size_t kMaxScopeBytes = 1024;
constexpr size_t kMaxScopeNames = 16;

bool IsOpenIdScope(std::string_view s) {
  return s == "openid" || s == "profile" || s == "offline_access" || s == "email";
}

// msal-node sends "device_code", MSAL Python the RFC 8628 URN; Entra takes
// either.
bool IsDeviceCodeGrant(const std::string& grant_type) {
  return grant_type == kDeviceCodeGrant || grant_type == "device_code";
}

http::Response NoStore(http::Response r) {
  r.SetHeader("Cache-Control", "no-store, no-cache");
  r.SetHeader("Pragma", "no-cache");
  return r;
}

}  // namespace

const std::vector<PublicClient>& BuiltInPublicClients() {
  static const std::vector<PublicClient> clients = {
      {"04b07795-8ddb-461a-bbee-02f9e1bf7b46", "Microsoft Azure CLI"},
  };
  return clients;
}

const PublicClient* FindPublicClient(const std::string& client_id) {
  for (const auto& c : BuiltInPublicClients()) {
    if (c.client_id == client_id) {
      return &c;
    }
  }
  return nullptr;
}

UserGrants::UserGrants(UserGrantsConfig config, const SigningKeySet& keys, Users& users,
                       DeviceFlows& flows, const Clock& clock, ResolveResource resolve, Seal seal,
                       Open open)
    : config_(std::move(config)),
      keys_(keys),
      users_(users),
      flows_(flows),
      clock_(clock),
      resolve_(std::move(resolve)),
      seal_(std::move(seal)),
      open_(std::move(open)),
      starts_(clock, FailureLimit{20, 3}, 16384) {}

bool UserGrants::IsUserGrant(const std::string& grant_type) {
  return IsDeviceCodeGrant(grant_type) || grant_type == "refresh_token";
}

std::variant<UserGrants::Scope, http::Response> UserGrants::ParseScope(
    const std::string& scope) const {
  int64_t now = clock_.NowSeconds();
  Scope out;
  // SECURITY: a scope is kept with a device flow; a few names of bounded
  // length are all any client sends.
  if (scope.size() > kMaxScopeBytes || Split(scope, ' ').size() > kMaxScopeNames) {
    return OAuthError(400, "invalid_scope", 70011,
                      "The provided value for the input parameter 'scope' is too long.", now);
  }
  for (std::string_view s : Split(scope, ' ')) {
    if (s.empty()) {
      continue;
    }
    if (IsOpenIdScope(s)) {
      out.openid = out.openid || s == "openid";
      out.offline = out.offline || s == "offline_access";
      continue;
    }
    // "<resource>/.default" or "<resource>/<permission>": the resource is
    // what comes before the last '/'.
    size_t slash = s.rfind('/');
    std::optional<std::string> resource;
    if (slash != std::string_view::npos && slash > 0 && slash + 1 < s.size()) {
      resource = resolve_(std::string(s.substr(0, slash)) + "/.default");
    }
    if (!resource) {
      return OAuthError(400, "invalid_scope", 70011,
                        "The provided value for the input parameter 'scope' is not valid. The "
                        "scope " +
                            std::string(s.substr(0, 200)) + " is not valid.",
                        now);
    }
    if (!out.resource.empty() && out.resource != *resource) {
      return OAuthError(400, "invalid_scope", 28000,
                        "Provided value for the input parameter scope is not valid because it "
                        "contains more than one resource.",
                        now);
    }
    out.resource = *resource;
    if (std::find(out.asked.begin(), out.asked.end(), s) == out.asked.end()) {
      out.asked.emplace_back(s);
    }
  }
  if (out.resource.empty()) {
    out.resource = config_.default_resource;
    out.asked.push_back(config_.default_resource + "/.default");
  }
  return out;
}

http::Response UserGrants::DeviceCode(const http::Request& request,
                                      const std::string& verification_uri) {
  int64_t now = clock_.NowSeconds();
  if (request.method != "POST") {
    return OAuthError(405, "invalid_request", 900561, "The endpoint only accepts POST requests.",
                      now);
  }
  auto form = ParseForm(request.body);
  if (!form.ok()) {
    return OAuthError(400, "invalid_request", 900144, "The request body is malformed.", now);
  }
  std::string client_id = FormField(*form, "client_id");
  if (client_id.empty()) {
    return OAuthError(400, "invalid_request", 900144,
                      "The request body must contain the following parameter: 'client_id'.", now);
  }
  const PublicClient* client = FindPublicClient(client_id);
  if (client == nullptr) {
    return OAuthError(400, "unauthorized_client", 700016,
                      "Application with identifier '" + client_id.substr(0, 64) +
                          "' was not found among the public clients of this directory.",
                      now);
  }
  std::string scope = FormField(*form, "scope");
  auto parsed = ParseScope(scope);
  if (auto* error = std::get_if<http::Response>(&parsed)) {
    return std::move(*error);
  }
  const Scope& s = std::get<Scope>(parsed);
  // Starts are limited per client address, so that no one address fills
  // the pending flows that everyone's sign-ins share.
  std::string address = http::ClientAddressKey(request.remote_address);
  if (int64_t wait = starts_.RetryAfter(address); wait > 0) {
    http::Response r = OAuthError(429, "temporarily_unavailable", 90033,
                                  "Too many device sign-ins were started from this address.", now);
    r.SetHeader("Retry-After", std::to_string(wait));
    return r;
  }
  starts_.RecordFailure(address);
  // What is kept is the scope as understood, not as sent.
  std::string kept;
  for (const auto& asked : s.asked) {
    kept += asked + " ";
  }
  kept += std::string(s.openid ? "openid " : "") + (s.offline ? "offline_access" : "");
  auto started = flows_.Start(client_id, s.resource, kept);
  if (!started.ok()) {
    if (started.status().code() == StatusCode::kResourceExhausted) {
      http::Response r = OAuthError(429, "temporarily_unavailable", 90033,
                                    std::string(started.status().message()), now);
      r.SetHeader("Retry-After", "60");
      return r;
    }
    return OAuthError(503, "temporarily_unavailable", 90033,
                      "The token service is temporarily unavailable.", now);
  }
  Json body = {{"device_code", started->device_code},
               {"user_code", started->user_code},
               {"verification_uri", verification_uri},
               {"expires_in", started->expires_in},
               {"interval", started->interval},
               {"message", "To sign in, use a web browser to open the page " + verification_uri +
                               " and enter the code " + started->user_code + " to authenticate."}};
  return NoStore(http::JsonResponse(200, ToJson(body)));
}

http::Response UserGrants::Token(const std::map<std::string, std::string>& form,
                                 const std::string& issuer) {
  if (FormField(form, "client_secret").size() + FormField(form, "client_assertion").size() > 0) {
    return OAuthError(401, "invalid_client", 700025,
                      "Client is public so neither 'client_assertion' nor 'client_secret' should "
                      "be presented.",
                      clock_.NowSeconds());
  }
  return IsDeviceCodeGrant(FormField(form, "grant_type")) ? DevicePoll(form, issuer)
                                                          : Refresh(form, issuer);
}

http::Response UserGrants::DevicePoll(const std::map<std::string, std::string>& form,
                                      const std::string& issuer) {
  int64_t now = clock_.NowSeconds();
  std::string client_id = FormField(form, "client_id");
  // MSAL Python sends the device code as `device_code` and as `code`.
  std::string device_code = FormField(form, "device_code");
  if (client_id.empty() || device_code.empty()) {
    return OAuthError(400, "invalid_request", 900144,
                      "The request body must contain the following parameters: 'client_id' and "
                      "'device_code'.",
                      now);
  }
  auto bad_code = [&] {
    return OAuthError(400, "bad_verification_code", 70018, "Invalid verification code was entered.",
                      now);
  };
  auto flow = flows_.Redeem(device_code, client_id);
  if (!flow.ok()) {
    if (flow.status().code() == StatusCode::kNotFound) {
      return bad_code();
    }
    return OAuthError(503, "temporarily_unavailable", 90033,
                      "The token service is temporarily unavailable.", now);
  }
  if (flow->expires <= now) {
    return OAuthError(400, "expired_token", 70019,
                      "Verification code expired. Sign in again to continue.", now);
  }
  switch (flow->state) {
    case DeviceFlow::State::kPending:
      // SECURITY/compatibility: never slow_down. msal-node treats it as a
      // failure, and a client keeping the interval deserves no penalty.
      return OAuthError(400, "authorization_pending", 70016,
                        "OAuth 2.0 device flow error. Authorization is pending. Continue "
                        "polling.",
                        now);
    case DeviceFlow::State::kDeclined:
      return OAuthError(400, "authorization_declined", 65004,
                        "User declined to consent to access the app.", now);
    case DeviceFlow::State::kRedeemed:
      return bad_code();
    case DeviceFlow::State::kApproved:
      break;
  }
  auto user = users_.Find(flow->object_id);
  if (!user.ok() && user.status().code() != StatusCode::kNotFound) {
    return OAuthError(503, "temporarily_unavailable", 90033,
                      "The token service is temporarily unavailable.", now);
  }
  if (!user.ok() || !user->account_enabled ||
      flow->sessions_valid_from != user->sessions_valid_from) {
    // Deleted, disabled or its password changed since it approved.
    return OAuthError(400, "invalid_grant", 50173,
                      "The provided grant has expired due to it being revoked; sign in again.",
                      now);
  }
  auto scope = ParseScope(flow->scope);
  if (auto* error = std::get_if<http::Response>(&scope)) {
    return std::move(*error);
  }
  return Issue(*user, client_id, std::get<Scope>(scope), flow->auth_time,
               FormField(form, "client_info") == "1", issuer);
}

http::Response UserGrants::Refresh(const std::map<std::string, std::string>& form,
                                   const std::string& issuer) {
  int64_t now = clock_.NowSeconds();
  std::string client_id = FormField(form, "client_id");
  std::string token = FormField(form, "refresh_token");
  if (client_id.empty() || token.empty()) {
    return OAuthError(400, "invalid_request", 900144,
                      "The request body must contain the following parameters: 'client_id' and "
                      "'refresh_token'.",
                      now);
  }
  auto invalid = [&](int code, const std::string& why) {
    COFFER_LOG(kInfo) << "token: refresh token refused for app " << client_id.substr(0, 64)
                      << ": AADSTS" << code;
    return OAuthError(400, "invalid_grant", code, why, now);
  };
  std::optional<Json> claims;
  if (StartsWith(token, kRefreshPrefix)) {
    auto sealed = Base64UrlDecode(std::string_view(token).substr(sizeof(kRefreshPrefix) - 1));
    if (sealed) {
      auto opened = open_(*sealed);
      if (opened.ok()) {
        claims = ParseJson(*opened);
      }
    }
  }
  if (!claims || !claims->is_object()) {
    return invalid(9002313, "Invalid request. The refresh token is malformed or not valid.");
  }
  if (StringMember(*claims, "client") != client_id) {
    return invalid(700005,
                   "Provided Authorization Code is intended to use against other tenant or "
                   "application.");
  }
  if (claims->value("expires", int64_t{0}) <= now) {
    return invalid(70008, "The provided authorization code or refresh token has expired.");
  }
  auto user = users_.Find(StringMember(*claims, "oid"));
  if (!user.ok()) {
    if (user.status().code() != StatusCode::kNotFound) {
      return OAuthError(503, "temporarily_unavailable", 90033,
                        "The token service is temporarily unavailable.", now);
    }
    return invalid(50173, "The provided grant has expired due to it being revoked.");
  }
  if (claims->value("svf", int64_t{-1}) != user->sessions_valid_from) {
    // SECURITY: a password change, reset, disable or revocation since the
    // token was issued ends it.
    return invalid(50173,
                   "The provided grant has expired due to it being revoked, a fresh auth token "
                   "is needed. The user might have changed or reset their password.");
  }
  if (!user->account_enabled) {
    return invalid(50057, "The user account is disabled.");
  }
  // A refresh token serves any resource of the installation (as Entra's
  // serve any the client was consented for).
  std::string scope = FormField(form, "scope");
  auto parsed = ParseScope(scope.empty() ? StringMember(*claims, "scope") : scope);
  if (auto* error = std::get_if<http::Response>(&parsed)) {
    return std::move(*error);
  }
  Scope s = std::get<Scope>(parsed);
  s.offline = true;  // a refresh keeps its refresh token
  return Issue(*user, client_id, s, claims->value("authTime", int64_t{0}),
               FormField(form, "client_info") == "1", issuer);
}

http::Response UserGrants::Issue(const storage::UserRecord& user, const std::string& client_id,
                                 const Scope& scope, int64_t auth_time, bool client_info,
                                 const std::string& issuer) {
  int64_t now = clock_.NowSeconds();
  Json access = {{"aud", scope.resource},
                 {"iss", issuer},
                 {"iat", now},
                 {"nbf", now},
                 {"exp", now + config_.token_lifetime_seconds},
                 {"acr", "1"},
                 {"amr", Json::array({"pwd"})},
                 {"appid", client_id},
                 {"appidacr", "0"},
                 {"azp", client_id},
                 {"azpacr", "0"},
                 {"idtyp", "user"},
                 {"name", user.display_name},
                 {"oid", user.object_id},
                 {"scp", "user_impersonation"},
                 {"sub", user.object_id},
                 {"tid", config_.tenant_id},
                 {"unique_name", user.user_principal_name},
                 {"upn", user.user_principal_name},
                 {"uti", Base64UrlEncode(crypto::RandomBytes(16))},
                 {"ver", "1.0"},
                 // Coffer's: the user's sessions_valid_from when issued. A
                 // password change, reset, disable or revocation changes it,
                 // which ends this token (Authenticator), even within a second.
                 {"xms_svf", user.sessions_valid_from}};
  if (!user.given_name.empty()) {
    access["given_name"] = user.given_name;
  }
  if (!user.surname.empty()) {
    access["family_name"] = user.surname;
  }
  std::string scopes = scope.resource + "/user_impersonation";
  for (const auto& asked : scope.asked) {
    if (asked != scopes) {
      scopes += " " + asked;
    }
  }
  Json body = {{"token_type", "Bearer"},
               {"scope", scopes},
               {"expires_in", config_.token_lifetime_seconds},
               {"ext_expires_in", config_.token_lifetime_seconds},
               {"access_token", keys_.Sign(access)}};
  if (scope.openid) {
    Json id = {{"aud", client_id},
               {"iss", issuer},
               {"iat", now},
               {"nbf", now},
               {"exp", now + config_.token_lifetime_seconds},
               {"auth_time", auth_time},
               {"name", user.display_name},
               {"oid", user.object_id},
               {"preferred_username", user.user_principal_name},
               {"sub", user.object_id},
               {"tid", config_.tenant_id},
               {"upn", user.user_principal_name},
               {"ver", "2.0"}};
    body["id_token"] = keys_.Sign(id);
  }
  if (scope.offline) {
    std::string asked;
    for (const auto& a : scope.asked) {
      asked += (asked.empty() ? "" : " ") + a;
    }
    Json sealed = {{"client", client_id},
                   {"oid", user.object_id},
                   {"authTime", auth_time},
                   {"svf", user.sessions_valid_from},
                   {"scope", asked + (scope.openid ? " openid" : "")},
                   {"expires", now + config_.refresh_lifetime_seconds}};
    body["refresh_token"] = kRefreshPrefix + Base64UrlEncode(seal_(ToJson(sealed)));
    body["refresh_token_expires_in"] = config_.refresh_lifetime_seconds;
  }
  if (client_info) {
    body["client_info"] =
        Base64UrlEncode(ToJson(Json{{"uid", user.object_id}, {"utid", config_.tenant_id}}));
  }
  return NoStore(http::JsonResponse(200, ToJson(body)));
}

}  // namespace coffer::auth
