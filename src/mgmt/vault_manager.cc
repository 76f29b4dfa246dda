#include "mgmt/vault_manager.h"

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
bool SameEntry(const Json& a, const Json& b) {
  return EqualsIgnoreCase(StringMember(a, "tenantId"), StringMember(b, "tenantId")) &&
         EqualsIgnoreCase(StringMember(a, "objectId"), StringMember(b, "objectId")) &&
         EqualsIgnoreCase(StringMember(a, "applicationId"), StringMember(b, "applicationId"));
}

bool HasPermission(const Json& list, const std::string& name) {
  for (const auto& p : list) {
    if (p.is_string() && EqualsIgnoreCase(p.get<std::string>(), name)) {
      return true;
    }
  }
  return false;
}

// Applies one entry of an accessPolicies/{kind} request to the list.
void ApplyPolicyEdit(Json& policies, const Json& entry, const std::string& kind) {
  Json* existing = nullptr;
  for (auto& p : policies) {
    if (SameEntry(p, entry)) {
      existing = &p;
      break;
    }
  }
  const Json& perms = entry["permissions"];
  if (kind == "add" || kind == "replace") {
    if (existing == nullptr) {
      policies.push_back(entry);
      return;
    }
    Json& target = (*existing)["permissions"];
    for (const auto& [type, list] : perms.items()) {
      if (list.is_null()) {
        continue;
      }
      if (kind == "replace" || !target.contains(type) || !target[type].is_array()) {
        target[type] = list;
        continue;
      }
      for (const auto& name : list) {
        if (!HasPermission(target[type], name.get<std::string>())) {
          target[type].push_back(name);
        }
      }
    }
    return;
  }
  // remove: the listed permissions; an entry listing none removes the whole
  // entry, and an entry left with none is dropped.
  if (existing == nullptr) {
    return;
  }
  bool lists_any = false;
  Json& target = (*existing)["permissions"];
  for (const auto& [type, list] : perms.items()) {
    if (!list.is_array() || list.empty() || !target.contains(type) || !target[type].is_array()) {
      continue;
    }
    lists_any = true;
    bool all = HasPermission(list, "all");
    Json kept = Json::array();
    for (const auto& name : target[type]) {
      if (!all && !HasPermission(list, name.get<std::string>())) {
        kept.push_back(name);
      }
    }
    target[type] = kept;
  }
  bool empty = true;
  for (const auto& [type, list] : target.items()) {
    empty = empty && (!list.is_array() || list.empty());
  }
  if (!lists_any || empty) {
    for (size_t i = 0; i < policies.size(); ++i) {
      if (&policies[i] == existing) {
        policies.erase(i);
        break;
      }
    }
  }
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
  Json props = ParseJson(v.properties_json).value_or(Json::object());
  props["vaultUri"] = "https://" + AsciiLower(v.name) + config_.vault_host_suffix;
  props["provisioningState"] = "Succeeded";
  Json tags = ParseJson(v.tags_json).value_or(Json::object());
  return Json{{"id", ResourceId(v)},    {"name", v.name}, {"type", "Microsoft.KeyVault/vaults"},
              {"location", v.location}, {"tags", tags},   {"properties", props}};
}

