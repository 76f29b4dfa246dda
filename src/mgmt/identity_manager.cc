#include "mgmt/identity_manager.h"

#include "common/strings.h"
#include "crypto/primitives.h"

namespace coffer::mgmt {
namespace {

constexpr char kKind[] = "UserAssignedIdentity";
constexpr char kType[] = "Microsoft.ManagedIdentity/userAssignedIdentities";

// Azure's rule: 3-128 characters of letters, digits, '-' and '_', starting
// with a letter or digit.
bool ValidIdentityName(const std::string& name) {
  if (name.size() < 3 || name.size() > 128) {
    return false;
  }
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum && (i == 0 || (c != '-' && c != '_'))) {
      return false;
    }
  }
  return true;
}

std::string ResourceGroupOf(const std::string& resource_id) {
  auto parts = Split(resource_id, '/');
  return parts.size() > 4 ? std::string(parts[4]) : std::string();
}

Status CheckTags(const Json& tags) {
  if (!tags.is_object() || tags.size() > 50) {
    return InvalidArgumentError("tags must be an object of at most 50 string values.");
  }
  for (const auto& [k, v] : tags.items()) {
    if (!v.is_string() || k.size() > 512 || v.get<std::string>().size() > 256) {
      return InvalidArgumentError("Tag names must be at most 512 and values 256 characters.");
    }
  }
  return OkStatus();
}

}  // namespace

IdentityManager::IdentityManager(std::string subscription_id, std::string tenant_id,
                                 storage::Store& store, const Clock& clock,
                                 std::function<void(const std::string&)> on_deleted)
    : subscription_id_(std::move(subscription_id)),
      tenant_id_(std::move(tenant_id)),
      store_(store),
      clock_(clock),
      on_deleted_(std::move(on_deleted)) {}

Json IdentityManager::ToArm(const storage::PrincipalRecord& p) const {
  auto parts = Split(p.resource_id, '/');
  return Json{{"id", p.resource_id},
              {"name", parts.empty() ? "" : std::string(parts.back())},
              {"type", kType},
              {"location", p.location},
              {"tags", ParseJson(p.tags_json).value_or(Json::object())},
              {"properties",
               {{"tenantId", tenant_id_}, {"principalId", p.object_id}, {"clientId", p.app_id}}}};
}

StatusOr<std::optional<storage::PrincipalRecord>> IdentityManager::Find(
    const std::string& resource_group, const std::string& name) {
  ASSIGN_OR_RETURN(auto all, store_.ListPrincipals());
  for (auto& p : all) {
    if (p.kind != kKind) {
      continue;
    }
    auto parts = Split(p.resource_id, '/');
    if (!parts.empty() && EqualsIgnoreCase(parts.back(), name) &&
        EqualsIgnoreCase(ResourceGroupOf(p.resource_id), resource_group)) {
      return std::optional<storage::PrincipalRecord>(std::move(p));
    }
  }
  return std::optional<storage::PrincipalRecord>();
}

