#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "auth/directory.h"
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
//   GET  /{tenant}/discovery/v2.0/keys
//   POST /{tenant}/oauth2/v2.0/token   (client_credentials)
// Responses and errors follow Entra's shapes (docs/token-service.md).
//
// Thread-safe. The referenced objects must outlive it.
class TokenService {
 public:
  TokenService(TokenServiceConfig config, Directory& directory, const SigningKeySet& keys,
               const Clock& clock);

  // Handle answers a request on an authority host, or returns nullopt when
  // the path is not one of the token service's.
  std::optional<http::Response> Handle(const http::Request& request);

  // Issuers lists every issuer string this service puts in tokens.
  std::vector<std::string> Issuers() const;

  // IssueAppToken mints an access token for a principal (used by the token
  // endpoint; exposed for tests and benchmarks).
  std::string IssueAppToken(const storage::PrincipalRecord& principal, const std::string& resource,
                            const std::string& issuer) const;

 private:
  http::Response OpenIdConfiguration(const std::string& base) const;
  http::Response Token(const http::Request& request, const std::string& issuer);
  std::string IssuerFor(const std::string& host) const;

  const TokenServiceConfig config_;
  Directory& directory_;
  const SigningKeySet& keys_;
  const Clock& clock_;
};

}  // namespace coffer::auth
