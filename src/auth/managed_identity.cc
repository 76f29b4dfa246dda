#include "auth/managed_identity.h"

#include "common/encoding.h"
#include "common/json.h"
#include "common/log.h"
#include "common/strings.h"
#include "crypto/primitives.h"

namespace coffer::auth {
namespace {

constexpr size_t kUidLength = 36;  // a UUID
constexpr char kApiVersion[] = "2019-08-01";

http::Response MiError(int status, const std::string& error, const std::string& description) {
  http::Response r = http::JsonResponse(
      status, ToJson(Json{{"error", error}, {"error_description", description}}));
  r.SetHeader("Cache-Control", "no-store");
  return r;
}

bool AssignedByResourceId(const storage::WorkloadRecord& w, const std::string& resource_id) {
  for (const auto& id : w.user_assigned) {
    if (EqualsIgnoreCase(id, resource_id)) {
      return true;
    }
  }
  return false;
}

}  // namespace

IdentityHeaders::IdentityHeaders(std::string key) : key_(std::move(key)) {}

IdentityHeaders::~IdentityHeaders() {
  crypto::SecureWipe(key_);
}

std::string IdentityHeaders::For(const storage::WorkloadRecord& workload) const {
  std::string mac =
      crypto::HmacSha256(key_, workload.uid + ":" + std::to_string(workload.header_generation));
  return workload.uid + "." + Base64UrlEncode(mac);
}

std::optional<std::string> IdentityHeaders::UidOf(std::string_view header) {
  if (header.size() <= kUidLength + 1 || header.size() > 128 || header[kUidLength] != '.') {
    return std::nullopt;
  }
  for (char c : header.substr(0, kUidLength)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-')) {
      return std::nullopt;
    }
  }
  return std::string(header.substr(0, kUidLength));
}

bool IdentityHeaders::Matches(const storage::WorkloadRecord& workload,
                              std::string_view header) const {
  return crypto::ConstantTimeEquals(For(workload), header);
}

StatusOr<storage::PrincipalRecord> ResolveIdentity(storage::Store& store,
                                                   const storage::WorkloadRecord& w,
                                                   const IdentitySelector& selector) {
  const Status not_assigned =
      NotFoundError("The requested identity is not assigned to this resource.");
  using By = IdentitySelector::By;
  if (selector.by == By::kDefault) {
    if (!w.system_principal_id.empty()) {
      return store.GetPrincipal(w.system_principal_id);
    }
    if (w.user_assigned.size() > 1) {
      return InvalidArgumentError(
          "Multiple user assigned identities exist, please specify the clientId / resourceId "
          "of the identity in the token request.");
    }
    if (w.user_assigned.empty()) {
      return NotFoundError("No managed identity is assigned to this resource.");
    }
    return ResolveIdentity(store, w, IdentitySelector{By::kResourceId, w.user_assigned.front()});
  }
  if (selector.by == By::kResourceId) {
    if (!AssignedByResourceId(w, selector.value)) {
      return not_assigned;
    }
    ASSIGN_OR_RETURN(auto all, store.ListPrincipals());
    for (auto& p : all) {
      if (p.kind == "UserAssignedIdentity" && EqualsIgnoreCase(p.resource_id, selector.value)) {
        return std::move(p);
      }
    }
    return not_assigned;
  }
  auto p = selector.by == By::kClientId ? store.GetPrincipalByAppId(selector.value)
                                        : store.GetPrincipal(selector.value);
  if (!p.ok()) {
    return p.status().code() == StatusCode::kNotFound ? not_assigned : p.status();
  }
  bool mine = (!w.system_principal_id.empty() && p->object_id == w.system_principal_id) ||
              (p->kind == "UserAssignedIdentity" && AssignedByResourceId(w, p->resource_id));
  if (!mine) {
    return not_assigned;
  }
  return p;
}

