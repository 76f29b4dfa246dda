#include "mgmt/identity_manager.h"

#include "common/strings.h"
#include "crypto/primitives.h"
#include "mgmt/arm.h"

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

// Azure's rule for federated identity credential names: 3-120 characters of
// letters, digits, '-' and '_', starting with a letter or digit.
bool ValidCredentialName(const std::string& name) {
  return name.size() >= 3 && name.size() <= 120 && ValidIdentityName(name);
}

constexpr char kFicType[] =
    "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials";
constexpr size_t kMaxFederatedCredentials = 1000;

Status CheckFederatedCredential(const Json& props) {
  auto bad = [](const std::string& why) { return InvalidArgumentError(why, "BadRequest"); };
  if (!props.is_object()) {
    return bad("properties must be an object with issuer, subject and audiences.");
  }
  std::string issuer = StringMember(props, "issuer");
  if (!http::IsTrustworthyUrl(issuer)) {
    return bad(
        "issuer must be an https URL (or http on a loopback host) of at most 2048 "
        "characters.");
  }
  std::string subject = StringMember(props, "subject");
  if (subject.empty() || subject.size() > 600) {
    return bad("subject must be a string of 1-600 characters.");
  }
  auto aud = props.find("audiences");
  if (aud == props.end() || !aud->is_array() || aud->empty() || aud->size() > 10) {
    return bad("audiences must be an array of 1-10 strings.");
  }
  for (const auto& a : *aud) {
    if (!a.is_string() || a.get<std::string>().empty() || a.get<std::string>().size() > 600) {
      return bad("each audience must be a string of 1-600 characters.");
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
  return Json{{"id", p.resource_id},
              {"name", NameOf(p.resource_id)},
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
    if (EqualsIgnoreCase(NameOf(p.resource_id), name) &&
        EqualsIgnoreCase(ResourceGroupOf(p.resource_id), resource_group)) {
      return std::optional<storage::PrincipalRecord>(std::move(p));
    }
  }
  return std::optional<storage::PrincipalRecord>();
}

http::Response IdentityManager::List(const ArmCall& call) {
  std::string_view rg = call.params.Get("rg");
  auto all = store_.ListPrincipals();
  if (!all.ok()) {
    return ArmError(all.status());
  }
  Json items = Json::array();
  for (const auto& p : *all) {
    if (p.kind == kKind && (rg.empty() || EqualsIgnoreCase(ResourceGroupOf(p.resource_id), rg))) {
      items.push_back(ToArm(p));
    }
  }
  return http::JsonResponse(200, ToJson(Json{{"value", items}}));
}

StatusOr<std::optional<storage::PrincipalRecord>> IdentityManager::FindNamed(const ArmCall& call) {
  const std::string rg(call.params.Get("rg"));
  const std::string name(call.params.Get("name"));
  if (!ValidResourceGroup(rg)) {
    return InvalidArgumentError("The resource group name '" + rg.substr(0, 100) + "' is invalid.",
                                "InvalidResourceGroupName");
  }
  if (!ValidIdentityName(name)) {
    return InvalidArgumentError(
        "The resource name '" + name.substr(0, 130) +
            "' is invalid. It must be 3-128 characters of letters, digits, '-' and "
            "'_', starting with a letter or digit.",
        "InvalidResourceName");
  }
  return Find(rg, name);
}

Status IdentityManager::NotFound(const ArmCall& call) const {
  return NotFoundError("The Resource '" + std::string(kType) + "/" +
                           std::string(call.params.Get("name")) + "' under resource group '" +
                           std::string(call.params.Get("rg")) + "' was not found.",
                       "ResourceNotFound");
}

http::Response IdentityManager::Get(const ArmCall& call) {
  auto found = FindNamed(call);
  if (!found.ok() || !*found) {
    return ArmError(found.ok() ? NotFound(call) : found.status());
  }
  http::Response r = http::JsonResponse(200, ToJson(ToArm(**found)));
  r.SetHeader("ETag", ETag((*found)->version));
  return r;
}

http::Response IdentityManager::Delete(const ArmCall& call) {
  auto found = FindNamed(call);
  if (!found.ok()) {
    return ArmError(found.status());
  }
  if (!*found) {
    return http::EmptyResponse(204);
  }
  // SECURITY: the identity's principal goes with it, so its tokens stop
  // working on the next request.
  Status deleted = store_.DeletePrincipal((*found)->object_id);
  if (!deleted.ok()) {
    return ArmError(deleted);
  }
  on_deleted_((*found)->object_id);
  return http::EmptyResponse(200);
}

http::Response IdentityManager::Put(const ArmCall& call) {
  return Put(call, 0);
}

http::Response IdentityManager::Put(const ArmCall& call, int attempt) {
  const http::Request& req = call.request;
  const std::string& m = req.method;
  const std::string rg(call.params.Get("rg"));
  const std::string name(call.params.Get("name"));
  auto found = FindNamed(call);
  if (!found.ok()) {
    return ArmError(found.status());
  }
  auto body = ParseJson(req.body.empty() ? "{}" : req.body);
  if (!body || !body->is_object()) {
    return http::ErrorResponse(400, "InvalidRequestContent",
                               "The request content is not a JSON object.");
  }
  if (m == "PATCH" && !*found) {
    return ArmError(NotFound(call));
  }
  std::optional<std::string> tags;
  if (auto it = body->find("tags"); it != body->end() && !it->is_null()) {
    Status valid = CheckArmTags(*it);
    if (!valid.ok()) {
      return ArmError(valid);
    }
    tags = ToJson(*it);
  }
  std::optional<std::string> location;
  if (auto it = body->find("location"); it != body->end() && !it->is_null()) {
    if (!it->is_string() || it->get<std::string>().empty()) {
      return http::ErrorResponse(400, "LocationRequired", "location must be a non-empty string.");
    }
    location = it->get<std::string>();
  }
  if (*found) {
    // Applied to the identity as it is when written: concurrent changes of
    // different tags or of the location all land.
    auto updated = store_.UpdatePrincipal((*found)->object_id, [&](storage::PrincipalRecord& p) {
      RETURN_IF_ERROR(CheckPreconditions(req, p.version));
      p.tags_json = tags.value_or(p.tags_json);
      p.location = location.value_or(p.location);
      return OkStatus();
    });
    if (!updated.ok()) {
      return ArmError(updated.status());
    }
    http::Response r = http::JsonResponse(200, ToJson(ToArm(*updated)));
    r.SetHeader("ETag", ETag(updated->version));
    return r;
  }
  if (Status pre = CheckPreconditions(req, std::nullopt); !pre.ok()) {
    return ArmError(pre);
  }
  storage::PrincipalRecord rec;
  rec.tags_json = tags.value_or("{}");
  rec.location = location.value_or("local");
  rec.object_id = crypto::RandomUuid();
  rec.app_id = crypto::RandomUuid();
  rec.tenant_id = tenant_id_;
  rec.display_name = name;
  rec.kind = kKind;
  rec.created = clock_.NowSeconds();
  rec.resource_id = "/subscriptions/" + subscription_id_ + "/resourcegroups/" + rg +
                    "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" + name;
  Status created = store_.CreatePrincipal(rec);
  if (created.code() == StatusCode::kAlreadyExists && attempt == 0) {
    // Another request created it first: this one updates it.
    return Put(call, attempt + 1);
  }
  if (!created.ok()) {
    return ArmError(created);
  }
  rec.version = 1;
  http::Response r = http::JsonResponse(201, ToJson(ToArm(rec)));
  r.SetHeader("ETag", ETag(rec.version));
  return r;
}

Json IdentityManager::FederatedToArm(const storage::PrincipalRecord& identity,
                                     const storage::FederatedCredentialRecord& c) const {
  Json audiences = Json::array();
  for (const auto& a : c.audiences) {
    audiences.push_back(a);
  }
  return Json{
      {"id", identity.resource_id + "/federatedIdentityCredentials/" + c.name},
      {"name", c.name},
      {"type", kFicType},
      {"properties", {{"issuer", c.issuer}, {"subject", c.subject}, {"audiences", audiences}}}};
}

http::Response IdentityManager::ListFederated(const ArmCall& call) {
  auto identity = FindNamed(call);
  if (!identity.ok() || !*identity) {
    return ArmError(identity.ok() ? NotFound(call) : identity.status());
  }
  auto existing = store_.ListFederatedCredentials((*identity)->object_id);
  if (!existing.ok()) {
    return ArmError(existing.status());
  }
  Json items = Json::array();
  for (const auto& c : *existing) {
    items.push_back(FederatedToArm(**identity, c));
  }
  return http::JsonResponse(200, ToJson(Json{{"value", items}}));
}

http::Response IdentityManager::Federated(const ArmCall& call) {
  const http::Request& req = call.request;
  auto named = FindNamed(call);
  if (!named.ok() || !*named) {
    return ArmError(named.ok() ? NotFound(call) : named.status());
  }
  const storage::PrincipalRecord& identity = **named;
  auto existing = store_.ListFederatedCredentials(identity.object_id);
  if (!existing.ok()) {
    return ArmError(existing.status());
  }
  const std::string name(call.params.Get("credential"));
  if (!ValidCredentialName(name)) {
    return http::ErrorResponse(400, "InvalidResourceName",
                               "The federated identity credential name '" + name.substr(0, 130) +
                                   "' is invalid. It must be 3-120 characters of letters, digits, "
                                   "'-' and '_', starting with a letter or digit.");
  }
  const storage::FederatedCredentialRecord* found = nullptr;
  for (const auto& c : *existing) {
    if (EqualsIgnoreCase(c.name, name)) {
      found = &c;
    }
  }
  if (req.method == "GET") {
    if (found == nullptr) {
      return http::ErrorResponse(404, "NotFound",
                                 "The federated identity credential '" + name +
                                     "' was not found on identity '" + identity.display_name +
                                     "'.");
    }
    return http::JsonResponse(200, ToJson(FederatedToArm(identity, *found)));
  }
  if (req.method == "DELETE") {
    if (found == nullptr) {
      return http::EmptyResponse(204);
    }
    Status deleted = store_.DeleteFederatedCredential(identity.object_id, name);
    return deleted.ok() ? http::EmptyResponse(200) : ArmError(deleted);
  }
  auto body = ParseJson(req.body.empty() ? "{}" : req.body);
  if (!body || !body->is_object()) {
    return http::ErrorResponse(400, "InvalidRequestContent",
                               "The request content is not a JSON object.");
  }
  Json props = body->value("properties", Json());
  Status valid = CheckFederatedCredential(props);
  if (!valid.ok()) {
    return ArmError(valid);
  }
  bool replaced = false;
  // Uniqueness and the limit are checked against the credentials as they
  // are when this one is written.
  auto put = store_.PutFederatedCredential(
      identity.object_id, name,
      [&](const std::vector<storage::FederatedCredentialRecord>& held)
          -> StatusOr<storage::FederatedCredentialRecord> {
        const storage::FederatedCredentialRecord* same = nullptr;
        for (const auto& c : held) {
          if (EqualsIgnoreCase(c.name, name)) {
            same = &c;
          } else if (c.issuer == StringMember(props, "issuer") &&
                     c.subject == StringMember(props, "subject")) {
            // As in Azure, an issuer and subject pair may appear once per
            // identity: two credentials for one subject would make deleting
            // one of them a silent no-op.
            return InvalidArgumentError("The federated identity credential '" + c.name +
                                            "' of this identity already has this issuer and "
                                            "subject.",
                                        "BadRequest");
          }
        }
        if (same == nullptr && held.size() >= kMaxFederatedCredentials) {
          return InvalidArgumentError("An identity may hold at most " +
                                          std::to_string(kMaxFederatedCredentials) +
                                          " federated identity credentials.",
                                      "BadRequest");
        }
        storage::FederatedCredentialRecord rec;
        rec.principal_object_id = identity.object_id;
        rec.name = same != nullptr ? same->name : name;
        rec.issuer = StringMember(props, "issuer");
        rec.subject = StringMember(props, "subject");
        for (const auto& a : props["audiences"]) {
          rec.audiences.push_back(a.get<std::string>());
        }
        rec.created = same != nullptr ? same->created : clock_.NowSeconds();
        replaced = same != nullptr;
        return rec;
      });
  if (!put.ok()) {
    return ArmError(put.status());
  }
  return http::JsonResponse(replaced ? 200 : 201, ToJson(FederatedToArm(identity, *put)));
}

std::vector<ArmRoute> IdentityManager::Routes() {
  using Handler = http::Response (IdentityManager::*)(const ArmCall&);
  auto route = [this](std::string_view method, std::string_view pattern, std::string_view action,
                      bool collection, Handler handler) {
    return ArmRoute{method, pattern, action, collection,
                    [this, handler](const ArmCall& call) { return (this->*handler)(call); }};
  };
  constexpr std::string_view kOne =
      "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/"
      "userAssignedIdentities/{name}";
  constexpr std::string_view kCredentials =
      "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/"
      "userAssignedIdentities/{name}/federatedIdentityCredentials";
  constexpr std::string_view kCredential =
      "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/"
      "userAssignedIdentities/{name}/federatedIdentityCredentials/{credential}";
  return {
      route("GET",
            "/subscriptions/{sub}/providers/Microsoft.ManagedIdentity/userAssignedIdentities",
            "Microsoft.ManagedIdentity/userAssignedIdentities/read", true, &IdentityManager::List),
      route("GET",
            "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/"
            "userAssignedIdentities",
            "Microsoft.ManagedIdentity/userAssignedIdentities/read", true, &IdentityManager::List),
      route("GET", kOne, "Microsoft.ManagedIdentity/userAssignedIdentities/read", false,
            &IdentityManager::Get),
      route("PUT", kOne, "Microsoft.ManagedIdentity/userAssignedIdentities/write", false,
            &IdentityManager::Put),
      route("PATCH", kOne, "Microsoft.ManagedIdentity/userAssignedIdentities/write", false,
            &IdentityManager::Put),
      route("DELETE", kOne, "Microsoft.ManagedIdentity/userAssignedIdentities/delete", false,
            &IdentityManager::Delete),
      route("GET", kCredentials,
            "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/read",
            true, &IdentityManager::ListFederated),
      route("GET", kCredential,
            "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/read",
            false, &IdentityManager::Federated),
      route("PUT", kCredential,
            "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write",
            false, &IdentityManager::Federated),
      route("DELETE", kCredential,
            "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/delete",
            false, &IdentityManager::Federated),
  };
}

}  // namespace coffer::mgmt
