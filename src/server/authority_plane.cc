#include "server/authority_plane.h"

#include "common/strings.h"

namespace coffer::server {
AuthorityPlane::AuthorityPlane(Config config, Authenticator& authenticator,
                               std::function<bool(const std::string&)> is_admin,
                               std::vector<AuthorityRoute> routes)
    : config_(std::move(config)),
      authenticator_(authenticator),
      is_admin_(std::move(is_admin)),
      routes_(std::move(routes)),
      table_(http::RouteTable::EntriesOf(routes_), true) {}

http::Response AuthorityPlane::InvalidToken(const Status& why) const {
  if (why.code() != StatusCode::kUnauthenticated) {
    return http::ErrorResponse(why);  // e.g. storage unavailable: 503, not 401
  }
  // ARM and Graph answer a bad token with 401 InvalidAuthenticationToken.
  http::Response r = http::ErrorResponse(401, "InvalidAuthenticationToken", why.message());
  r.SetHeader("WWW-Authenticate", "Bearer authorization_uri=\"" + config_.authority_host + "/" +
                                      config_.tenant_id + "\", error=\"invalid_token\"");
  return r;
}

http::Response AuthorityPlane::Handle(http::Request& request, AuditNote& note) const {
  // SECURITY: a request that names no route is answered here; no handler
  // runs without a route and its access rule.
  auto match = table_.Find(request.method, request.segments);
  if (match.status != 200) {
    return NoRouteResponse(match, request);
  }
  const AuthorityRoute& route = routes_[match.index];
  using Access = AuthorityRoute::Access;
  std::optional<Caller> caller;
  bool directory = route.access == Access::kDirectory || route.access == Access::kDirectoryCaller;
  if (route.access == Access::kCaller || route.access == Access::kAdministrator || directory) {
    if (!directory) {
      note.operation = "Authentication";
      note.resource_id = "/subscriptions/" + config_.subscription_id;
    }
    const auto& audiences = directory ? config_.directory_audiences : config_.management_audiences;
    auto authenticated =
        authenticator_.Authenticate(request.Header("authorization"), audiences, &note.denial);
    if (!authenticated.ok()) {
      return InvalidToken(authenticated.status());
    }
    caller = std::move(*authenticated);
    note.caller = *caller;
    note.operation = std::string(route.operation);
    note.resource_id = "/subscriptions/" + config_.subscription_id;
    if (route.access != Access::kCaller && route.access != Access::kDirectoryCaller &&
        !is_admin_(caller->object_id)) {
      note.denial = Denial::kNotAdministrator;
      if (route.access == Access::kDirectory) {
        return http::ErrorResponse(403, "Authorization_RequestDenied",
                                   "Insufficient privileges to complete the operation. Caller: "
                                   "appid=" +
                                       caller->app_id + ";oid=" + caller->object_id + ".");
      }
      return http::ErrorResponse(PermissionDeniedError(
          "Only directory administrators may call the administration API. Caller: appid=" +
              caller->app_id + ";oid=" + caller->object_id + ".",
          "Forbidden"));
    }
  }
  http::Response response =
      route.handle(AuthorityCall{request, match.params, caller ? &*caller : nullptr, note});
  if (route.secret_query) {
    request.target = request.target.substr(0, request.target.find('?')) + "?(redacted)";
  }
  return response;
}

}  // namespace coffer::server
