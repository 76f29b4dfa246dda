#include "mgmt/vault_manager.h"

#include <algorithm>
#include <array>

#include "authz/permissions.h"
#include "common/strings.h"
#include "common/time_format.h"
#include "keyvault/names.h"
#include "mgmt/arm.h"

namespace coffer::mgmt {
namespace {

Status BadRequest(const std::string& message, const std::string& code = "BadRequest") {
  return InvalidArgumentError(message, code);
}

// The identity an access-policy entry names: tenant, object and (for a
// compound identity) application, compared case-insensitively.
bool SameEntry(const storage::AccessPolicyRecord& a, const storage::AccessPolicyRecord& b) {
  return EqualsIgnoreCase(a.tenant_id, b.tenant_id) && EqualsIgnoreCase(a.object_id, b.object_id) &&
         EqualsIgnoreCase(a.application_id, b.application_id);
}

bool HasPermission(const std::vector<std::string>& list, const std::string& name) {
  for (const auto& p : list) {
    if (EqualsIgnoreCase(p, name)) {
      return true;
    }
  }
  return false;
}

using PermissionList = std::optional<std::vector<std::string>>;

// The four permission lists of an entry, in one order.
std::array<PermissionList*, 4> Lists(storage::AccessPolicyRecord& p) {
  return {&p.keys, &p.secrets, &p.certificates, &p.storage};
}

// Applies one entry of an accessPolicies/{kind} request to the list.
void ApplyPolicyEdit(std::vector<storage::AccessPolicyRecord>& policies,
                     storage::AccessPolicyRecord entry, const std::string& kind) {
  auto existing = std::find_if(policies.begin(), policies.end(),
                               [&](const auto& p) { return SameEntry(p, entry); });
  if (kind == "add" || kind == "replace") {
    if (existing == policies.end()) {
      policies.push_back(std::move(entry));
      return;
    }
    auto target = Lists(*existing);
    auto given = Lists(entry);
    for (size_t t = 0; t < target.size(); ++t) {
      if (!*given[t]) {
        continue;
      }
      if (kind == "replace" || !*target[t]) {
        *target[t] = *given[t];
        continue;
      }
      for (const auto& name : **given[t]) {
        if (!HasPermission(**target[t], name)) {
          (*target[t])->push_back(name);
        }
      }
    }
    return;
  }
  // remove: the listed permissions; an entry listing none removes the whole
  // entry, and an entry left with none is dropped.
  if (existing == policies.end()) {
    return;
  }
  bool lists_any = false;
  auto target = Lists(*existing);
  auto given = Lists(entry);
  for (size_t t = 0; t < target.size(); ++t) {
    if (!*given[t] || (*given[t])->empty() || !*target[t]) {
      continue;
    }
    lists_any = true;
    bool all = HasPermission(**given[t], "all");
    std::vector<std::string> kept;
    for (const auto& name : **target[t]) {
      if (!all && !HasPermission(**given[t], name)) {
        kept.push_back(name);
      }
    }
    *target[t] = std::move(kept);
  }
  bool empty = true;
  for (auto* list : target) {
    empty = empty && (!*list || (*list)->empty());
  }
  if (!lists_any || empty) {
    policies.erase(existing);
  }
}

// ApplyVaultBody validates an ARM PUT or PATCH body of a vault and applies
// it to `v`, a new vault's defaults when `create`. PUT and PATCH both keep
// what the body does not mention: every stored property is either
// immutable or defaults to its current value, as in Azure. `api_version`
// picks a new vault's permission model.
Status ApplyVaultBody(const Json& body, bool create, const std::string& api_version,
                      const std::string& tenant_id, storage::VaultRecord& v) {
  const Json no_props = Json::object();
  const Json& in = body.contains("properties") ? body["properties"] : no_props;
  if (!in.is_object()) {
    return BadRequest("'properties' must be an object.", "InvalidRequestContent");
  }
  if (auto it = in.find("tenantId"); it != in.end() && !it->is_null()) {
    if (!it->is_string() || !EqualsIgnoreCase(it->get<std::string>(), tenant_id)) {
      return BadRequest("properties.tenantId must be this installation's tenant '" + tenant_id +
                        "'.");
    }
  }
  v.tenant_id = tenant_id;
  if (auto it = in.find("sku"); it != in.end() && !it->is_null()) {
    std::string sku_name = it->is_object() ? it->value("name", "") : "";
    if (sku_name != "standard" && sku_name != "premium") {
      return BadRequest("properties.sku.name must be 'standard' or 'premium'.");
    }
    v.sku = sku_name;
  }
  // Soft delete is always on.
  if (auto it = in.find("enableSoftDelete"); it != in.end() && !it->is_null()) {
    if (!it->is_boolean() || !it->get<bool>()) {
      return BadRequest("Soft delete cannot be disabled: it is always on for Coffer vaults.");
    }
  }
  // Retention: 7-90 days, fixed at creation.
  if (auto it = in.find("softDeleteRetentionInDays"); it != in.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 7 || it->get<int64_t>() > 90) {
      return BadRequest("properties.softDeleteRetentionInDays must be an integer from 7 to 90.");
    }
    int requested = it->get<int>();
    if (!create && requested != v.retention_days) {
      return BadRequest(
          "The property softDeleteRetentionInDays cannot be changed after the vault is "
          "created.");
    }
    v.retention_days = requested;
  }
  // Purge protection: once on, never off.
  if (auto it = in.find("enablePurgeProtection"); it != in.end() && !it->is_null()) {
    if (!it->is_boolean()) {
      return BadRequest("properties.enablePurgeProtection must be a boolean.");
    }
    if (v.purge_protection && !it->get<bool>()) {
      return BadRequest("Purge protection cannot be disabled once it has been enabled on a vault.");
    }
    v.purge_protection = v.purge_protection || it->get<bool>();
  }
  // New vaults use Azure RBAC from api-version 2026-02-01 on, access
  // policies before, as in Azure.
  if (create) {
    v.rbac_authorization = api_version >= "2026-02-01";
  }
  if (auto it = in.find("enableRbacAuthorization"); it != in.end() && !it->is_null()) {
    if (!it->is_boolean()) {
      return BadRequest("properties.enableRbacAuthorization must be a boolean.");
    }
    v.rbac_authorization = it->get<bool>();
  }
  if (auto it = in.find("accessPolicies"); it != in.end() && !it->is_null()) {
    ASSIGN_OR_RETURN(v.access_policies, authz::ParseAccessPolicies(*it));
  }
  if (auto it = body.find("tags"); it != body.end() && !it->is_null()) {
    RETURN_IF_ERROR(CheckArmTags(*it));
    v.tags_json = ToJson(*it);
  }
  if (auto it = body.find("location"); it != body.end() && !it->is_null()) {
    if (!it->is_string() || it->get<std::string>().empty()) {
      return BadRequest("location must be a non-empty string.", "LocationRequired");
    }
    v.location = it->get<std::string>();
  }
  return OkStatus();
}

}  // namespace

