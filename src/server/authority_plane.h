#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.h"
#include "http/router.h"
#include "server/authenticator.h"
#include "server/pipeline.h"

namespace coffer::server {

// One request to the authority host, as a handler sees it.
struct AuthorityCall {
  const http::Request& request;
  const http::PathParams& params;
  // The authenticated caller; null on public routes.
  const Caller* caller;
  AuditNote& note;
};

// AuthorityRoute is one row of the authority host's route table: the token
// service, the managed-identity endpoint, the directory (Graph), Coffer's
// administration API and the management plane. `access` says what a caller
// must show before the handler runs:
//   kPublic         nothing: the endpoint authenticates in its own protocol
//                   (client credentials, the identity header) or serves
//                   public metadata
//   kCaller         a management-plane token; the handler decides what the
//                   caller may see
//   kAdministrator  a management-plane token of an administrator
//   kDirectory      a Graph (or management) token of an administrator
//   kDirectoryCaller  a Graph (or management) token of anyone; the handler
//                   decides
//   kManagement     handed to the management plane, which authenticates and
//                   authorizes each of its own routes
// A method of "*" takes every method: the endpoint answers the others in
// its protocol's words (OAuth's 405 at the token endpoint).
struct AuthorityRoute {
  enum class Access { kPublic, kCaller, kAdministrator, kDirectory, kDirectoryCaller, kManagement };
  std::string_view method;
  std::string_view pattern;
  Access access;
  // The audit operationName ("" when the route is not audited).
  std::string_view operation;
  std::function<http::Response(const AuthorityCall&)> handle;
  // SECURITY: the query carries a credential (a validation token); the
  // audit record's requestUri shows none of it.
  bool secret_query = false;
};

// AuthorityPlane serves the authority host (https://localhost:<port> in
// dev mode) from one route table (literals match ignoring case, as ARM's
// and Entra's paths do): match (404 / 405, nothing runs) -> authenticate
// and check `access` -> handle -> audit note.
//
// Thread-safe. The referenced objects must outlive it.
class AuthorityPlane {
 public:
  struct Config {
    std::string subscription_id;
    std::string authority_host;  // https://localhost:<port>
    std::string tenant_id;
    std::vector<std::string> management_audiences;
    std::vector<std::string> directory_audiences;
  };

  AuthorityPlane(Config config, Authenticator& authenticator,
                 std::function<bool(const std::string& object_id)> is_admin,
                 std::vector<AuthorityRoute> routes);
  AuthorityPlane(const AuthorityPlane&) = delete;
  AuthorityPlane& operator=(const AuthorityPlane&) = delete;

  http::Response Handle(http::Request& request, AuditNote& note) const;

  const std::vector<AuthorityRoute>& routes() const { return routes_; }

 private:
  // 401 InvalidAuthenticationToken (or the failure itself when it is not
  // the token's, e.g. storage unavailable).
  http::Response InvalidToken(const Status& why) const;

  const Config config_;
  Authenticator& authenticator_;
  const std::function<bool(const std::string&)> is_admin_;
  const std::vector<AuthorityRoute> routes_;
  const http::RouteTable table_;
};

}  // namespace coffer::server