std::optional<http::Response> IdentityManager::Handle(const http::Request& req) {
  const auto& seg = req.segments;
  auto is = [&](size_t i, const char* v) { return seg.size() > i && EqualsIgnoreCase(seg[i], v); };
  bool by_rg = seg.size() >= 7 && seg.size() <= 8 && is(0, "subscriptions") &&
               is(2, "resourceGroups") && is(4, "providers") &&
               is(5, "Microsoft.ManagedIdentity") && is(6, "userAssignedIdentities");
  bool by_sub = seg.size() == 5 && is(0, "subscriptions") && is(2, "providers") &&
                is(3, "Microsoft.ManagedIdentity") && is(4, "userAssignedIdentities");
  if (!by_rg && !by_sub) {
    return std::nullopt;
  }
  if (req.Query("api-version").empty()) {
    return http::ErrorResponse(
        400, "MissingApiVersionParameter",
        "The api-version query parameter (?api-version=) is required for all "
        "requests.");
  }
  if (!EqualsIgnoreCase(seg[1], subscription_id_)) {
    return http::ErrorResponse(404, "SubscriptionNotFound",
                               "The subscription '" + seg[1] + "' could not be found.");
  }
  const std::string& m = req.method;
  if (by_sub || seg.size() == 7) {
    if (m != "GET") {
      return http::ErrorResponse(405, "MethodNotAllowed", "Only GET is allowed on a collection.");
    }
    auto all = store_.ListPrincipals();
    if (!all.ok()) {
      return http::ErrorResponse(500, "InternalServerError", std::string(all.status().message()));
    }
    Json items = Json::array();
    for (const auto& p : *all) {
      if (p.kind == kKind && (by_sub || EqualsIgnoreCase(ResourceGroupOf(p.resource_id), seg[3]))) {
        items.push_back(ToArm(p));
      }
    }
    return http::JsonResponse(200, ToJson(Json{{"value", items}}));
  }

  const std::string& rg = seg[3];
  const std::string& name = seg[7];
  if (!ValidIdentityName(name)) {
    return http::ErrorResponse(
        400, "InvalidResourceName",
        "The resource name '" + name.substr(0, 130) +
            "' is invalid. It must be 3-128 characters of letters, digits, '-' and "
            "'_', starting with a letter or digit.");
  }
  auto found = Find(rg, name);
  if (!found.ok()) {
    return http::ErrorResponse(500, "InternalServerError", std::string(found.status().message()));
  }
  auto not_found = [&] {
    return http::ErrorResponse(404, "ResourceNotFound",
                               "The Resource '" + std::string(kType) + "/" + name +
                                   "' under resource group '" + rg + "' was not found.");
  };
  if (m == "GET") {
    return *found ? http::JsonResponse(200, ToJson(ToArm(**found))) : not_found();
  }
  if (m == "DELETE") {
    if (!*found) {
      return http::EmptyResponse(204);
    }
    // SECURITY: the identity's principal goes with it, so its tokens stop
    // working on the next request.
    Status deleted = store_.DeletePrincipal((*found)->object_id);
    if (!deleted.ok()) {
      return http::ErrorResponse(500, "InternalServerError", std::string(deleted.message()));
    }
    on_deleted_((*found)->object_id);
    return http::EmptyResponse(200);
  }
  if (m != "PUT" && m != "PATCH") {
    return http::ErrorResponse(405, "MethodNotAllowed", "Method " + m + " is not allowed.");
  }
  auto body = ParseJson(req.body.empty() ? "{}" : req.body);
  if (!body || !body->is_object()) {
    return http::ErrorResponse(400, "InvalidRequestContent",
                               "The request content is not a JSON object.");
  }
  if (m == "PATCH" && !*found) {
    return not_found();
  }
  storage::PrincipalRecord rec = *found ? **found : storage::PrincipalRecord();
  if (auto it = body->find("tags"); it != body->end() && !it->is_null()) {
    Status tags = CheckTags(*it);
    if (!tags.ok()) {
      return http::ErrorResponse(400, "InvalidRequestContent", std::string(tags.message()));
    }
    rec.tags_json = ToJson(*it);
  }
  if (auto it = body->find("location"); it != body->end() && !it->is_null()) {
    if (!it->is_string() || it->get<std::string>().empty()) {
      return http::ErrorResponse(400, "LocationRequired", "location must be a non-empty string.");
    }
    rec.location = it->get<std::string>();
  }
  if (*found) {
    Status updated = store_.UpdatePrincipal(rec);
    if (!updated.ok()) {
      return http::ErrorResponse(500, "InternalServerError", std::string(updated.message()));
    }
    return http::JsonResponse(200, ToJson(ToArm(rec)));
  }
  if (rec.location.empty()) {
    rec.location = "local";
  }
  rec.object_id = crypto::RandomUuid();
  rec.app_id = crypto::RandomUuid();
  rec.tenant_id = tenant_id_;
  rec.display_name = name;
  rec.kind = kKind;
  rec.created = clock_.NowSeconds();
  rec.resource_id = "/subscriptions/" + subscription_id_ + "/resourcegroups/" + rg +
                    "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" + name;
  Status created = store_.CreatePrincipal(rec);
  if (!created.ok()) {
    return http::ErrorResponse(500, "InternalServerError", std::string(created.message()));
  }
  return http::JsonResponse(201, ToJson(ToArm(rec)));
}

}  // namespace coffer::mgmt
