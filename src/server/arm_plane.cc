#include "server/arm_plane.h"

#include "authz/arm_action.h"
#include "common/json.h"
#include "common/strings.h"

namespace coffer::server {
namespace {

std::vector<mgmt::ArmRoute> RoutesOf(const ArmPlane::Managers& m) {
  std::vector<mgmt::ArmRoute> out;
  for (auto routes : {m.vaults->Routes(), m.identities->Routes(), m.workloads->Routes(),
                      m.roles->Routes(), m.event_subscriptions->Routes(), m.tags->Routes()}) {
    out.insert(out.end(), routes.begin(), routes.end());
  }
  return out;
}

authz::Principal PrincipalOf(const Caller& c) {
  return {c.object_id, c.app_id, c.tenant_id};
}

}  // namespace

std::string ArmOperationName(std::string_view method, std::string_view action, bool collection) {
  auto is = [&](std::string_view a) { return EqualsIgnoreCase(action, a); };
  if (is("Microsoft.KeyVault/vaults/read")) {
    return collection ? "VaultList" : "VaultGet";
  }
  if (is("Microsoft.KeyVault/vaults/write")) {
    return method == "PATCH" ? "VaultPatch" : "VaultPut";
  }
  if (is("Microsoft.KeyVault/vaults/delete")) {
    return "VaultDelete";
  }
  if (is("Microsoft.KeyVault/vaults/accessPolicies/write")) {
    return "VaultPatch";
  }
  if (is("Microsoft.KeyVault/deletedVaults/read") ||
      is("Microsoft.KeyVault/locations/deletedVaults/read")) {
    return collection ? "VaultListDeleted" : "VaultGetDeleted";
  }
  if (is("Microsoft.KeyVault/locations/deletedVaults/purge/action")) {
    return "VaultPurge";
  }
  return std::string(action);
}

ArmPlane::ArmPlane(Config config, Authenticator& authenticator, const authz::Authorizer& authorizer,
                   Managers managers, ArmLimits* limits)
    : config_(std::move(config)),
      authenticator_(authenticator),
      authorizer_(authorizer),
      managers_(std::move(managers)),
      routes_(RoutesOf(managers_)),
      table_(http::RouteTable::EntriesOf(routes_), true),
      limits_(limits) {}

http::Response ArmPlane::InvalidToken(const Status& why) const {
  if (why.code() != StatusCode::kUnauthenticated) {
    return http::ErrorResponse(why);  // e.g. storage unavailable: 503, not 401
  }
  http::Response r = http::ErrorResponse(401, "InvalidAuthenticationToken", why.message());
  r.SetHeader("WWW-Authenticate", "Bearer authorization_uri=\"" + config_.authority_host + "/" +
                                      config_.tenant_id + "\", error=\"invalid_token\"");
  return r;
}

mgmt::LinkedCheck ArmPlane::LinkedFor(const Caller& caller, std::string action, std::string scope,
                                      bool* denied) const {
  return [this, caller, action = std::move(action), scope = std::move(scope), denied](
             std::string_view linked_action, std::string_view linked_scope) -> Status {
    auto d = authorizer_.CheckAction(PrincipalOf(caller), linked_action, linked_scope);
    if (d.allowed) {
      return OkStatus();
    }
    *denied = true;
    // Azure's words for a linked denial.
    return PermissionDeniedError(
        "The client '" + caller.object_id + "' with object id '" + caller.object_id +
            "' has permission to perform action '" + action + "' on scope '" + scope +
            "'; however, it does not have permission to perform action(s) '" +
            std::string(linked_action) + "' on the linked scope(s) '" +
            std::string(linked_scope.substr(0, 400)) +
            "' (respectively) or the linked scope(s) are invalid.",
        "LinkedAuthorizationFailed");
  };
}

void ArmPlane::FilterList(const authz::Principal& who, http::Response& response) const {
  auto body = ParseJson(response.body);
  if (response.status != 200 || !body || !body->is_object() || !body->contains("value") ||
      !(*body)["value"].is_array()) {
    return;
  }
  Json kept = Json::array();
  for (const auto& item : (*body)["value"]) {
    std::string id = item.is_object() ? StringMember(item, "id") : "";
    if (id.empty()) {
      continue;
    }
    http::Request probe;
    probe.method = "GET";
    if (!http::ParseTarget(id, probe).ok()) {
      continue;
    }
    auto op = authz::ArmOperationOf("GET", probe.segments);
    if (op && authorizer_.CheckAction(who, op->action, op->scope).allowed) {
      kept.push_back(item);
    }
  }
  (*body)["value"] = kept;
  response.body = ToJson(*body);
}

http::Response ArmPlane::Handle(const http::Request& request, AuditNote& note) const {
  note.operation = "Authentication";
  note.resource_id = "/subscriptions/" + config_.subscription_id;
  auto caller =
      authenticator_.Authenticate(request.Header("authorization"), config_.audiences, &note.denial);
  if (!caller.ok()) {
    return InvalidToken(caller.status());
  }
  note.caller = *caller;
  note.operation = "Unknown";
  // SECURITY: a request that names no route is answered here; no handler
  // runs without a route and its action.
  auto match = table_.Find(request.method, request.segments);
  if (match.status != 200) {
    return NoRouteResponse(match, request);
  }
  if (request.Query("api-version").empty()) {
    return http::ErrorResponse(
        400, "MissingApiVersionParameter",
        "The api-version query parameter (?api-version=) is required for all requests.");
  }
  // Only this installation's subscription exists.
  std::vector<std::string_view> path;
  for (const auto& s : request.segments) {
    if (!s.empty()) {
      path.push_back(s);
    }
  }
  if (path.size() >= 2 && EqualsIgnoreCase(path[0], "subscriptions") &&
      !EqualsIgnoreCase(path[1], config_.subscription_id)) {
    return http::ErrorResponse(
        404, "SubscriptionNotFound",
        "The subscription '" + std::string(path[1].substr(0, 64)) + "' could not be found.");
  }
  // Resource Manager's throttling comes before the provider sees the
  // request, and every answer after it says what is left.
  const ArmKind kind = ArmLimits::KindOf(request.method);
  std::optional<ArmLimits::Charge> charge;
  if (limits_ != nullptr) {
    charge = limits_->Take(caller->object_id, kind);
  }
  if (charge && charge->retry_after) {
    // Audited with its 429 under the operation it would have been.
    const mgmt::ArmRoute& route = routes_[match.index];
    if (!route.action.empty()) {
      note.operation = ArmOperationName(request.method, route.action, route.collection);
      if (auto op = authz::ArmOperationOf(request.method, request.segments)) {
        note.resource_id = op->scope;
        note.object_uri = op->scope;
      }
    }
    return ArmLimits::Throttled(kind, config_.subscription_id, *charge->retry_after);
  }
  http::Response r = Route(request, note, *caller, match);
  if (charge) {
    r.SetHeader(std::string(ArmLimits::HeaderOf(kind)), std::to_string(charge->remaining));
  }
  return r;
}

http::Response ArmPlane::Route(const http::Request& request, AuditNote& note, const Caller& caller,
                               const http::RouteTable::Match& match) const {
  const mgmt::ArmRoute& route = routes_[match.index];
  authz::Principal who = PrincipalOf(caller);
  bool filter = false;
  std::string scope = "/";
  if (!route.action.empty()) {
    auto op = authz::ArmOperationOf(request.method, request.segments);
    if (!op) {
      // A scope that is not below /subscriptions names no resource.
      return http::ErrorResponse(
          404, "NotFound", "No route for " + request.method + " " + request.target.substr(0, 200));
    }
    scope = op->scope;
    note.operation = ArmOperationName(request.method, route.action, route.collection);
    note.resource_id = scope;
    note.object_uri = scope;
    // The role a roleAssignments write or delete assigns or removes, for
    // delegation conditions ("" when none).
    std::string assigned = managers_.roles->AssignedRole(request, match.params);
    auto d = authorizer_.CheckAction(who, route.action, scope, assigned);
    note.rbac_authorized = d.allowed;
    if (d.allowed) {
      note.applied_assignment = d.applied;
    } else if (route.collection) {
      // As in Azure, listing a collection one cannot read whole shows the
      // items one can read.
      filter = true;
    } else {
      note.denial = DenialOf(d.reason);
      bool condition = d.reason == authz::Reason::kConditionNotMet;
      return http::ErrorResponse(
          403, "AuthorizationFailed",
          "The client '" + caller.object_id + "' with object id '" + caller.object_id +
              "' does not have authorization " +
              (condition ? "or an ABAC condition not fulfilled " : "") + "to perform action '" +
              std::string(route.action) + "' over scope '" + scope +
              "' or the scope is invalid. If access was recently granted, please refresh your "
              "credentials.");
    }
  } else {
    // Readable by every authenticated principal (the tenant's role
    // definitions).
    note.operation = "Microsoft.Authorization/roleDefinitions/read";
  }
  bool linked_denied = false;
  mgmt::LinkedCheck linked = LinkedFor(caller, std::string(route.action), scope, &linked_denied);
  http::Response r = route.handle(mgmt::ArmCall{request, match.params, who, linked});
  if (linked_denied && r.status == 403) {
    note.denial = Denial::kLinkedScope;
  }
  if (filter) {
    FilterList(who, r);
  }
  return r;
}

}  // namespace coffer::server