VaultManager::VaultManager(ManagementConfig config, storage::Store& store,
                           const keyvault::Envelope& envelope, keyvault::VaultRegistry& registry,
                           const Clock& clock)
    : config_(std::move(config)),
      store_(store),
      envelope_(envelope),
      registry_(registry),
      clock_(clock) {}

std::string VaultManager::ResourceId(const storage::VaultRecord& v) const {
  return "/subscriptions/" + v.subscription_id + "/resourceGroups/" + v.resource_group +
         "/providers/Microsoft.KeyVault/vaults/" + v.name;
}

Json VaultManager::ToArm(const storage::VaultRecord& v) const {
  Json props = {{"tenantId", v.tenant_id},
                {"sku", {{"family", "A"}, {"name", v.sku}}},
                {"enableSoftDelete", true},
                {"softDeleteRetentionInDays", v.retention_days},
                {"enableRbacAuthorization", v.rbac_authorization},
                {"accessPolicies", authz::AccessPoliciesToArm(v.access_policies)},
                {"vaultUri", "https://" + AsciiLower(v.name) + config_.vault_host_suffix},
                {"provisioningState", "Succeeded"}};
  if (v.purge_protection) {
    props["enablePurgeProtection"] = true;
  }
  Json tags = ParseJson(v.tags_json).value_or(Json::object());
  return Json{{"id", ResourceId(v)},    {"name", v.name}, {"type", "Microsoft.KeyVault/vaults"},
              {"location", v.location}, {"tags", tags},   {"properties", props}};
}