ManagedIdentityEndpoint::ManagedIdentityEndpoint(storage::Store& store,
                                                 const IdentityHeaders& headers,
                                                 const TokenService& tokens, const Clock& clock)
    : store_(store), headers_(headers), tokens_(tokens), clock_(clock) {}

http::Response ManagedIdentityEndpoint::Token(const http::Request& request) {
  if (request.method != "GET") {
    return MiError(405, "invalid_request", "The managed identity endpoint only accepts GET.");
  }
  if (request.Query("api-version") != kApiVersion) {
    return MiError(400, "invalid_request",
                   "api-version " + std::string(kApiVersion) + " is required.");
  }
  // SECURITY: the header is the workload's credential. An unknown workload
  // and a wrong MAC get the same answer.
  std::string_view header = request.Header("x-identity-header");
  if (header.empty()) {
    return MiError(401, "invalid_client", "The X-IDENTITY-HEADER header is missing.");
  }
  const auto denied = [] {
    return MiError(401, "invalid_client", "The X-IDENTITY-HEADER header is not valid.");
  };
  auto uid = IdentityHeaders::UidOf(header);
  if (!uid) {
    return denied();
  }
  auto workload = store_.GetWorkload(*uid);
  if (!workload.ok()) {
    if (workload.status().code() != StatusCode::kNotFound) {
      return MiError(503, "temporarily_unavailable", "The identity store is unavailable.");
    }
    return denied();
  }
  if (!headers_.Matches(*workload, header)) {
    return denied();
  }
  std::string_view requested = request.Query("resource");
  if (requested.empty()) {
    return MiError(400, "invalid_request", "The resource query parameter is required.");
  }
  auto resource = tokens_.Resource(requested);
  if (!resource) {
    return MiError(400, "invalid_resource",
                   "AADSTS500011: The resource principal named " +
                       std::string(requested.substr(0, 200)) + " was not found in the tenant.");
  }
  IdentitySelector selector;
  int named = 0;
  for (const auto& [name, by] : {std::pair{"client_id", IdentitySelector::By::kClientId},
                                 std::pair{"principal_id", IdentitySelector::By::kObjectId},
                                 std::pair{"object_id", IdentitySelector::By::kObjectId},
                                 std::pair{"mi_res_id", IdentitySelector::By::kResourceId},
                                 std::pair{"msi_res_id", IdentitySelector::By::kResourceId}}) {
    std::string_view v = request.Query(name);
    if (!v.empty()) {
      ++named;
      selector = IdentitySelector{by, std::string(v.substr(0, 1024))};
    }
  }
  if (named > 1) {
    return MiError(400, "invalid_request",
                   "Name the identity by one of client_id, principal_id, object_id or mi_res_id, "
                   "not several.");
  }
  auto identity = ResolveIdentity(store_, *workload, selector);
  if (!identity.ok()) {
    if (identity.status().code() == StatusCode::kNotFound ||
        identity.status().code() == StatusCode::kInvalidArgument) {
      return MiError(400, "invalid_request", std::string(identity.status().message()));
    }
    return MiError(503, "temporarily_unavailable", "The identity store is unavailable.");
  }
  int64_t now = clock_.NowSeconds();
  int64_t lifetime = tokens_.token_lifetime_seconds();
  std::string token = tokens_.IssueAppToken(*identity, *resource, tokens_.CanonicalIssuer());
  // Integer seconds as strings: both SDKs need `expires_on` and `resource`.
  Json body = {{"access_token", token},
               {"client_id", identity->app_id},
               {"expires_in", std::to_string(lifetime)},
               {"expires_on", std::to_string(now + lifetime)},
               {"ext_expires_in", std::to_string(lifetime)},
               {"not_before", std::to_string(now)},
               {"resource", *resource},
               {"token_type", "Bearer"}};
  http::Response r = http::JsonResponse(200, ToJson(body));
  r.SetHeader("Cache-Control", "no-store");
  return r;
}

}  // namespace coffer::auth
