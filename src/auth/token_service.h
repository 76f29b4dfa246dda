#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "auth/directory.h"
#include "auth/federation.h"
#include "auth/signing_keys.h"
#include "common/clock.h"
#include "http/message.h"

namespace coffer::auth {

struct TokenServiceConfig {
  std::string tenant_id;
  // Host[:port] values under which the authority is reached, e.g.
  // "localhost:8443". The first is canonical. Issuers are built from these.
  std::vector<std::string> authority_hosts;
  // Resources tokens can be issued for (the audience, without "/.default").
  std::vector<std::string> resources;
  int64_t token_lifetime_seconds = 3600;
};

// TokenService is the Entra-shaped token authority of one tenant:
//   GET  /{tenant}/v2.0/.well-known/openid-configuration
//   GET  /adfs/.well-known/openid-configuration  (the same document)
//   GET  /{tenant}/discovery/v2.0/keys
//   POST /{tenant}/oauth2/v2.0/token   (client_credentials; a person's
//        grants, device_code and refresh_token, go to UserGrants)
// The tenant is the tenant's id or its alias "adfs" (lower case only): the
// authority https://<host>/adfs is one MSAL and the Azure SDKs treat as
// known to the developer, so they make no instance-discovery call to
// login.microsoftonline.com and need no setting in code to reach Coffer
// (docs/token-service.md). Tokens name the tenant's id whichever was used.
// Clients prove themselves with a client secret, a certificate-signed
// assertion, or (user-assigned identities) an assertion of a federated
// issuer. Responses and errors follow Entra's shapes
// (docs/token-service.md).
//
// Thread-safe. The referenced objects must outlive it.
class TokenService {
 public:
  // The largest token request body accepted. The transport refuses a larger
  // one before reading it (IsTokenRequest).
  static constexpr size_t kMaxRequestBytes = 64 * 1024;

  // IsTokenRequest is true for a POST to a token endpoint path,
  // /{tenant}/oauth2/v2.0/token or /{tenant}/oauth2/token, judged from the
  // request line alone so that the transport can cap its body early.
  static bool IsTokenRequest(const http::Request& request);

  // `federation` may be null: no federated credentials are then accepted.
  TokenService(TokenServiceConfig config, Directory& directory, const SigningKeySet& keys,
               const Clock& clock, FederatedTrust* federation = nullptr);

  // The routes of the authority host's table ({tenant} is the path's):
  // GET /{tenant}/v2.0/.well-known/openid-configuration,
  // GET /{tenant}/discovery/v2.0/keys, and /{tenant}/oauth2/v2.0/token (any
  // method: other than POST is OAuth's 405). An unknown tenant is AADSTS90002.
  http::Response Discovery(const http::Request& request, const std::string& tenant);
  // AdfsDiscovery answers GET /{tenant}/.well-known/openid-configuration,
  // the path ADFS authorities use: the tenant's document for "adfs", else
  // AADSTS90002 as for any unknown tenant.
  http::Response AdfsDiscovery(const http::Request& request, const std::string& tenant);
  http::Response Keys(const std::string& tenant);
  http::Response TokenEndpoint(const http::Request& request, const std::string& tenant);

  // SetUserGrants hands the token endpoint's user grants (device code,
  // refresh token) to `grants`. Before serving; null turns them off.
  void SetUserGrants(class UserGrants* grants) { user_grants_ = grants; }
  // The tenant's id or its alias "adfs".
  bool IsTenant(const std::string& tenant) const;
  // The canonical authority host, or the request's when it is one of the
  // authority's names.
  std::string HostFor(const http::Request& request) const;

  // Issuers lists every issuer string this service puts in tokens.
  std::vector<std::string> Issuers() const;

  // Resource turns a requested resource or scope ("<resource>/.default")
  // into the audience tokens are issued for; nullopt if it is not one of
  // the configured resources. Trailing slashes do not count, as in Entra:
  // "<resource>//.default" (what az sends for a resource id ending in '/')
  // is "<resource>/.default".
  std::optional<std::string> Resource(std::string_view resource_or_scope) const;
  // The issuer of tokens not tied to a request host (managed identities).
  std::string CanonicalIssuer() const { return IssuerFor(config_.authority_hosts.front()); }
  int64_t token_lifetime_seconds() const { return config_.token_lifetime_seconds; }

  // IssueAppToken mints an access token for a principal. A managed
  // identity's token also carries `xms_mirid`, its resource id.
  std::string IssueAppToken(const storage::PrincipalRecord& principal, const std::string& resource,
                            const std::string& issuer) const;
  // How many access tokens this service has issued (every grant, managed
  // identities included).
  uint64_t issued() const { return issued_.load(std::memory_order_relaxed); }

 private:
  http::Response OpenIdConfiguration(const std::string& base) const;
  // https://<the request's authority host, or the canonical one>/<tenant>
  std::string BaseFor(const http::Request& request, const std::string& tenant) const;
  http::Response UnknownTenant(const std::string& tenant) const;
  http::Response Token(const http::Request& request, const std::string& issuer);
  std::string IssuerFor(const std::string& host) const;

  const TokenServiceConfig config_;
  Directory& directory_;
  const SigningKeySet& keys_;
  const Clock& clock_;
  FederatedTrust* const federation_;
  class UserGrants* user_grants_ = nullptr;
  mutable std::atomic<uint64_t> issued_{0};
};

}  // namespace coffer::auth