StatusOr<std::pair<storage::VaultRecord, bool>> VaultManager::CreateOrUpdate(
    const std::string& resource_group, const std::string& name, const Json& body,
    const std::string& api_version, const Precondition& precondition) {
  RETURN_IF_ERROR(keyvault::ValidateVaultName(name));
  if (!ValidResourceGroup(resource_group)) {
    return BadRequest("Resource group name '" + resource_group + "' is invalid.",
                      "InvalidResourceGroupName");
  }
  if (!body.is_object()) {
    return BadRequest("The request body must be a JSON object.", "InvalidRequestContent");
  }
  std::string create_mode = "default";
  const Json& in = body.value("properties", Json::object());
  if (auto it = in.is_object() ? in.find("createMode") : in.end();
      in.is_object() && it != in.end() && !it->is_null()) {
    if (!it->is_string() ||
        (it->get<std::string>() != "default" && it->get<std::string>() != "recover")) {
      return BadRequest("properties.createMode must be 'default' or 'recover'.");
    }
    create_mode = it->get<std::string>();
  }
  auto in_group = [&](const storage::VaultRecord& v) -> Status {
    if (!EqualsIgnoreCase(v.resource_group, resource_group)) {
      return AlreadyExistsError("The vault name '" + name + "' is already in use.",
                                "VaultAlreadyExists");
    }
    return OkStatus();
  };
  // A create that loses a race with another create of the same name
  // becomes an update of the vault the other one made.
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto existing = store_.GetVault(name);
    if (!existing.ok() && existing.status().code() != StatusCode::kNotFound) {
      return existing.status();
    }
    if (!existing.ok()) {
      if (create_mode == "recover") {
        return BadRequest("There is no deleted vault named '" + name + "' to recover.");
      }
      RETURN_IF_ERROR(precondition(std::nullopt));
      int64_t now = clock_.NowSeconds();
      storage::VaultRecord rec;
      rec.name = name;
      rec.subscription_id = config_.subscription_id;
      rec.resource_group = resource_group;
      rec.location = config_.default_location;
      rec.created = rec.updated = now;
      RETURN_IF_ERROR(ApplyVaultBody(body, true, api_version, config_.tenant_id, rec));
      rec.wrapped_data_key = envelope_.NewWrappedDataKey(name);
      Status created = store_.CreateVault(rec);
      if (created.code() == StatusCode::kAlreadyExists) {
        continue;
      }
      RETURN_IF_ERROR(created);
      registry_.Invalidate(name);
      rec.version = 1;
      return std::make_pair(rec, true);
    }
    RETURN_IF_ERROR(in_group(*existing));
    if (create_mode == "recover") {
      if (!existing->deleted()) {
        return BadRequest("There is no deleted vault named '" + name + "' to recover.");
      }
      // A recovery brings the vault back as it was; the body then patches it.
      RETURN_IF_ERROR(store_.RecoverVault(existing->name));
      registry_.Invalidate(existing->name);
    } else if (existing->deleted()) {
      return AlreadyExistsError("A vault named '" + name +
                                    "' exists in the deleted state. Recover it with createMode "
                                    "'recover' or purge it before reusing the name.",
                                "ConflictError");
    }
    auto updated = store_.UpdateVault(name, [&](storage::VaultRecord& v) -> Status {
      RETURN_IF_ERROR(in_group(v));
      RETURN_IF_ERROR(precondition(v.version));
      RETURN_IF_ERROR(ApplyVaultBody(body, false, api_version, config_.tenant_id, v));
      v.updated = clock_.NowSeconds();
      return OkStatus();
    });
    registry_.Invalidate(name);
    RETURN_IF_ERROR(updated.status());
    return std::make_pair(*updated, false);
  }
  return AbortedError("The vault '" + name + "' changed while it was being created; try again.",
                      "Conflict");
}