StatusOr<std::pair<storage::VaultRecord, bool>> VaultManager::CreateOrUpdate(
    const std::string& resource_group, const std::string& name, const Json& body, bool replace,
    const std::string& api_version) {
  RETURN_IF_ERROR(keyvault::ValidateVaultName(name));
  if (!ValidResourceGroup(resource_group)) {
    return BadRequest("Resource group name '" + resource_group + "' is invalid.",
                      "InvalidResourceGroupName");
  }
  if (!body.is_object()) {
    return BadRequest("The request body must be a JSON object.", "InvalidRequestContent");
  }
  auto existing = store_.GetVault(name);
  if (!existing.ok() && existing.status().code() != StatusCode::kNotFound) {
    return existing.status();
  }
  bool create = !existing.ok();
  if (!create && !EqualsIgnoreCase(existing->resource_group, resource_group)) {
    return AlreadyExistsError("The vault name '" + name + "' is already in use.",
                              "VaultAlreadyExists");
  }
  const Json no_props = Json::object();
  const Json& in = body.contains("properties") ? body["properties"] : no_props;
  if (!in.is_object()) {
    return BadRequest("'properties' must be an object.", "InvalidRequestContent");
  }
  std::string create_mode = "default";
  if (auto it = in.find("createMode"); it != in.end() && !it->is_null()) {
    if (!it->is_string() ||
        (it->get<std::string>() != "default" && it->get<std::string>() != "recover")) {
      return BadRequest("properties.createMode must be 'default' or 'recover'.");
    }
    create_mode = it->get<std::string>();
  }
  if (create_mode == "recover") {
    if (create || !existing->deleted()) {
      return BadRequest("There is no deleted vault named '" + name + "' to recover.");
    }
    RETURN_IF_ERROR(store_.RecoverVault(existing->name));
    registry_.Invalidate(existing->name);
    existing->deleted_date = existing->scheduled_purge_date = 0;
    replace = false;  // a recovery brings the vault back as it was
  } else if (!create && existing->deleted()) {
    return AlreadyExistsError("A vault named '" + name +
                                  "' exists in the deleted state. Recover it with createMode "
                                  "'recover' or purge it before reusing the name.",
                              "ConflictError");
  }
  Json props = create || replace ? Json::object()
                                 : ParseJson(existing->properties_json).value_or(Json::object());
  Json old = create ? Json::object() : ParseJson(existing->properties_json).value_or(Json());

  // tenantId
  if (auto it = in.find("tenantId"); it != in.end() && !it->is_null()) {
    if (!it->is_string() || !EqualsIgnoreCase(it->get<std::string>(), config_.tenant_id)) {
      return BadRequest("properties.tenantId must be this installation's tenant '" +
                        config_.tenant_id + "'.");
    }
  }
  props["tenantId"] = config_.tenant_id;
  // sku
  Json sku = {{"family", "A"}, {"name", "standard"}};
  if (auto it = in.find("sku"); it != in.end() && !it->is_null()) {
    std::string sku_name = it->is_object() ? it->value("name", "") : "";
    if (sku_name != "standard" && sku_name != "premium") {
      return BadRequest("properties.sku.name must be 'standard' or 'premium'.");
    }
    sku["name"] = sku_name;
  } else if (!create && old.contains("sku")) {
    sku = old["sku"];
  }
  props["sku"] = sku;
  // Soft delete is always on.
  if (auto it = in.find("enableSoftDelete"); it != in.end() && !it->is_null()) {
    if (!it->is_boolean() || !it->get<bool>()) {
      return BadRequest("Soft delete cannot be disabled: it is always on for Coffer vaults.");
    }
  }
  props["enableSoftDelete"] = true;
  // Retention: 7-90 days, fixed at creation.
  int old_retention = old.is_object() ? old.value("softDeleteRetentionInDays", 90) : 90;
  int retention = create ? 90 : old_retention;
  if (auto it = in.find("softDeleteRetentionInDays"); it != in.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 7 || it->get<int64_t>() > 90) {
      return BadRequest("properties.softDeleteRetentionInDays must be an integer from 7 to 90.");
    }
    int requested = it->get<int>();
    if (!create && requested != old_retention) {
      return BadRequest(
          "The property softDeleteRetentionInDays cannot be changed after the vault is "
          "created.");
    }
    retention = requested;
  }
  props["softDeleteRetentionInDays"] = retention;
  // Purge protection: once on, never off.
  bool old_purge = old.is_object() && old.value("enablePurgeProtection", false) == true;
  bool purge = old_purge;
  if (auto it = in.find("enablePurgeProtection"); it != in.end() && !it->is_null()) {
    if (!it->is_boolean()) {
      return BadRequest("properties.enablePurgeProtection must be a boolean.");
    }
    if (old_purge && !it->get<bool>()) {
      return BadRequest("Purge protection cannot be disabled once it has been enabled on a vault.");
    }
    purge = purge || it->get<bool>();
  }
  if (purge) {
    props["enablePurgeProtection"] = true;
  } else {
    props.erase("enablePurgeProtection");
  }
  // RBAC switch.
  // New vaults use Azure RBAC from api-version 2026-02-01 on, access
  // policies before, as in Azure.
  bool rbac = create ? api_version >= "2026-02-01"
                     : old.is_object() && old.value("enableRbacAuthorization", false) == true;
  if (auto it = in.find("enableRbacAuthorization"); it != in.end() && !it->is_null()) {
    if (!it->is_boolean()) {
      return BadRequest("properties.enableRbacAuthorization must be a boolean.");
    }
    rbac = it->get<bool>();
  }
  props["enableRbacAuthorization"] = rbac;
  // Access policies.
  if (auto it = in.find("accessPolicies"); it != in.end() && !it->is_null()) {
    RETURN_IF_ERROR(authz::CompileAccessPolicies(*it).status());
    props["accessPolicies"] = *it;
  } else if (!props.contains("accessPolicies")) {
    props["accessPolicies"] =
        old.is_object() && old.contains("accessPolicies") ? old["accessPolicies"] : Json::array();
  }
  // Tags and location.
  Json tags = create ? Json::object() : ParseJson(existing->tags_json).value_or(Json::object());
  if (auto it = body.find("tags"); it != body.end() && !it->is_null()) {
    RETURN_IF_ERROR(CheckArmTags(*it));
    tags = *it;
  }
  std::string location = create ? config_.default_location : existing->location;
  if (auto it = body.find("location"); it != body.end() && !it->is_null()) {
    if (!it->is_string() || it->get<std::string>().empty()) {
      return BadRequest("location must be a non-empty string.", "LocationRequired");
    }
    location = it->get<std::string>();
  }
  // Derived and read-only properties are never stored.
  props.erase("vaultUri");
  props.erase("provisioningState");
  props.erase("createMode");

  int64_t now = clock_.NowSeconds();
  storage::VaultRecord rec = create ? storage::VaultRecord() : *existing;
  rec.location = location;
  rec.tenant_id = config_.tenant_id;
  rec.properties_json = ToJson(props);
  rec.tags_json = ToJson(tags);
  rec.updated = now;
  if (create) {
    rec.name = name;
    rec.subscription_id = config_.subscription_id;
    rec.resource_group = resource_group;
    rec.created = now;
    rec.wrapped_data_key = envelope_.NewWrappedDataKey(name);
    RETURN_IF_ERROR(store_.CreateVault(rec));
  } else {
    RETURN_IF_ERROR(store_.UpdateVault(rec));
  }
  registry_.Invalidate(name);
  return std::make_pair(rec, create);
}

