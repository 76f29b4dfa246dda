// ARM's subscription and tenant listings (docs/management-api.md).

#include "common/json.h"
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

}  // namespace coffer::server