Json VaultManager::ToArmDeleted(const storage::VaultRecord& v) const {
  return Json{
      {"id", "/subscriptions/" + v.subscription_id + "/providers/Microsoft.KeyVault/locations/" +
                 v.location + "/deletedVaults/" + v.name},
      {"name", v.name},
      {"type", "Microsoft.KeyVault/deletedVaults"},
      {"properties",
       {{"vaultId", ResourceId(v)},
        {"location", v.location},
        {"deletionDate", FormatIsoTime(v.deleted_date)},
        {"scheduledPurgeDate", FormatIsoTime(v.scheduled_purge_date)},
        {"tags", ParseJson(v.tags_json).value_or(Json::object())},
        {"purgeProtectionEnabled", v.purge_protection}}}};
}

StatusOr<int> VaultManager::PurgeExpired() {
  auto purged = store_.PurgeExpiredVaults(clock_.NowSeconds());
  if (purged.ok() && *purged > 0) {
    registry_.InvalidateAll();
  }
  return purged;
}

http::Response VaultManager::ListDeleted(const ArmCall&) {
  auto vaults = store_.ListVaults();
  if (!vaults.ok()) {
    return ArmError(vaults.status());
  }
  Json items = Json::array();
  for (const auto& v : *vaults) {
    if (v.deleted()) {
      items.push_back(ToArmDeleted(v));
    }
  }
  return http::JsonResponse(200, ToJson(Json{{"value", items}}));
}

StatusOr<storage::VaultRecord> VaultManager::FindDeleted(const ArmCall& call) {
  std::string name(call.params.Get("name"));
  std::string location(call.params.Get("location"));
  auto v = store_.GetVault(name);
  if (!v.ok() || !v->deleted() || !EqualsIgnoreCase(v->location, location)) {
    if (v.ok() || v.status().code() == StatusCode::kNotFound) {
      return NotFoundError(
          "Deleted vault '" + name + "' was not found in location '" + location + "'.",
          "DeletedVaultNotFound");
    }
    return v.status();
  }
  return v;
}

http::Response VaultManager::GetDeleted(const ArmCall& call) {
  auto v = FindDeleted(call);
  return v.ok() ? http::JsonResponse(200, ToJson(ToArmDeleted(*v))) : ArmError(v.status());
}

http::Response VaultManager::PurgeDeleted(const ArmCall& call) {
  auto v = FindDeleted(call);
  if (!v.ok()) {
    return ArmError(v.status());
  }
  // SECURITY: purge protection holds a deleted vault, and everything in it,
  // until its scheduled purge date; nobody can purge it earlier.
  if (v->purge_protection && clock_.NowSeconds() < v->scheduled_purge_date) {
    return http::ErrorResponse(409, "Conflict",
                               "Vault '" + v->name +
                                   "' has purge protection enabled and cannot be purged "
                                   "before " +
                                   FormatIsoTime(v->scheduled_purge_date) + ".");
  }
  Status purged = store_.PurgeVault(v->name);
  registry_.Invalidate(v->name);
  if (!purged.ok()) {
    return ArmError(purged);
  }
  if (config_.on_vault_purged) {
    config_.on_vault_purged();
  }
  return http::EmptyResponse(200);
}

