#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "auth/device_flows.h"
#include "auth/failure_limiter.h"
#include "auth/signing_keys.h"
#include "auth/users.h"
#include "common/clock.h"
#include "http/message.h"

namespace coffer::auth {

// A public client: an app that signs people in and holds no secret
// (docs/users.md, "Clients").
struct PublicClient {
  std::string client_id;
  std::string name;
};

// The public clients every installation knows: the Azure CLI's (which az,
// azure-identity's DeviceCodeCredential and InteractiveBrowserCredential
// use by default, and `coffer login`).
const std::vector<PublicClient>& BuiltInPublicClients();
const PublicClient* FindPublicClient(const std::string& client_id);

struct UserGrantsConfig {
  std::string tenant_id;
  int64_t token_lifetime_seconds = 3600;
  // A refresh token lasts this long after it was issued; each use issues
  // a new one (Entra's 90-day sliding window).
  int64_t refresh_lifetime_seconds = 90 * 86400;
  // The resource an access token is for when a client asks only for
  // OpenID scopes (Entra's: Graph).
  std::string default_resource = "https://graph.microsoft.com";
};

// UserGrants issues tokens to people (docs/users.md, "Signing in"):
//   POST /{tenant}/oauth2/v2.0/devicecode         a device flow starts
//   grant_type=urn:ietf:params:oauth:grant-type:device_code   its poll
//   grant_type=refresh_token
// Tokens for users carry Entra's v1 user claims (`idtyp` user, `upn`,
// `name`, `scp`, `appidacr` 0); an `id_token` when `openid` was asked, a
// refresh token when `offline_access` was.
//
// Refresh tokens are sealed, not stored: AES-GCM under a key derived from
// the master key (`seal`/`open`), holding the client, the user, the sign-in
// time and the user's sessions_valid_from, so any server of the
// installation takes them and a password change ends them all.
//
// Thread-safe. The referenced objects must outlive it.
class UserGrants {
 public:
  using Seal = std::function<std::string(const std::string& plaintext)>;
  using Open = std::function<StatusOr<std::string>(const std::string& sealed)>;
  // The audience a requested scope's resource names, or nullopt.
  using ResolveResource = std::function<std::optional<std::string>(std::string_view)>;

  UserGrants(UserGrantsConfig config, const SigningKeySet& keys, Users& users, DeviceFlows& flows,
             const Clock& clock, ResolveResource resolve, Seal seal, Open open);

  // The device authorization endpoint. `verification_uri` is the page the
  // user opens (https://<authority host>/devicelogin).
  http::Response DeviceCode(const http::Request& request, const std::string& verification_uri);
  // The user grants of the token endpoint (`form` is the parsed body,
  // `issuer` the request host's).
  http::Response Token(const std::map<std::string, std::string>& form, const std::string& issuer);
  static bool IsUserGrant(const std::string& grant_type);

  // Tokens for `user`, signed in at `auth_time` through `client_id`, for
  // `scope` (already checked by ParseScope).
  struct Scope {
    std::string resource;                  // the access token's audience
    std::vector<std::string> asked;        // resource scopes as asked
    bool openid = false, offline = false;  // id token, refresh token
  };
  // ParseScope reads a space-separated scope: at most one resource (as
  // "<resource>/.default" or "<resource>/<permission>") and OpenID scopes.
  // An error response (invalid_scope) when it is not one.
  std::variant<Scope, http::Response> ParseScope(const std::string& scope) const;
  http::Response Issue(const storage::UserRecord& user, const std::string& client_id,
                       const Scope& scope, int64_t auth_time, bool client_info,
                       const std::string& issuer);

 private:
  http::Response DevicePoll(const std::map<std::string, std::string>& form,
                            const std::string& issuer);
  http::Response Refresh(const std::map<std::string, std::string>& form, const std::string& issuer);

  const UserGrantsConfig config_;
  const SigningKeySet& keys_;
  Users& users_;
  DeviceFlows& flows_;
  const Clock& clock_;
  const ResolveResource resolve_;
  const Seal seal_;
  const Open open_;
  // Device flows started per client address (20 at once, one more every 3 s).
  FailureLimiter starts_;
};

}  // namespace coffer::auth