Json VaultManager::ToArmDeleted(const storage::VaultRecord& v) const {
  auto props = keyvault::ParseVaultSettings(v.properties_json);
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
        {"purgeProtectionEnabled", props.purge_protection}}}};
}

StatusOr<int> VaultManager::PurgeExpired() {
  auto purged = store_.PurgeExpiredVaults(clock_.NowSeconds());
  if (purged.ok() && *purged > 0) {
    registry_.InvalidateAll();
  }
  return purged;
}

std::optional<http::Response> VaultManager::HandleDeleted(const http::Request& req) {
  // subscriptions/{s}/providers/Microsoft.KeyVault/deletedVaults
  // subscriptions/{s}/providers/Microsoft.KeyVault/locations/{l}/deletedVaults/{name}[/purge]
  const auto& seg = req.segments;
  bool list = seg.size() == 5 && EqualsIgnoreCase(seg[4], "deletedVaults");
  bool one = (seg.size() == 8 || seg.size() == 9) && EqualsIgnoreCase(seg[4], "locations") &&
             EqualsIgnoreCase(seg[6], "deletedVaults");
  if (!list && !one) {
    return std::nullopt;
  }
  if (list) {
    if (req.method != "GET") {
      return http::ErrorResponse(405, "MethodNotAllowed", "Only GET is allowed on deletedVaults.");
    }
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
  const std::string& name = seg[7];
  auto v = store_.GetVault(name);
  if (!v.ok() || !v->deleted() || !EqualsIgnoreCase(v->location, seg[5])) {
    if (v.ok() || v.status().code() == StatusCode::kNotFound) {
      return http::ErrorResponse(
          404, "DeletedVaultNotFound",
          "Deleted vault '" + name + "' was not found in location '" + seg[5] + "'.");
    }
    return ArmError(v.status());
  }
  if (seg.size() == 8) {
    if (req.method != "GET") {
      return http::ErrorResponse(405, "MethodNotAllowed",
                                 "Only GET is allowed on a deleted vault.");
    }
    return http::JsonResponse(200, ToJson(ToArmDeleted(*v)));
  }
  if (!EqualsIgnoreCase(seg[8], "purge") || req.method != "POST") {
    return http::ErrorResponse(404, "NotFound", "Unknown operation on a deleted vault.");
  }
  // SECURITY: purge protection holds a deleted vault, and everything in it,
  // until its scheduled purge date; nobody can purge it earlier.
  if (keyvault::ParseVaultSettings(v->properties_json).purge_protection &&
      clock_.NowSeconds() < v->scheduled_purge_date) {
    return http::ErrorResponse(409, "Conflict",
                               "Vault '" + name +
                                   "' has purge protection enabled and cannot be purged "
                                   "before " +
                                   FormatIsoTime(v->scheduled_purge_date) + ".");
  }
  Status purged = store_.PurgeVault(v->name);
  registry_.Invalidate(v->name);
  if (!purged.ok()) {
    return ArmError(purged);
  }
  return http::EmptyResponse(200);
}

http::Response VaultManager::HandleAccessPolicies(const http::Request& req) {
  // PUT .../vaults/{name}/accessPolicies/{add|replace|remove}
  const auto& seg = req.segments;
  const std::string& rg = seg[3];
  const std::string& name = seg[7];
  std::string kind = AsciiLower(seg[9]);
  if (kind != "add" && kind != "replace" && kind != "remove") {
    return http::ErrorResponse(400, "BadRequest",
                               "The access policy operation must be add, replace or remove.");
  }
  if (req.method != "PUT") {
    return http::ErrorResponse(405, "MethodNotAllowed",
                               "Only PUT is allowed on a vault's access policies.");
  }
  auto body = ParseJson(req.body);
  if (!body || !body->is_object() || !body->contains("properties") ||
      !(*body)["properties"].is_object() || !(*body)["properties"].contains("accessPolicies")) {
    return http::ErrorResponse(
        400, "InvalidRequestContent",
        "The request content must be {\"properties\":{\"accessPolicies\":[...]}}.");
  }
  const Json& edits = (*body)["properties"]["accessPolicies"];
  if (auto valid = authz::CompileAccessPolicies(edits); !valid.ok()) {
    return ArmError(valid.status());
  }
  for (const auto& e : edits) {
    if (!EqualsIgnoreCase(StringMember(e, "tenantId"), config_.tenant_id)) {
      return http::ErrorResponse(
          400, "BadRequest",
          "Access policy tenantId must be this installation's tenant '" + config_.tenant_id + "'.");
    }
  }
  auto v = store_.GetVault(name);
  if (!v.ok() || v->deleted() || !EqualsIgnoreCase(v->resource_group, rg)) {
    if (v.ok() || v.status().code() == StatusCode::kNotFound) {
      return http::ErrorResponse(404, "ResourceNotFound",
                                 "The Resource 'Microsoft.KeyVault/vaults/" + name +
                                     "' under resource group '" + rg + "' was not found.");
    }
    return ArmError(v.status());
  }
  Json props = ParseJson(v->properties_json).value_or(Json::object());
  if (props.value("enableRbacAuthorization", false) == true) {
    return http::ErrorResponse(
        400, "BadRequest",
        "Vault '" + v->name +
            "' uses the Azure role-based access control permission model; its access policies "
            "cannot be changed. Use role assignments, or switch the vault to access policies.");
  }
  Json policies = props.contains("accessPolicies") && props["accessPolicies"].is_array()
                      ? props["accessPolicies"]
                      : Json::array();
  for (const auto& e : edits) {
    ApplyPolicyEdit(policies, e, kind);
  }
  if (auto valid = authz::CompileAccessPolicies(policies); !valid.ok()) {
    return ArmError(valid.status());  // e.g. more than 1024 entries: nothing is written
  }
  props["accessPolicies"] = policies;
  v->properties_json = ToJson(props);
  v->updated = clock_.NowSeconds();
  Status updated = store_.UpdateVault(*v);
  registry_.Invalidate(v->name);
  if (!updated.ok()) {
    return ArmError(updated);
  }
  return http::JsonResponse(200, ToJson(Json{{"id", ResourceId(*v) + "/accessPolicies/" + kind},
                                             {"name", kind},
                                             {"type", "Microsoft.KeyVault/vaults/accessPolicies"},
                                             {"location", v->location},
                                             {"properties", {{"accessPolicies", policies}}}}));
}

std::optional<http::Response> VaultManager::Handle(const http::Request& req) {
  const auto& seg = req.segments;
  if (seg.size() < 2 || !EqualsIgnoreCase(seg[0], "subscriptions")) {
    return std::nullopt;
  }
  bool by_rg = seg.size() >= 7 && EqualsIgnoreCase(seg[2], "resourceGroups") &&
               EqualsIgnoreCase(seg[4], "providers") &&
               EqualsIgnoreCase(seg[5], "Microsoft.KeyVault") && EqualsIgnoreCase(seg[6], "vaults");
  bool by_sub = seg.size() == 5 && EqualsIgnoreCase(seg[2], "providers") &&
                EqualsIgnoreCase(seg[3], "Microsoft.KeyVault") &&
                EqualsIgnoreCase(seg[4], "vaults");
  bool deleted_path =
      seg.size() >= 5 && EqualsIgnoreCase(seg[2], "providers") &&
      EqualsIgnoreCase(seg[3], "Microsoft.KeyVault") &&
      (EqualsIgnoreCase(seg[4], "deletedVaults") || EqualsIgnoreCase(seg[4], "locations"));
  bool policy_path = by_rg && seg.size() == 10 && EqualsIgnoreCase(seg[8], "accessPolicies");
  if (!(by_rg && seg.size() <= 8) && !by_sub && !deleted_path && !policy_path) {
    return std::nullopt;
  }
  if (auto refused = CheckArmRequest(req, config_.subscription_id)) {
    return refused;
  }
  if (deleted_path) {
    return HandleDeleted(req);
  }
  if (policy_path) {
    return HandleAccessPolicies(req);
  }
  const std::string& m = req.method;

  if (by_sub || seg.size() == 7) {
    if (m != "GET") {
      return http::ErrorResponse(405, "MethodNotAllowed",
                                 "Only GET is allowed on a vault collection.");
    }
    auto vaults = store_.ListVaults();
    if (!vaults.ok()) {
      return ArmError(vaults.status());
    }
    Json items = Json::array();
    for (const auto& v : *vaults) {
      if (v.deleted() || (by_rg && !EqualsIgnoreCase(v.resource_group, seg[3]))) {
        continue;
      }
      items.push_back(ToArm(v));
    }
    return http::JsonResponse(200, ToJson(Json{{"value", items}}));
  }

  const std::string& rg = seg[3];
  const std::string& name = seg[7];
  auto not_found = [&] {
    return http::ErrorResponse(404, "ResourceNotFound",
                               "The Resource 'Microsoft.KeyVault/vaults/" + name +
                                   "' under resource group '" + rg + "' was not found.");
  };
  auto live = [&]() -> StatusOr<storage::VaultRecord> {
    auto v = store_.GetVault(name);
    if (!v.ok()) {
      return v.status();
    }
    if (v->deleted() || !EqualsIgnoreCase(v->resource_group, rg)) {
      return NotFoundError("vault not found");
    }
    return v;
  };
  if (m == "GET" || m == "DELETE") {
    auto v = live();
    if (!v.ok()) {
      if (v.status().code() != StatusCode::kNotFound) {
        return ArmError(v.status());
      }
      return m == "DELETE" ? http::EmptyResponse(204) : not_found();
    }
    if (m == "GET") {
      return http::JsonResponse(200, ToJson(ToArm(*v)));
    }
    // Vaults are soft-deleted, as in Azure: the name stays reserved and the
    // contents recoverable for the retention period.
    int64_t now = clock_.NowSeconds();
    int retention = keyvault::ParseVaultSettings(v->properties_json).retention_days;
    Status deleted = store_.MarkVaultDeleted(v->name, now, now + int64_t{retention} * 86400);
    registry_.Invalidate(v->name);
    if (config_.on_assignments_changed) {
      config_.on_assignments_changed();  // the vault's role assignments went with it
    }
    if (!deleted.ok()) {
      return ArmError(deleted);
    }
    return http::EmptyResponse(200);
  }
  if (m == "PUT" || m == "PATCH") {
    auto body = ParseJson(req.body);
    if (!body || !body->is_object()) {
      return http::ErrorResponse(400, "InvalidRequestContent",
                                 "The request content is not a JSON object.");
    }
    if (m == "PATCH" && !live().ok()) {
      return not_found();
    }
    auto result =
        CreateOrUpdate(rg, name, *body, m == "PUT", std::string(req.Query("api-version")));
    if (!result.ok()) {
      return ArmError(result.status());
    }
    return http::JsonResponse(result->second ? 201 : 200, ToJson(ToArm(result->first)));
  }
  return http::ErrorResponse(405, "MethodNotAllowed",
                             "Method " + m + " is not allowed on a vault.");
}

}  // namespace coffer::mgmt
