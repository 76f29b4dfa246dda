// ARM's subscription and tenant listings (docs/management-api.md), and a
// user's own password change (docs/users.md).

#include "common/json.h"
#include "crypto/primitives.h"
#include "http/client_address.h"
#include "server/server.h"

namespace coffer::server {

http::Response CofferServer::SubscriptionsRequest(const Caller& caller) const {
  Json items = Json::array();
  const std::string id = "/subscriptions/" + info_.subscription_id;
  // SECURITY: as in Azure, a subscription is listed to a caller that holds
  // a role somewhere in it; others learn nothing of it.
  if (authorizer_->HoldsRoleWithin({caller.object_id, caller.app_id, caller.tenant_id}, id)) {
    items.push_back({{"id", id},
                     {"subscriptionId", info_.subscription_id},
                     {"tenantId", info_.tenant_id},
                     {"displayName", "Coffer"},
                     {"state", "Enabled"},
                     {"subscriptionPolicies",
                      {{"locationPlacementId", "Public_2014-09-01"},
                       {"quotaId", "Coffer"},
                       {"spendingLimit", "Off"}}},
                     {"authorizationSource", "RoleBased"},
                     {"managedByTenants", Json::array()}});
  }
  return http::JsonResponse(200, ToJson(Json{{"value", items}}));
}

http::Response CofferServer::TenantsRequest() const {
  // Only the caller's own tenant, which its token already names.
  Json tenant = {{"id", "/tenants/" + info_.tenant_id},
                 {"tenantId", info_.tenant_id},
                 {"tenantCategory", "Home"},
                 {"displayName", "Coffer"},
                 {"domains", Json::array()}};
  return http::JsonResponse(200, ToJson(Json{{"value", Json::array({tenant})}}));
}

http::Response CofferServer::ChangePasswordRequest(const Caller& caller,
                                                   const http::Request& request) {
  if (caller.identity_type != "user") {
    return auth::GraphApi::Me();
  }
  auto body = ParseJson(request.body.empty() ? "{}" : request.body);
  if (!body || !body->is_object() || !body->value("currentPassword", Json()).is_string() ||
      !body->value("newPassword", Json()).is_string()) {
    return http::ErrorResponse(400, "Request_BadRequest",
                               "currentPassword and newPassword are required strings.");
  }
  std::string& current = (*body)["currentPassword"].get_ref<std::string&>();
  std::string& replacement = (*body)["newPassword"].get_ref<std::string&>();
  auto changed = users_->ChangePassword(caller.object_id, current, replacement,
                                        http::ClientAddressKey(request.remote_address));
  crypto::SecureWipe(current);
  crypto::SecureWipe(replacement);
  if (!changed.ok()) {
    return auth::GraphUserError(changed.status());
  }
  switch (changed->failure) {
    case auth::SignInFailure::kNone:
      // The user's other tokens end here; other servers learn it from the
      // store.
      authenticator_->ForgetPrincipal(caller.object_id);
      return http::EmptyResponse(204);
    case auth::SignInFailure::kBadCredentials:
      return http::ErrorResponse(400, "Request_BadRequest", "The current password is incorrect.");
    case auth::SignInFailure::kLocked: {
      http::Response r = http::ErrorResponse(
          400, "Request_BadRequest",
          "The account is locked after too many failed sign-ins; try again in " +
              std::to_string(changed->retry_after) + " seconds.");
      r.SetHeader("Retry-After", std::to_string(changed->retry_after));
      return r;
    }
    case auth::SignInFailure::kDisabled:
      return http::ErrorResponse(403, "Authorization_RequestDenied",
                                 "The user account is disabled.");
    case auth::SignInFailure::kThrottled:
    case auth::SignInFailure::kBusy:
      break;
  }
  http::Response r = http::ErrorResponse(429, "TooManyRequests",
                                         "Too many sign-ins are being checked; try again shortly.");
  r.SetHeader("Retry-After", std::to_string(std::max<int64_t>(1, changed->retry_after)));
  return r;
}

}  // namespace coffer::server