http::Response VaultManager::EditAccessPolicies(const ArmCall& call) {
  // PUT .../vaults/{name}/accessPolicies/{add|replace|remove}
  const http::Request& req = call.request;
  const std::string rg(call.params.Get("rg"));
  const std::string name(call.params.Get("name"));
  std::string kind = AsciiLower(call.params.Get("kind"));
  if (kind != "add" && kind != "replace" && kind != "remove") {
    return http::ErrorResponse(400, "BadRequest",
                               "The access policy operation must be add, replace or remove.");
  }
  auto body = ParseJson(req.body);
  if (!body || !body->is_object() || !body->contains("properties") ||
      !(*body)["properties"].is_object() || !(*body)["properties"].contains("accessPolicies")) {
    return http::ErrorResponse(
        400, "InvalidRequestContent",
        "The request content must be {\"properties\":{\"accessPolicies\":[...]}}.");
  }
  auto edits = authz::ParseAccessPolicies((*body)["properties"]["accessPolicies"]);
  if (!edits.ok()) {
    return ArmError(edits.status());
  }
  for (const auto& e : *edits) {
    if (!EqualsIgnoreCase(e.tenant_id, config_.tenant_id)) {
      return http::ErrorResponse(
          400, "BadRequest",
          "Access policy tenantId must be this installation's tenant '" + config_.tenant_id + "'.");
    }
  }
  auto updated = store_.UpdateVault(name, [&](storage::VaultRecord& v) -> Status {
    if (!EqualsIgnoreCase(v.resource_group, rg)) {
      return NotFoundError("The Resource 'Microsoft.KeyVault/vaults/" + name +
                               "' under resource group '" + rg + "' was not found.",
                           "ResourceNotFound");
    }
    RETURN_IF_ERROR(CheckPreconditions(req, v.version));
    if (v.rbac_authorization) {
      return InvalidArgumentError(
          "Vault '" + v.name +
              "' uses the Azure role-based access control permission model; its access "
              "policies cannot be changed. Use role assignments, or switch the vault to access "
              "policies.",
          "BadRequest");
    }
    for (const auto& e : *edits) {
      ApplyPolicyEdit(v.access_policies, e, kind);
    }
    if (v.access_policies.size() > authz::kMaxAccessPolicies) {
      // Nothing is written.
      return InvalidArgumentError(
          "A vault may have at most 1024 access policies; this change "
          "would leave " +
              std::to_string(v.access_policies.size()) + ".",
          "BadRequest");
    }
    v.updated = clock_.NowSeconds();
    return OkStatus();
  });
  registry_.Invalidate(name);
  if (!updated.ok()) {
    if (updated.status().code() == StatusCode::kNotFound && updated.status().reason().empty()) {
      return http::ErrorResponse(404, "ResourceNotFound",
                                 "The Resource 'Microsoft.KeyVault/vaults/" + name +
                                     "' under resource group '" + rg + "' was not found.");
    }
    return ArmError(updated.status());
  }
  const storage::VaultRecord& v = *updated;
  http::Response r = http::JsonResponse(
      200, ToJson(Json{{"id", ResourceId(v) + "/accessPolicies/" + kind},
                       {"name", kind},
                       {"type", "Microsoft.KeyVault/vaults/accessPolicies"},
                       {"location", v.location},
                       {"properties",
                        {{"accessPolicies", authz::AccessPoliciesToArm(v.access_policies)}}}}));
  r.SetHeader("ETag", ETag(v.version));
  return r;
}

