#pragma once

#include <optional>
#include <string>

#include "http/message.h"
#include "http/router.h"
#include "server/authenticator.h"
#include "server/denial.h"

namespace coffer::server {

// What a request's audit record needs besides the request and the response,
// filled in by the plane that handles it.
struct AuditNote {
  std::string operation;  // operationName; "" means no record
  // A request that changes nothing whatever its method (a key's sign or
  // decrypt): audited as reads are, and no change is handed on.
  bool changes_nothing = false;
  std::string resource_id;  // the vault's (or ARM resource's) id
  std::string object_uri;   // properties.id
  std::optional<Caller> caller;
  std::optional<bool> rbac_authorized;
  std::optional<bool> access_policy_match;
  std::string applied_assignment;
  // Why the request was refused, when it was (metrics).
  Denial denial = Denial::kNone;
};

// NoRouteResponse answers a request its plane's table did not match, in
// the ARM error shape the authority host and the management plane share:
// 405 with Allow when the path has other methods, else 404.
inline http::Response NoRouteResponse(const http::RouteTable::Match& match,
                                      const http::Request& request) {
  if (match.status == 405) {
    http::Response r = http::ErrorResponse(
        405, "MethodNotAllowed",
        "Method " + request.method + " is not allowed; this path allows " + match.allowed + ".");
    r.SetHeader("Allow", match.allowed);
    return r;
  }
  return http::ErrorResponse(
      404, "NotFound", "No route for " + request.method + " " + request.target.substr(0, 200));
}

}  // namespace coffer::server
