#include "server/vault_plane.h"

#include <algorithm>
#include <cstdlib>

#include "common/json.h"
#include "common/log.h"
#include "common/strings.h"

namespace coffer::server {
namespace {

authz::Principal PrincipalOf(const Caller& c) {
  return {c.object_id, c.app_id, c.tenant_id};
}

// Key Vault's 403: code Forbidden, and an inner code naming the model.
http::Response Forbidden(const std::string& message, const char* inner) {
  http::Response r;
  r.status = 403;
  r.SetHeader("Content-Type", "application/json; charset=utf-8");
  r.body = ToJson(Json{
      {"error", {{"code", "Forbidden"}, {"message", message}, {"innererror", {{"code", inner}}}}}});
  return r;
}

}  // namespace

VaultPlane::VaultPlane(Config config, Authenticator& authenticator,
                       keyvault::VaultRegistry& registry, const authz::Authorizer& authorizer,
                       std::vector<keyvault::VaultOperation> operations, ServiceLimits* limits)
    : config_(std::move(config)),
      authenticator_(authenticator),
      registry_(registry),
      authorizer_(authorizer),
      routes_(std::move(operations)),
      limits_(limits) {
  for (const auto& op : routes_.operations()) {
    const authz::DataOperation* permission = authz::FindOperation(op.operation);
    std::vector<const authz::DataOperation*> alternatives;
    for (std::string_view name : op.alternatives) {
      alternatives.push_back(authz::FindOperation(name));
    }
    bool unknown = permission == nullptr || std::find(alternatives.begin(), alternatives.end(),
                                                      nullptr) != alternatives.end();
    if (unknown) {
      // Route tables are code: a route without a permission must never be
      // served (the route test fails on it first).
      COFFER_LOG(kError) << "vault route " << op.method << " " << op.pattern
                         << " names an unknown data operation";
      std::abort();
    }
    permissions_.push_back(permission);
    alternatives_.push_back(std::move(alternatives));
  }
}

http::Response VaultPlane::Challenge(const Status& why) const {
  http::Response r = http::ErrorResponse(why);
  r.status = 401;
  r.SetHeader("WWW-Authenticate", "Bearer authorization=\"" + config_.authority_host + "/" +
                                      config_.tenant_id + "\", resource=\"" +
                                      config_.vault_resource + "\"");
  return r;
}

std::optional<std::string> VaultPlane::CachedResourceId(const std::string& vault) const {
  if (auto open = registry_.TryGetCached(vault)) {
    return open->resource_id;
  }
  return std::nullopt;
}

std::string VaultPlane::ResourceId(const std::string& vault) const {
  if (auto id = CachedResourceId(vault)) {
    return *id;
  }
  auto open = registry_.Get(vault);
  if (open.ok()) {
    return (*open)->resource_id;
  }
  // No such vault: its name under the subscription.
  return "/subscriptions/" + config_.subscription_id + "/providers/Microsoft.KeyVault/vaults/" +
         AsciiLower(vault);
}

std::optional<http::Response> VaultPlane::Head(const std::string& vault,
                                               const http::Request& request,
                                               AuditNote& note) const {
  // Clients probe with an unauthenticated, bodiless request first; answer
  // it with the challenge before looking at path or body.
  if (!request.Header("authorization").empty()) {
    return std::nullopt;
  }
  // The audit record names the vault by its ARM id; when it is not in
  // memory, the worker looks it up (this thread must not block).
  auto resource_id = CachedResourceId(vault);
  if (!resource_id) {
    return std::nullopt;
  }
  note.operation = "Authentication";
  note.resource_id = *resource_id;
  note.denial = Denial::kMissingToken;
  return Challenge(
      UnauthenticatedError("AKV10000: Request is missing a Bearer or PoP token.", "Unauthorized"));
}

std::optional<http::Response> VaultPlane::Authorize(const Caller& caller,
                                                    const keyvault::OpenVault& vault,
                                                    const keyvault::VaultOperation& route,
                                                    const http::PathParams& params,
                                                    AuditNote& note) const {
  size_t index = static_cast<size_t>(&route - routes_.operations().data());
  const authz::DataOperation& op = *permissions_[index];
  std::string_view object = route.object_param.empty() ? "" : params.Get(route.object_param);
  authz::VaultContext ctx{vault.settings.rbac_authorization, &vault.settings.access_policies,
                          vault.resource_id};
  authz::Principal who_is = PrincipalOf(caller);
  authz::Decision d;
  if (route.anywhere_in_vault) {
    d = authorizer_.CheckDataInVault(who_is, ctx, op);
    for (const authz::DataOperation* alternative : alternatives_[index]) {
      if (d.allowed) {
        break;
      }
      auto other = authorizer_.CheckDataInVault(who_is, ctx, *alternative);
      if (other.allowed) {
        d = std::move(other);
      }
    }
  } else {
    d = authorizer_.CheckData(who_is, ctx, op, object);
  }
  bool rbac = vault.settings.rbac_authorization;
  note.rbac_authorized = rbac && d.allowed;
  note.access_policy_match = !rbac && d.allowed;
  if (d.allowed) {
    if (rbac) {
      note.applied_assignment = d.applied;
    }
    return std::nullopt;
  }
  note.denial = DenialOf(d.reason);
  std::string who =
      "appid=" + caller.app_id + ";oid=" + caller.object_id + ";iss=" + config_.issuer;
  const std::string& location = vault.record.location;
  if (d.model == authz::Model::kAccessPolicy) {
    // Key Vault's access-policy denial, word for word, plus the reason.
    return Forbidden("The user, group or application '" + who + "' does not have " +
                         std::string(authz::ObjectTypeName(op.type)) + " " +
                         std::string(op.permission) + " permission on key vault '" +
                         vault.record.name + ";location=" + location +
                         "'. Authorization model: access policies. DecisionReason: '" +
                         std::string(authz::ReasonName(d.reason)) + "'.",
                     "AccessDenied");
  }
  std::string resource = AsciiLower(vault.resource_id);
  if (op.on_object && !object.empty()) {
    resource += "/" + std::string(authz::ObjectTypeName(op.type)) + "/" + std::string(object);
  }
  return Forbidden(
      "Caller is not authorized to perform action on resource.\r\n"
      "If role assignments, deny assignments or role definitions were changed recently, please "
      "observe propagation time.\r\n"
      "Caller: " +
          who + "\r\nAction: '" + std::string(op.data_action) + "'\r\nResource: '" + resource +
          "'\r\nAssignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: '" +
          std::string(authz::ReasonName(d.reason)) + "' \r\nVault: " + vault.record.name +
          ";location=" + location + "\r\nAuthorization model: Azure RBAC\r\n",
      "ForbiddenByRbac");
}

std::optional<http::Response> VaultPlane::Throttle(
    const std::string& vault, const std::shared_ptr<const keyvault::OpenVault>& open,
    const keyvault::VaultOperation& route, const http::PathParams& params, bool may_block) const {
  if (limits_ == nullptr || !limits_->on()) {
    return std::nullopt;
  }
  // The watch stream is a connection, not a transaction.
  if (route.anywhere_in_vault) {
    return std::nullopt;
  }
  const int64_t weight = weigher_ ? weigher_(open, route, params, may_block) : 1;
  if (auto wait = limits_->Charge(vault, route.operation, weight)) {
    return ServiceLimits::Throttled(*wait);
  }
  return std::nullopt;
}

std::optional<http::Response> VaultPlane::Fast(const std::string& vault,
                                               const http::Request& request,
                                               AuditNote& note) const {
  // Only what every stage can answer from memory is answered here.
  auto match = routes_.Find(request);
  if (match.operation == nullptr) {
    return std::nullopt;
  }
  const keyvault::VaultOperation& route = *match.operation;
  if (!route.fast) {
    return std::nullopt;
  }
  auto caller = authenticator_.TryCached(request.Header("authorization"), config_.audiences);
  if (!caller) {
    return std::nullopt;
  }
  auto open = registry_.TryGetCached(vault);
  if (open == nullptr) {
    return std::nullopt;
  }
  AuditNote attempt;
  attempt.operation =
      std::string(route.audit_operation.empty() ? route.operation : route.audit_operation);
  auto response = Authorize(*caller, *open, route, match.params, attempt);
  if (!response) {
    authz::Principal who = PrincipalOf(*caller);
    response = route.fast(keyvault::VaultCall{open, request, match.params, who, caller->expires});
    // Counted only when answered here: a request the fast path passes on
    // is counted once, by Handle. A fast answer is a read from memory, so
    // one over the limit is dropped for the 429.
    if (response) {
      if (auto throttled = Throttle(vault, open, route, match.params, false)) {
        response = std::move(throttled);
      }
    }
  }
  if (response) {
    attempt.caller = std::move(*caller);
    attempt.resource_id = open->resource_id;
    note = std::move(attempt);
  }
  return response;
}

http::Response VaultPlane::Handle(const std::string& vault, const http::Request& request,
                                  AuditNote& note) const {
  note.operation = "Authentication";
  auto caller =
      authenticator_.Authenticate(request.Header("authorization"), config_.audiences, &note.denial);
  if (!caller.ok()) {
    note.resource_id = ResourceId(vault);
    if (caller.status().code() == StatusCode::kUnauthenticated) {
      return Challenge(caller.status());
    }
    return http::ErrorResponse(caller.status());
  }
  note.caller = *caller;
  note.operation = "Unknown";
  // SECURITY: a request that names no operation is answered here; no
  // handler ever runs without a route and its permission.
  auto match = routes_.Find(request);
  if (match.operation == nullptr) {
    note.resource_id = ResourceId(vault);
    return keyvault::VaultRoutes::Unmatched(match);
  }
  const keyvault::VaultOperation& route = *match.operation;
  note.operation =
      std::string(route.audit_operation.empty() ? route.operation : route.audit_operation);
  note.changes_nothing = route.changes_nothing;
  // The vault is resolved once: the same snapshot is authorized and handled.
  auto open = registry_.Get(vault);
  if (!open.ok()) {
    note.resource_id = ResourceId(vault);
    return http::ErrorResponse(open.status());
  }
  note.resource_id = (*open)->resource_id;
  if (auto denied = Authorize(*caller, **open, route, match.params, note)) {
    return *denied;
  }
  if (auto throttled = Throttle(vault, *open, route, match.params, true)) {
    return *throttled;
  }
  authz::Principal who = PrincipalOf(*caller);
  return route.handle(keyvault::VaultCall{*open, request, match.params, who, caller->expires});
}

}  // namespace coffer::server