http::Response VaultManager::List(const ArmCall& call) {
  std::string_view rg = call.params.Get("rg");
  auto vaults = store_.ListVaults();
  if (!vaults.ok()) {
    return ArmError(vaults.status());
  }
  Json items = Json::array();
  for (const auto& v : *vaults) {
    if (v.deleted() || (!rg.empty() && !EqualsIgnoreCase(v.resource_group, rg))) {
      continue;
    }
    items.push_back(ToArm(v));
  }
  return http::JsonResponse(200, ToJson(Json{{"value", items}}));
}

http::Response VaultManager::ListResources(const ArmCall& call) {
  std::string filter(TrimWhitespace(call.request.Query("$filter")));
  if (!filter.empty() && !EqualsIgnoreCase(filter, "resourceType eq 'Microsoft.KeyVault/vaults'")) {
    return http::ErrorResponse(400, "InvalidFilterInQueryString",
                               "Coffer lists resources of one type: $filter=resourceType eq "
                               "'Microsoft.KeyVault/vaults'.");
  }
  auto vaults = store_.ListVaults();
  if (!vaults.ok()) {
    return ArmError(vaults.status());
  }
  Json items = Json::array();
  for (const auto& v : *vaults) {
    if (v.deleted()) {
      continue;
    }
    Json vault = ToArm(v);
    items.push_back({{"id", vault["id"]},
                     {"name", vault["name"]},
                     {"type", vault["type"]},
                     {"location", vault["location"]},
                     {"tags", vault.value("tags", Json::object())}});
  }
  return http::JsonResponse(200, ToJson(Json{{"value", items}}));
}

http::Response VaultManager::ListNone(const ArmCall&) {
  return http::JsonResponse(200, R"({"value":[]})");
}

StatusOr<storage::VaultRecord> VaultManager::FindLive(const ArmCall& call) {
  std::string rg(call.params.Get("rg"));
  std::string name(call.params.Get("name"));
  auto v = store_.GetVault(name);
  if (!v.ok() && v.status().code() != StatusCode::kNotFound) {
    return v.status();
  }
  if (!v.ok() || v->deleted() || !EqualsIgnoreCase(v->resource_group, rg)) {
    return NotFoundError("The Resource 'Microsoft.KeyVault/vaults/" + name +
                             "' under resource group '" + rg + "' was not found.",
                         "ResourceNotFound");
  }
  return v;
}

http::Response VaultManager::Get(const ArmCall& call) {
  auto v = FindLive(call);
  if (!v.ok()) {
    return ArmError(v.status());
  }
  http::Response r = http::JsonResponse(200, ToJson(ToArm(*v)));
  r.SetHeader("ETag", ETag(v->version));
  return r;
}

http::Response VaultManager::Delete(const ArmCall& call) {
  auto v = FindLive(call);
  if (!v.ok()) {
    return v.status().code() == StatusCode::kNotFound ? http::EmptyResponse(204)
                                                      : ArmError(v.status());
  }
  if (Status pre = CheckPreconditions(call.request, v->version); !pre.ok()) {
    return ArmError(pre);
  }
  // Vaults are soft-deleted, as in Azure: the name stays reserved and the
  // contents recoverable for the retention period.
  int64_t now = clock_.NowSeconds();
  Status deleted = store_.MarkVaultDeleted(v->name, now, now + int64_t{v->retention_days} * 86400);
  registry_.Invalidate(v->name);
  if (config_.on_assignments_changed) {
    config_.on_assignments_changed();  // the vault's role assignments went with it
  }
  if (!deleted.ok()) {
    return ArmError(deleted);
  }
  return http::EmptyResponse(200);
}

