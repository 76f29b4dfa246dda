// Authorization of every request (docs/authorization.md): the data plane
// by the vault's model, the management plane by Azure RBAC, and the
// explanation API behind `coffer authz explain`.

#include "authz/arm_action.h"
#include "common/json.h"
#include "common/strings.h"
#include "keyvault/names.h"
#include "keyvault/operations.h"
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

std::string CofferServer::CallerString(const Caller& c) const {
  return "appid=" + c.app_id + ";oid=" + c.object_id + ";iss=" + token_service_->CanonicalIssuer();
}

http::Response CofferServer::DataDenial(const Caller& caller, const keyvault::OpenVault& vault,
                                        const authz::DataOperation& op, std::string_view object,
                                        const authz::Decision& d) const {
  const std::string location = vault.record.location;
  if (d.model == authz::Model::kAccessPolicy) {
    // Key Vault's access-policy denial, word for word, plus the reason.
    return Forbidden("The user, group or application '" + CallerString(caller) +
                         "' does not have " + std::string(authz::ObjectTypeName(op.type)) + " " +
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
  std::string message =
      "Caller is not authorized to perform action on resource.\r\n"
      "If role assignments, deny assignments or role definitions were changed recently, please "
      "observe propagation time.\r\n"
      "Caller: " +
      CallerString(caller) + "\r\nAction: '" + std::string(op.data_action) + "'\r\nResource: '" +
      resource + "'\r\nAssignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: '" +
      std::string(authz::ReasonName(d.reason)) + "' \r\nVault: " + vault.record.name +
      ";location=" + location + "\r\nAuthorization model: Azure RBAC\r\n";
  return Forbidden(message, "ForbiddenByRbac");
}

std::optional<http::Response> CofferServer::AuthorizeData(const Caller& caller,
                                                          const keyvault::OpenVault& vault,
                                                          const http::Request& request,
                                                          AuditNote* note) {
  auto requested = keyvault::ClassifyRequest(request);
  if (requested.op == nullptr) {
    return std::nullopt;  // no operation: the API answers 404/405 without data
  }
  authz::VaultContext ctx{vault.settings.rbac_authorization, &vault.settings.access_policies,
                          vault.resource_id};
  auto d = authorizer_->CheckData(PrincipalOf(caller), ctx, *requested.op, requested.object);
  if (note != nullptr) {
    note->operation = std::string(requested.op->name);
    bool rbac = vault.settings.rbac_authorization;
    note->rbac_authorized = rbac && d.allowed;
    note->access_policy_match = !rbac && d.allowed;
    if (rbac && d.allowed) {
      note->applied_assignment = d.applied;
    }
  }
  if (d.allowed) {
    return std::nullopt;
  }
  return DataDenial(caller, vault, *requested.op, requested.object, d);
}

std::optional<http::Response> CofferServer::AuthorizeArm(const Caller& caller,
                                                         const http::Request& request,
                                                         bool* filter_list, AuditNote* note) {
  *filter_list = false;
  auto op = authz::ArmOperationOf(request.method, request.segments);
  if (!op) {
    note->operation = "Unknown";
    return std::nullopt;  // not a resource: the handlers answer 404
  }
  note->operation = ArmOperationName(request.method, op->action, op->collection);
  note->resource_id = op->scope;
  note->object_uri = op->scope;
  std::string assigned;
  if (EqualsIgnoreCase(op->action, "Microsoft.Authorization/roleAssignments/write") ||
      EqualsIgnoreCase(op->action, "Microsoft.Authorization/roleAssignments/delete")) {
    assigned = role_manager_->AssignedRole(request);
  }
  auto d = authorizer_->CheckAction(PrincipalOf(caller), op->action, op->scope, assigned);
  note->rbac_authorized = d.allowed;
  if (d.allowed) {
    note->applied_assignment = d.applied;
    return std::nullopt;
  }
  if (op->collection) {
    // As in Azure, listing a collection one cannot read whole shows the
    // items one can read.
    *filter_list = true;
    return std::nullopt;
  }
  bool condition = d.reason == authz::Reason::kConditionNotMet;
  return http::ErrorResponse(
      403, "AuthorizationFailed",
      "The client '" + caller.object_id + "' with object id '" + caller.object_id +
          "' does not have authorization " +
          (condition ? "or an ABAC condition not fulfilled " : "") + "to perform action '" +
          op->action + "' over scope '" + op->scope +
          "' or the scope is invalid. If access was recently granted, please refresh your "
          "credentials.");
}

mgmt::LinkedCheck CofferServer::LinkedFor(const Caller& caller, const http::Request& request) {
  auto op = authz::ArmOperationOf(request.method, request.segments);
  std::string action = op ? op->action : request.method;
  std::string scope = op ? op->scope : "";
  return [this, caller, action, scope](std::string_view linked_action,
                                       std::string_view linked_scope) -> Status {
    auto d = authorizer_->CheckAction(PrincipalOf(caller), linked_action, linked_scope);
    if (d.allowed) {
      return OkStatus();
    }
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

void CofferServer::FilterList(const Caller& caller, http::Response& response) {
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
    if (op && authorizer_->CheckAction(PrincipalOf(caller), op->action, op->scope).allowed) {
      kept.push_back(item);
    }
  }
  (*body)["value"] = kept;
  response.body = ToJson(*body);
}

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
