#pragma once

// One conversation with a Coffer server through its public APIs, for the
// commands that read and change many resources at once (seed files,
// `coffer env`): ARM requests by path, data-plane requests by vault name,
// every page of a list, and errors that name the entry of a file they were
// made for.

#include <string>

#include "cli/seed_file.h"
#include "client/api_client.h"
#include "common/json.h"
#include "common/status.h"
#include "http/message.h"

namespace coffer::cli {

inline constexpr char kVaultApi[] = "2023-07-01";
inline constexpr char kIdentityApi[] = "2023-01-31";
inline constexpr char kAuthorizationApi[] = "2022-04-01";

class Session {
 public:
  explicit Session(client::ApiClient& c) : c_(c) {}

  // "/subscriptions/<id>" of the client's configuration.
  std::string Subscription() const { return "/subscriptions/" + c_.config().subscription_id; }

  // An ARM request to an absolute path ("/subscriptions/..."), with
  // api-version `api` and `query` ("k=v&...") appended.
  StatusOr<http::Response> Arm(const std::string& method, const std::string& path,
                               const std::string& api, const std::string& body = "",
                               const std::string& query = "");
  // A data-plane request to vault `vault` (a name, completed with the
  // client's DNS suffix); `path` starts with '/'.
  StatusOr<http::Response> Vault(const std::string& method, const std::string& vault,
                                 const std::string& path, const std::string& body = "");
  // VaultResource is the token resource of vault `vault`'s data plane.
  std::string VaultResource(const std::string& vault) const;
  // A request to the directory (/v1.0/...).
  StatusOr<http::Response> Graph(const std::string& method, const std::string& path,
                                 const std::string& body = "");

  // Failed is the error of a response that was not what `what` needed:
  // "WHERE: WHAT: the server's message", with its code and reason.
  static Status Failed(const std::string& where, const std::string& what,
                       const StatusOr<http::Response>& r);

  // All follows nextLink from `first` and returns every item of every page.
  StatusOr<Json> All(const std::string& where, StatusOr<http::Response> first,
                     const std::string& resource);

  // RoleDefinitionId is the id of role `role` (a role name, or a
  // definition's id or GUID); kNotFound (RoleDefinitionDoesNotExist) naming
  // `where` when there is none.
  StatusOr<std::string> RoleDefinitionId(const std::string& where, const std::string& role);

  // ServicePrincipals is the directory's service principals (read once;
  // Forget() reads them again next time), or the error of reading them.
  StatusOr<Json> ServicePrincipals();
  void Forget() { service_principals_ = Json(); }
  // ObjectIdOf: an app id names its service principal's object; anything
  // else (also when the directory cannot be read) is taken as an object id.
  std::string ObjectIdOf(const std::string& id);

  // Tenant is the tenant's id (read once).
  std::string Tenant();
  // Caller is the signed-in principal's object id (read once).
  StatusOr<std::string> Caller();
  // NewVaultBody is the ARM body that makes vault `v` with model `rbac`:
  // standard SKU, its retention (90 days unless given), its location and
  // tags; an access-policy vault gives its creator every permission, as
  // `az keyvault create` does. Errors name v.where.
  StatusOr<Json> NewVaultBody(const SeedVault& v, bool rbac);

  client::ApiClient& client() { return c_; }

 private:
  client::ApiClient& c_;
  Json service_principals_;
  std::string tenant_;
  std::string caller_;
};

// Body is the response's JSON body (null when it has none or it is not
// JSON); `r` must hold a response.
Json Body(const StatusOr<http::Response>& r);

// Paths below a subscription.
std::string VaultPath(const std::string& rg, const std::string& name);
std::string IdentityPath(const std::string& rg, const std::string& name);
// ResourceGroupOf is the resource group of an ARM id ("" if it has none).
std::string ResourceGroupOf(const std::string& id);

}  // namespace coffer::cli