http::Response VaultManager::Put(const ArmCall& call) {
  const http::Request& req = call.request;
  std::string rg(call.params.Get("rg"));
  std::string name(call.params.Get("name"));
  auto body = ParseJson(req.body);
  if (!body || !body->is_object()) {
    return http::ErrorResponse(400, "InvalidRequestContent",
                               "The request content is not a JSON object.");
  }
  Precondition precondition = PreconditionOf(req);
  if (req.method == "PATCH") {
    auto live = FindLive(call);
    if (!live.ok()) {
      return ArmError(live.status());
    }
    // PATCH never creates: a vault that is gone by the time the change is
    // written fails its precondition.
    precondition = [&req, &name, &rg](std::optional<int64_t> version) -> Status {
      if (!version) {
        return NotFoundError("The Resource 'Microsoft.KeyVault/vaults/" + name +
                                 "' under resource group '" + rg + "' was not found.",
                             "ResourceNotFound");
      }
      return CheckPreconditions(req, version);
    };
  }
  auto result =
      CreateOrUpdate(rg, name, *body, std::string(req.Query("api-version")), precondition);
  if (!result.ok()) {
    return ArmError(result.status());
  }
  http::Response r = http::JsonResponse(result->second ? 201 : 200, ToJson(ToArm(result->first)));
  r.SetHeader("ETag", ETag(result->first.version));
  return r;
}

std::vector<ArmRoute> VaultManager::Routes() {
  using Handler = http::Response (VaultManager::*)(const ArmCall&);
  auto route = [this](std::string_view method, std::string_view pattern, std::string_view action,
                      bool collection, Handler handler) {
    return ArmRoute{method, pattern, action, collection,
                    [this, handler](const ArmCall& call) { return (this->*handler)(call); }};
  };
  constexpr std::string_view kVault =
      "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{name}";
  return {
      route("GET", "/subscriptions/{sub}/providers/Microsoft.KeyVault/vaults",
            "Microsoft.KeyVault/vaults/read", true, &VaultManager::List),
      route("GET", "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults",
            "Microsoft.KeyVault/vaults/read", true, &VaultManager::List),
      // A caller that may not read the subscription's resources sees the
      // vaults it may read (the plane filters the list).
      route("GET", "/subscriptions/{sub}/resources",
            "Microsoft.Resources/subscriptions/resources/read", true, &VaultManager::ListResources),
      route("GET", kVault, "Microsoft.KeyVault/vaults/read", false, &VaultManager::Get),
      route("PUT", kVault, "Microsoft.KeyVault/vaults/write", false, &VaultManager::Put),
      route("PATCH", kVault, "Microsoft.KeyVault/vaults/write", false, &VaultManager::Put),
      route("DELETE", kVault, "Microsoft.KeyVault/vaults/delete", false, &VaultManager::Delete),
      route("PUT",
            "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{name}/"
            "accessPolicies/{kind}",
            "Microsoft.KeyVault/vaults/accessPolicies/write", false,
            &VaultManager::EditAccessPolicies),
      route("GET", "/subscriptions/{sub}/providers/Microsoft.KeyVault/managedHSMs",
            "Microsoft.KeyVault/managedHSMs/read", true, &VaultManager::ListNone),
      route("GET",
            "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/managedHSMs",
            "Microsoft.KeyVault/managedHSMs/read", true, &VaultManager::ListNone),
      route("GET", "/subscriptions/{sub}/providers/Microsoft.KeyVault/deletedManagedHSMs",
            "Microsoft.KeyVault/deletedManagedHSMs/read", true, &VaultManager::ListNone),
      route("GET", "/subscriptions/{sub}/providers/Microsoft.KeyVault/deletedVaults",
            "Microsoft.KeyVault/deletedVaults/read", true, &VaultManager::ListDeleted),
      route("GET",
            "/subscriptions/{sub}/providers/Microsoft.KeyVault/locations/{location}/"
            "deletedVaults/{name}",
            "Microsoft.KeyVault/locations/deletedVaults/read", false, &VaultManager::GetDeleted),
      route("POST",
            "/subscriptions/{sub}/providers/Microsoft.KeyVault/locations/{location}/"
            "deletedVaults/{name}/purge",
            "Microsoft.KeyVault/locations/deletedVaults/purge/action", false,
            &VaultManager::PurgeDeleted),
  };
}

}  // namespace coffer::mgmt
