#include "auth/token_service.h"

#include <algorithm>

#include "auth/oauth.h"
#include "auth/user_grants.h"
#include "common/encoding.h"
#include "common/json.h"
#include "common/log.h"
#include "common/strings.h"
#include "common/time_format.h"
#include "crypto/primitives.h"

namespace coffer::auth {
namespace {

constexpr std::string_view kAdfsAlias = "adfs";

}  // namespace

TokenService::TokenService(TokenServiceConfig config, Directory& directory,
                           const SigningKeySet& keys, const Clock& clock,
                           FederatedTrust* federation)
    : config_(std::move(config)),
      directory_(directory),
      keys_(keys),
      clock_(clock),
      federation_(federation) {}

bool TokenService::IsTokenRequest(const http::Request& request) {
  const auto& seg = request.segments;
  if (request.method != "POST" || seg.size() < 3 || seg.size() > 4 || seg[1] != "oauth2") {
    return false;
  }
  return seg.size() == 3 ? seg[2] == "token" : seg[2] == "v2.0" && seg[3] == "token";
}

std::optional<std::string> TokenService::Resource(std::string_view resource_or_scope) const {
  std::string resource(resource_or_scope);
  if (EndsWith(resource, "/.default")) {
    resource.resize(resource.size() - 9);
  }
  while (!resource.empty() && resource.back() == '/') {
    resource.pop_back();
  }
  if (std::find(config_.resources.begin(), config_.resources.end(), resource) ==
      config_.resources.end()) {
    return std::nullopt;
  }
  return resource;
}

std::string TokenService::IssuerFor(const std::string& host) const {
  return "https://" + host + "/" + config_.tenant_id + "/v2.0";
}

std::vector<std::string> TokenService::Issuers() const {
  std::vector<std::string> out;
  for (const auto& h : config_.authority_hosts) {
    out.push_back(IssuerFor(h));
  }
  return out;
}

std::string TokenService::HostFor(const http::Request& request) const {
  if (std::find(config_.authority_hosts.begin(), config_.authority_hosts.end(), request.host) ==
      config_.authority_hosts.end()) {
    return config_.authority_hosts.front();
  }
  return request.host;
}

std::string TokenService::BaseFor(const http::Request& request, const std::string& tenant) const {
  return "https://" + HostFor(request) + "/" + tenant;
}

http::Response TokenService::UnknownTenant(const std::string& tenant) const {
  return OAuthError(400, "invalid_request", 90002,
                    "Tenant '" + tenant.substr(0, 100) +
                        "' not found. Check to make sure you have the "
                        "correct tenant ID and are signing into the correct cloud.",
                    clock_.NowSeconds());
}

bool TokenService::IsTenant(const std::string& tenant) const {
  // Case matters: MSAL fetches /ADFS/v2.0/... for "ADFS", so only the lower
  // case alias is one the clients treat as ADFS.
  return tenant == config_.tenant_id || tenant == kAdfsAlias;
}

http::Response TokenService::Discovery(const http::Request& request, const std::string& tenant) {
  if (!IsTenant(tenant)) {
    return UnknownTenant(tenant);
  }
  // The document names the tenant's own endpoints under either name, so
  // that clients of the alias get the same issuer and token endpoint.
  return OpenIdConfiguration(BaseFor(request, config_.tenant_id));
}

http::Response TokenService::AdfsDiscovery(const http::Request& request,
                                           const std::string& tenant) {
  if (tenant != kAdfsAlias) {
    return UnknownTenant(tenant);
  }
  return OpenIdConfiguration(BaseFor(request, config_.tenant_id));
}

http::Response TokenService::Keys(const std::string& tenant) {
  if (!IsTenant(tenant)) {
    return UnknownTenant(tenant);
  }
  return http::JsonResponse(200, ToJson(keys_.Jwks()));
}

http::Response TokenService::TokenEndpoint(const http::Request& request,
                                           const std::string& tenant) {
  if (request.method != "POST") {
    return OAuthError(405, "invalid_request", 900561, "The endpoint only accepts POST requests.",
                      clock_.NowSeconds());
  }
  if (!IsTenant(tenant)) {
    return UnknownTenant(tenant);
  }
  return Token(request, IssuerFor(HostFor(request)));
}

http::Response TokenService::OpenIdConfiguration(const std::string& base) const {
  Json doc = {
      {"issuer", base + "/v2.0"},
      {"authorization_endpoint", base + "/oauth2/v2.0/authorize"},
      {"token_endpoint", base + "/oauth2/v2.0/token"},
      {"device_authorization_endpoint", base + "/oauth2/v2.0/devicecode"},
      {"jwks_uri", base + "/discovery/v2.0/keys"},
      {"token_endpoint_auth_methods_supported",
       Json::array({"client_secret_post", "private_key_jwt"})},
      {"response_types_supported", Json::array({"token"})},
      {"grant_types_supported",
       Json::array({"client_credentials", "urn:ietf:params:oauth:grant-type:device_code",
                    "refresh_token"})},
      {"subject_types_supported", Json::array({"pairwise"})},
      {"id_token_signing_alg_values_supported", Json::array({"RS256"})},
      {"scopes_supported", Json::array({"openid", "profile", "email", "offline_access"})},
      {"tenant_region_scope", nullptr},
      {"cloud_instance_name", "coffer"},
  };
  return http::JsonResponse(200, ToJson(doc));
}

http::Response TokenService::Token(const http::Request& request, const std::string& issuer) {
  int64_t now = clock_.NowSeconds();
  if (request.body.size() > kMaxRequestBytes) {
    return OAuthError(400, "invalid_request", 900144, "The request body is too large.", now);
  }
  auto form = ParseForm(request.body);
  if (!form.ok()) {
    return OAuthError(400, "invalid_request", 900144, "The request body is malformed.", now);
  }
  auto field = [&](const char* name) -> std::string {
    auto it = form->find(name);
    return it == form->end() ? std::string() : it->second;
  };
  // claims, client_info, x-client-* and client-request-id are accepted and
  // ignored, as clients send them unconditionally.
  std::string grant = field("grant_type");
  if (grant.empty()) {
    return OAuthError(400, "invalid_request", 900144,
                      "The request body must contain the following parameter: 'grant_type'.", now);
  }
  if (user_grants_ != nullptr && UserGrants::IsUserGrant(grant)) {
    return user_grants_->Token(*form, issuer);
  }
  if (grant != "client_credentials") {
    return OAuthError(400, "unsupported_grant_type", 70003,
                      "The app requested an unsupported grant type '" + grant + "'.", now);
  }
  std::string client_id = field("client_id");
  if (client_id.empty()) {
    return OAuthError(400, "invalid_request", 900144,
                      "The request body must contain the following parameter: 'client_id'.", now);
  }
  std::string_view scope;
  const std::string scopes = field("scope");
  for (std::string_view s : Split(scopes, ' ')) {
    if (EndsWith(s, "/.default")) {
      scope = s;
      break;
    }
  }
  if (scope.empty()) {
    return OAuthError(400, "invalid_scope", 1002012,
                      "The provided value for scope is not valid. Client credential flows must "
                      "have a scope value with /.default suffixed to the resource identifier.",
                      now);
  }
  std::optional<std::string> resource = Resource(scope);
  if (!resource) {
    return OAuthError(400, "invalid_resource", 500011,
                      "The resource principal named " +
                          std::string(scope.substr(0, scope.size() - 9)).substr(0, 200) +
                          " was not found in the tenant.",
                      now);
  }
  // The client proves itself with a certificate-signed assertion or a secret;
  // either way the token issued is the same.
  const std::string assertion(TrimWhitespace(field("client_assertion")));
  const std::string secret = field("client_secret");
  StatusOr<storage::PrincipalRecord> principal = InternalError("no credential was checked");
  int64_t retry_after = 0;
  int failure_code = 0;
  std::string failure;
  if (!assertion.empty()) {
    if (field("client_assertion_type") !=
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer") {
      return OAuthError(400, "invalid_request", 50027,
                        "client_assertion_type must be "
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
                        now);
    }
    // Clients sign for the token endpoint they call; accept any of the
    // authority's host names.
    std::vector<std::string> audiences;
    for (const auto& host : config_.authority_hosts) {
      for (const std::string& t : {config_.tenant_id, std::string(kAdfsAlias)}) {
        audiences.push_back("https://" + host + "/" + t + "/oauth2/v2.0/token");
      }
    }
    // A user-assigned identity presents its federated issuer's token; an
    // application signs with its own certificate.
    auto identity = directory_.FindPrincipalByAppId(client_id);
    if (!identity.ok() && identity.status().code() != StatusCode::kNotFound) {
      principal = identity.status();
    } else if (identity.ok() && identity->kind == "UserAssignedIdentity") {
      principal = federation_ != nullptr
                      ? federation_->Authenticate(*identity, assertion)
                      : StatusOr<storage::PrincipalRecord>(UnauthenticatedError(
                            "Federated credentials are not accepted by this server."));
      failure_code = 70021;
    } else {
      principal = directory_.AuthenticateClientAssertion(identity.ok() ? &*identity : nullptr,
                                                         assertion, audiences);
      failure_code = 700027;
    }
    failure = std::string(principal.status().message());
  } else if (!secret.empty()) {
    principal = directory_.AuthenticateClientSecret(client_id, secret, request.remote_address,
                                                    &retry_after);
    failure_code = 7000215;
    failure =
        "Invalid client secret provided. Ensure the secret being sent in the request is the "
        "client secret value, not the client secret ID, for a secret added to app '" +
        client_id + "'.";
  } else {
    return OAuthError(401, "invalid_client", 7000218,
                      "The request body must contain the following parameter: "
                      "'client_assertion' or 'client_secret'.",
                      now);
  }
  if (!principal.ok()) {
    if (principal.status().code() == StatusCode::kUnauthenticated) {
      COFFER_LOG(kInfo) << "token: client authentication failed for app " << client_id;
      return OAuthError(401, "invalid_client", failure_code, failure, now);
    }
    if (principal.status().code() == StatusCode::kResourceExhausted) {
      COFFER_LOG(kInfo) << "token: failed client secret checks limited for app " << client_id
                        << " from " << request.remote_address;
      // Entra's code for a credential locked after repeated failures; the
      // SDKs honour Retry-After on a 429.
      http::Response r = OAuthError(429, "invalid_client", 50053,
                                    "Too many requests with a wrong client secret for this "
                                    "application or from this address. Retry after " +
                                        std::to_string(retry_after) + " seconds.",
                                    now);
      r.SetHeader("Retry-After", std::to_string(retry_after));
      return r;
    }
    return OAuthError(503, "temporarily_unavailable", 90033,
                      "The token service is temporarily unavailable.", now);
  }
  Json body = {{"token_type", "Bearer"},
               {"expires_in", config_.token_lifetime_seconds},
               {"ext_expires_in", config_.token_lifetime_seconds},
               {"access_token", IssueAppToken(*principal, *resource, issuer)}};
  http::Response r = http::JsonResponse(200, ToJson(body));
  r.SetHeader("Cache-Control", "no-store, no-cache");
  r.SetHeader("Pragma", "no-cache");
  return r;
}

std::string TokenService::IssueAppToken(const storage::PrincipalRecord& principal,
                                        const std::string& resource,
                                        const std::string& issuer) const {
  int64_t now = clock_.NowSeconds();
  Json claims = {{"aud", resource},
                 {"iss", issuer},
                 {"iat", now},
                 {"nbf", now},
                 {"exp", now + config_.token_lifetime_seconds},
                 {"appid", principal.app_id},
                 {"appidacr", "1"},
                 {"azp", principal.app_id},
                 {"azpacr", "1"},
                 {"idtyp", "app"},
                 {"oid", principal.object_id},
                 {"sub", principal.object_id},
                 {"tid", config_.tenant_id},
                 {"uti", Base64UrlEncode(crypto::RandomBytes(16))},
                 {"ver", "1.0"}};
  if (principal.kind != "ServicePrincipal" && !principal.resource_id.empty()) {
    // Managed identities: Entra names the identity's (or, for a
    // system-assigned one, its workload's) resource, and signs the
    // credential as a certificate.
    claims["xms_mirid"] = principal.resource_id;
    claims["appidacr"] = "2";
    claims["azpacr"] = "2";
  }
  issued_.fetch_add(1, std::memory_order_relaxed);
  return keys_.Sign(claims);
}

}  // namespace coffer::auth
