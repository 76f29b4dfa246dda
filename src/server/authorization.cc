// Authorization of every request (docs/authorization.md): the data plane
// by the vault's model, the management plane by Azure RBAC, and the
// explanation API behind `coffer authz explain`.

#include "authz/arm_action.h"
#include "common/json.h"
#include "common/strings.h"
#include "keyvault/names.h"
#include "server/server.h"

namespace coffer::server {
namespace {

authz::Principal PrincipalOf(const Caller& c) {
  return {c.object_id, c.app_id, c.tenant_id};
}

Json ConsideredJson(const authz::Decision& d) {
  Json out = Json::array();
  for (const auto& c : d.considered) {
    Json item = {{"source", c.source},
                 {"id", c.id},
                 {"appliesToPrincipalAndResource", c.covers},
                 {"grants", c.grants},
                 {"detail", c.note}};
    if (!c.role.empty()) {
      item["role"] = c.role;
      item["scope"] = c.scope;
    }
    out.push_back(std::move(item));
  }
  return out;
}

}  // namespace

http::Response CofferServer::ExplainRequest(const Caller& caller, const http::Request& request) {
  // GET /coffer/v1/authz/explain?assignee=&vault=&action=[&object=]
  std::string assignee(request.Query("assignee"));
  std::string vault_name(request.Query("vault"));
  std::string action(request.Query("action"));
  std::string object(request.Query("object"));
  if (assignee.empty() || vault_name.empty() || action.empty() || assignee.size() > 128) {
    return http::ErrorResponse(400, "BadParameter",
                               "assignee, vault and action are required (object optional).");
  }
  if (!object.empty()) {
    if (Status valid = keyvault::ValidateObjectName(object); !valid.ok()) {
      return http::ErrorResponse(400, "BadParameter",
                                 "object '" + object.substr(0, 128) +
                                     "' is not a secret name: " + std::string(valid.message()));
    }
  }
  auto vault = registry_->Get(vault_name);
  if (!vault.ok()) {
    return http::ErrorResponse(vault.status());
  }
  const auto& v = **vault;
  // Reading how a vault is authorized needs what reading its policies and
  // its role assignments needs.
  for (const char* needed :
       {"Microsoft.KeyVault/vaults/read", "Microsoft.Authorization/roleAssignments/read"}) {
    auto d = authorizer_->CheckAction(PrincipalOf(caller), needed, v.resource_id);
    if (!d.allowed) {
      return http::ErrorResponse(403, "AuthorizationFailed",
                                 "The client '" + caller.object_id + "' with object id '" +
                                     caller.object_id +
                                     "' does not have authorization to perform action '" + needed +
                                     "' over scope '" + v.resource_id + "'.");
    }
  }
  auto principal = store_->GetPrincipal(assignee);
  if (!principal.ok() && principal.status().code() == StatusCode::kNotFound) {
    principal = store_->GetPrincipalByAppId(assignee);
  }
  if (!principal.ok()) {
    if (principal.status().code() == StatusCode::kNotFound) {
      return http::ErrorResponse(404, "PrincipalNotFound",
                                 "No principal has the object id or app id '" + assignee + "'.");
    }
    return http::ErrorResponse(principal.status());
  }
  // The action may be named as an operation (SecretGet), a data action or
  // an access-policy permission (secrets/get).
  const authz::DataOperation* op = authz::FindOperation(action);
  for (const auto& candidate : authz::DataOperations()) {
    if (op != nullptr) {
      break;
    }
    if (EqualsIgnoreCase(candidate.data_action, action) ||
        EqualsIgnoreCase(std::string(authz::ObjectTypeName(candidate.type)) + "/" +
                             std::string(candidate.permission),
                         action)) {
      op = &candidate;
    }
  }
  if (op == nullptr) {
    std::string known;
    for (const auto& candidate : authz::DataOperations()) {
      known += (known.empty() ? "" : ", ") + std::string(candidate.name);
    }
    return http::ErrorResponse(400, "BadParameter",
                               "Unknown action '" + action.substr(0, 200) +
                                   "'. Name an operation (" + known +
                                   "), its data action or its permission (secrets/get).");
  }
  authz::Principal who{principal->object_id, principal->app_id, principal->tenant_id};
  authz::VaultContext ctx{v.settings.rbac_authorization, &v.settings.access_policies,
                          v.resource_id};
  auto d = authorizer_->CheckData(who, ctx, *op, object, true);
  std::string resource = v.resource_id;
  if (op->on_object && !object.empty()) {
    resource += "/" + std::string(authz::ObjectTypeName(op->type)) + "/" + object;
  }
  Json out = {{"allowed", d.allowed},
              {"decisionReason", authz::ReasonName(d.reason)},
              {"model", authz::ModelName(d.model)},
              {"principal",
               {{"objectId", principal->object_id},
                {"appId", principal->app_id},
                {"displayName", principal->display_name},
                {"kind", principal->kind}}},
              {"vault", v.record.name},
              {"resource", resource},
              {"operation", op->name},
              {"permission",
               std::string(authz::ObjectTypeName(op->type)) + "/" + std::string(op->permission)},
              {"dataAction", op->data_action},
              {"applied", d.applied.empty() ? Json() : Json(d.applied)},
              {"considered", ConsideredJson(d)}};
  if (d.model == authz::Model::kAccessPolicy) {
    out["ignored"] = "Role assignments do not apply: the vault uses access policies.";
  } else {
    out["ignored"] = "Access policies do not apply: the vault uses Azure RBAC.";
  }
  return http::JsonResponse(200, ToJson(out));
}

}  // namespace coffer::server
