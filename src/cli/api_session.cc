#include "cli/api_session.h"

#include "cli/vault_objects.h"
#include "common/encoding.h"
#include "common/strings.h"

namespace coffer::cli {

StatusOr<http::Response> Session::Arm(const std::string& method, const std::string& path,
                                      const std::string& api, const std::string& body,
                                      const std::string& query) {
  std::string url =
      c_.config().authority + path + "?api-version=" + api + (query.empty() ? "" : "&" + query);
  return c_.Call(method, url, c_.config().authority, body);
}

StatusOr<http::Response> Session::Vault(const std::string& method, const std::string& vault,
                                        const std::string& path, const std::string& body) {
  ObjectArgs args;
  args.vault = vault;
  auto [base, resource] = ResolveObject(c_, args, "secrets");
  return c_.Call(method, KvUrl(base, path), resource, body);
}

std::string Session::VaultResource(const std::string& vault) const {
  ObjectArgs args;
  args.vault = vault;
  return ResolveObject(c_, args, "secrets").second;
}

StatusOr<http::Response> Session::Graph(const std::string& method, const std::string& path,
                                        const std::string& body) {
  return c_.Call(method, c_.config().authority + path, "https://graph.microsoft.com", body);
}

Status Session::Failed(const std::string& where, const std::string& what,
                       const StatusOr<http::Response>& r) {
  Status s = r.ok() ? client::ErrorFromResponse(*r) : r.status();
  return Status(s.code() == StatusCode::kOk ? StatusCode::kUnknown : s.code(),
                where + ": " + what + ": " + std::string(s.message()), std::string(s.reason()));
}

StatusOr<Json> Session::All(const std::string& where, StatusOr<http::Response> first,
                            const std::string& resource) {
  Json all = Json::array();
  while (true) {
    if (!first.ok() || first->status != 200) {
      return Failed(where, "listing", first);
    }
    auto page = ParseJson(first->body);
    if (!page || !page->is_object()) {
      return InternalError(where + ": the server's list is not JSON");
    }
    for (const auto& item : page->value("value", Json::array())) {
      all.push_back(item);
    }
    std::string next = StringMember(*page, "nextLink");
    if (next.empty()) {
      return all;
    }
    first = c_.Call("GET", next, resource);
  }
}

StatusOr<std::string> Session::RoleDefinitionId(const std::string& where, const std::string& role) {
  std::string last = role.substr(role.rfind('/') == std::string::npos ? 0 : role.rfind('/') + 1);
  std::string path = Subscription() + "/providers/Microsoft.Authorization/roleDefinitions";
  if (last.size() == 36 && last[8] == '-') {
    auto r = Arm("GET", path + "/" + AsciiLower(last), kAuthorizationApi);
    if (r.ok() && r->status == 200) {
      return path + "/" + AsciiLower(last);
    }
  } else {
    auto r = Arm("GET", path, kAuthorizationApi, "",
                 "$filter=" + PercentEncode("roleName eq '" + role + "'"));
    if (!r.ok() || r->status != 200) {
      return Failed(where, "looking up the role", r);
    }
    for (const auto& found : Body(r).value("value", Json::array())) {
      return StringMember(found, "id");
    }
  }
  return Status(StatusCode::kNotFound, where + ": role '" + role + "' does not exist",
                "RoleDefinitionDoesNotExist");
}

StatusOr<Json> Session::ServicePrincipals() {
  if (service_principals_.is_null()) {
    auto r = Graph("GET", "/v1.0/servicePrincipals");
    if (!r.ok() || r->status != 200) {
      return Failed("the directory", "listing service principals", r);
    }
    service_principals_ = Body(r).value("value", Json::array());
  }
  return service_principals_;
}

std::string Session::ObjectIdOf(const std::string& id) {
  auto all = ServicePrincipals();
  for (const auto& sp : all.ok() ? *all : Json::array()) {
    if (EqualsIgnoreCase(StringMember(sp, "appId"), id)) {
      return StringMember(sp, "id");
    }
  }
  return id;
}

std::string Session::Tenant() {
  if (tenant_.empty()) {
    auto t = c_.TenantId();
    tenant_ = t.ok() ? *t : c_.config().tenant_guid;
  }
  return tenant_;
}

StatusOr<std::string> Session::Caller() {
  if (caller_.empty()) {
    ASSIGN_OR_RETURN(caller_, c_.SignedInObjectId(c_.config().authority));
  }
  return caller_;
}

StatusOr<Json> Session::NewVaultBody(const SeedVault& v, bool rbac) {
  Json policies = Json::array();
  if (!rbac) {
    auto oid = Caller();
    if (!oid.ok()) {
      return Status(oid.status().code(), v.where + ": " + std::string(oid.status().message()),
                    std::string(oid.status().reason()));
    }
    Json all = Json::array({"all"});
    policies.push_back({{"tenantId", Tenant()},
                        {"objectId", *oid},
                        {"permissions", {{"secrets", all}, {"keys", all}, {"certificates", all}}}});
  }
  Json props = {{"tenantId", Tenant()},
                {"sku", {{"family", "A"}, {"name", "standard"}}},
                {"softDeleteRetentionInDays", v.retention_days.value_or(90)},
                {"enableRbacAuthorization", rbac},
                {"accessPolicies", policies}};
  return Json{{"location", v.location}, {"properties", props}, {"tags", v.tags}};
}

Json Body(const StatusOr<http::Response>& r) {
  auto parsed = ParseJson(r->body);
  return parsed ? *parsed : Json();
}

std::string VaultPath(const std::string& rg, const std::string& name) {
  return "/resourceGroups/" + rg + "/providers/Microsoft.KeyVault/vaults/" + name;
}

std::string IdentityPath(const std::string& rg, const std::string& name) {
  return "/resourceGroups/" + rg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" +
         name;
}

std::string ResourceGroupOf(const std::string& id) {
  auto parts = Split(id, '/');
  return parts.size() > 4 ? std::string(parts[4]) : "";
}

}  // namespace coffer::cli
