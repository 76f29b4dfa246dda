#include "mgmt/workload_manager.h"

#include <algorithm>

#include "common/strings.h"
#include "crypto/primitives.h"
#include "mgmt/arm.h"

namespace coffer::mgmt {

namespace {

constexpr WorkloadManager::Kind kKinds[] = {
    {"Microsoft.Web", "sites", "Microsoft.Web/sites"},
    {"Microsoft.Compute", "virtualMachines", "Microsoft.Compute/virtualMachines"},
};
constexpr size_t kMaxUserAssigned = 100;
constexpr char kUaiKind[] = "UserAssignedIdentity";

// 1-64 characters of letters, digits, '-', '_' and '.', starting with a
// letter or digit.
bool ValidWorkloadName(const std::string& name) {
  if (name.empty() || name.size() > 64) {
    return false;
  }
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum && (i == 0 || (c != '-' && c != '_' && c != '.'))) {
      return false;
    }
  }
  return true;
}

Status BadRequest(const std::string& message, const char* code = "BadRequest") {
  return InvalidArgumentError(message, code);
}

// The identity a request asks for, before user-assigned ids are resolved.
struct IdentityWish {
  bool system = false;
  bool user = false;
  std::vector<std::string> user_assigned;  // as given
};

const storage::PrincipalRecord* FindUserAssigned(
    const std::vector<storage::PrincipalRecord>& principals, const std::string& resource_id) {
  for (const auto& p : principals) {
    if (p.kind == kUaiKind && EqualsIgnoreCase(p.resource_id, resource_id)) {
      return &p;
    }
  }
  return nullptr;
}

// True when `id` has the shape of a user-assigned identity's resource id in
// this subscription.
bool IsIdentityId(const std::string& id, const std::string& subscription_id) {
  auto parts = Split(id, '/');
  return parts.size() == 9 && parts[0].empty() && EqualsIgnoreCase(parts[1], "subscriptions") &&
         EqualsIgnoreCase(parts[2], subscription_id) &&
         EqualsIgnoreCase(parts[3], "resourceGroups") &&
         ValidResourceGroup(std::string(parts[4])) && EqualsIgnoreCase(parts[5], "providers") &&
         EqualsIgnoreCase(parts[6], "Microsoft.ManagedIdentity") &&
         EqualsIgnoreCase(parts[7], "userAssignedIdentities") && !parts[8].empty();
}

std::string TypeName(bool system, bool user) {
  if (system && user) {
    return "SystemAssigned, UserAssigned";
  }
  return system ? "SystemAssigned" : user ? "UserAssigned" : "None";
}

// ParseIdentity reads Azure's identity block. PUT replaces the identities;
// PATCH merges `userAssignedIdentities` into the current ones, a null value
// removing an entry.
StatusOr<IdentityWish> ParseIdentity(const Json& block,
                                     const std::optional<storage::WorkloadRecord>& current,
                                     bool patch) {
  IdentityWish wish;
  if (block.is_null()) {
    if (patch && current) {
      wish.system = !current->system_principal_id.empty();
      wish.user_assigned = current->user_assigned;
      wish.user = !wish.user_assigned.empty();
    }
    return wish;
  }
  if (!block.is_object()) {
    return BadRequest("identity must be an object.");
  }
  std::string type = AsciiLower(StringMember(block, "type"));
  type.erase(std::remove(type.begin(), type.end(), ' '), type.end());
  if (type == "systemassigned,userassigned") {
    wish.system = wish.user = true;
  } else if (type == "systemassigned") {
    wish.system = true;
  } else if (type == "userassigned") {
    wish.user = true;
  } else if (type != "none") {
    return BadRequest("The identity type '" + StringMember(block, "type").substr(0, 64) +
                          "' is not supported. Use None, SystemAssigned, UserAssigned or "
                          "'SystemAssigned, UserAssigned'.",
                      "InvalidIdentityType");
  }
  std::vector<std::string> ids;
  if (patch && current && wish.user) {
    ids = current->user_assigned;
  }
  auto uai = block.find("userAssignedIdentities");
  if (uai != block.end() && !uai->is_null()) {
    if (!uai->is_object()) {
      return BadRequest("userAssignedIdentities must be an object keyed by resource id.");
    }
    if (!wish.user && !uai->empty()) {
      return BadRequest(
          "userAssignedIdentities may only be given when the identity type includes "
          "UserAssigned.",
          "InvalidIdentityType");
    }
    for (const auto& [id, value] : uai->items()) {
      if (!value.is_null() && !value.is_object()) {
        return BadRequest("Each user-assigned identity maps to {} (or null to remove it).");
      }
      auto same = [&](const std::string& other) { return EqualsIgnoreCase(other, id); };
      ids.erase(std::remove_if(ids.begin(), ids.end(), same), ids.end());
      if (!value.is_null()) {
        ids.push_back(id);
      }
    }
  }
  if (wish.user && ids.empty()) {
    return BadRequest("The identity type UserAssigned needs at least one user-assigned identity.",
                      "InvalidIdentityType");
  }
  if (ids.size() > kMaxUserAssigned) {
    return BadRequest("A resource may have at most 100 user-assigned identities.");
  }
  wish.user_assigned = std::move(ids);
  return wish;
}

}  // namespace

WorkloadManager::WorkloadManager(WorkloadConfig config, storage::Store& store, const Clock& clock)
    : config_(std::move(config)), store_(store), clock_(clock) {}

StatusOr<std::optional<storage::WorkloadRecord>> WorkloadManager::Find(
    const std::string& resource_id) {
  ASSIGN_OR_RETURN(auto all, store_.ListWorkloads());
  for (auto& w : all) {
    if (EqualsIgnoreCase(w.resource_id, resource_id)) {
      return std::optional<storage::WorkloadRecord>(std::move(w));
    }
  }
  return std::optional<storage::WorkloadRecord>();
}

Json WorkloadManager::ToArm(const storage::WorkloadRecord& w,
                            const std::vector<storage::PrincipalRecord>& principals) const {
  bool system = !w.system_principal_id.empty();
  bool user = !w.user_assigned.empty();
  Json identity = {{"type", TypeName(system, user)}};
  if (system) {
    identity["principalId"] = w.system_principal_id;
    identity["tenantId"] = config_.tenant_id;
  }
  if (user) {
    Json map = Json::object();
    for (const auto& id : w.user_assigned) {
      const storage::PrincipalRecord* p = FindUserAssigned(principals, id);
      map[id] = p == nullptr ? Json::object()
                             : Json{{"principalId", p->object_id}, {"clientId", p->app_id}};
    }
    identity["userAssignedIdentities"] = map;
  }
  return Json{{"id", w.resource_id},
              {"name", NameOf(w.resource_id)},
              {"type", w.type},
              {"location", w.location},
              {"tags", ParseJson(w.tags_json).value_or(Json::object())},
              {"identity", identity},
              {"properties", {{"provisioningState", "Succeeded"}}}};
}

http::Response WorkloadManager::List(const ArmCall& call, const Kind& kind) {
  std::string_view rg = call.params.Get("rg");
  auto all = store_.ListWorkloads();
  if (!all.ok()) {
    return ArmError(all.status());
  }
  auto principals = store_.ListPrincipals();
  if (!principals.ok()) {
    return ArmError(principals.status());
  }
  Json items = Json::array();
  for (const auto& w : *all) {
    if (w.type == kind.full_type &&
        (rg.empty() || EqualsIgnoreCase(ResourceGroupOf(w.resource_id), rg))) {
      items.push_back(ToArm(w, *principals));
    }
  }
  return http::JsonResponse(200, ToJson(Json{{"value", items}}));
}

StatusOr<std::optional<storage::WorkloadRecord>> WorkloadManager::FindNamed(const ArmCall& call,
                                                                            const Kind& kind) {
  std::string rg(call.params.Get("rg"));
  std::string name(call.params.Get("name"));
  if (!ValidResourceGroup(rg)) {
    return InvalidArgumentError("The resource group name is invalid.", "InvalidResourceGroupName");
  }
  if (!ValidWorkloadName(name)) {
    return InvalidArgumentError("The resource name '" + name.substr(0, 70) +
                                    "' is invalid. It must be 1-64 characters of letters, digits, "
                                    "'-', '_' and '.', starting with a letter or digit.",
                                "InvalidResourceName");
  }
  return Find("/subscriptions/" + config_.subscription_id + "/resourceGroups/" + rg +
              "/providers/" + kind.full_type + "/" + name);
}

Status WorkloadManager::NotFound(const ArmCall& call, const Kind& kind) const {
  return NotFoundError("The Resource '" + std::string(kind.full_type) + "/" +
                           std::string(call.params.Get("name")) + "' under resource group '" +
                           std::string(call.params.Get("rg")) + "' was not found.",
                       "ResourceNotFound");
}

http::Response WorkloadManager::Resource(const ArmCall& call, const Kind& kind) {
  const http::Request& req = call.request;
  auto found = FindNamed(call, kind);
  if (!found.ok()) {
    return ArmError(found.status());
  }
  if (req.method == "GET") {
    if (!*found) {
      return ArmError(NotFound(call, kind));
    }
    auto principals = store_.ListPrincipals();
    if (!principals.ok()) {
      return ArmError(principals.status());
    }
    http::Response r = http::JsonResponse(200, ToJson(ToArm(**found, *principals)));
    r.SetHeader("ETag", ETag((*found)->version));
    return r;
  }
  if (req.method == "DELETE") {
    return *found ? Delete(**found) : http::EmptyResponse(204);
  }
  if (req.method == "PATCH" && !*found) {
    return ArmError(NotFound(call, kind));
  }
  return Put(req, kind, std::string(call.params.Get("rg")), std::string(call.params.Get("name")),
             call.linked);
}

http::Response WorkloadManager::Act(const ArmCall& call, const Kind& kind,
                                    std::string_view action) {
  auto found = FindNamed(call, kind);
  if (!found.ok()) {
    return ArmError(found.status());
  }
  if (!*found) {
    return ArmError(NotFound(call, kind));
  }
  return Action(std::string(action), **found);
}

std::vector<ArmRoute> WorkloadManager::Routes() {
  std::vector<ArmRoute> out;
  // The paths of one kind, built once and kept for the table's lifetime.
  for (const auto& k : kKinds) {
    const Kind* kind = &k;
    std::string type = std::string(k.provider) + "/" + k.type;
    std::string by_sub = "/subscriptions/{sub}/providers/" + type;
    std::string by_rg = "/subscriptions/{sub}/resourceGroups/{rg}/providers/" + type;
    std::string one = by_rg + "/{name}";
    auto keep = [this](std::string text) -> std::string_view {
      patterns_.push_back(std::make_unique<std::string>(std::move(text)));
      return *patterns_.back();
    };
    std::string_view read = keep(type + "/read");
    std::string_view write = keep(type + "/write");
    auto list = [this, kind](const ArmCall& call) { return List(call, *kind); };
    auto resource = [this, kind](const ArmCall& call) { return Resource(call, *kind); };
    out.push_back({"GET", keep(by_sub), read, true, list});
    out.push_back({"GET", keep(by_rg), read, true, list});
    std::string_view one_view = keep(one);
    out.push_back({"GET", one_view, read, false, resource});
    out.push_back({"PUT", one_view, write, false, resource});
    out.push_back({"PATCH", one_view, write, false, resource});
    out.push_back({"DELETE", one_view, keep(type + "/delete"), false, resource});
    for (const char* action : {"listIdentityEndpoint", "regenerateIdentityHeader"}) {
      out.push_back(
          {"POST", keep(one + "/" + action), keep(type + "/" + action + "/action"), false,
           [this, kind, action](const ArmCall& call) { return Act(call, *kind, action); }});
    }
  }
  return out;
}

http::Response WorkloadManager::Put(const http::Request& req, const Kind& kind,
                                    const std::string& rg, const std::string& name,
                                    const LinkedCheck& linked) {
  bool patch = req.method == "PATCH";
  auto body = ParseJson(req.body.empty() ? "{}" : req.body);
  if (!body || !body->is_object()) {
    return http::ErrorResponse(400, "InvalidRequestContent",
                               "The request content is not a JSON object.");
  }
  std::optional<std::string> location;
  if (auto it = body->find("location"); it != body->end() && !it->is_null()) {
    if (!it->is_string() || it->get<std::string>().empty() || it->get<std::string>().size() > 64) {
      return http::ErrorResponse(400, "LocationRequired", "location must be a non-empty string.");
    }
    location = it->get<std::string>();
  }
  std::optional<std::string> tags;
  if (auto it = body->find("tags"); it != body->end() && !it->is_null()) {
    Status valid = CheckArmTags(*it);
    if (!valid.ok()) {
      return ArmError(valid);
    }
    tags = ToJson(*it);
  }
  Json identity = body->value("identity", Json());
  // User-assigned identities must exist; the stored id is the identity's own.
  auto principals = store_.ListPrincipals();
  if (!principals.ok()) {
    return ArmError(principals.status());
  }
  std::string resource_id = "/subscriptions/" + config_.subscription_id + "/resourceGroups/" + rg +
                            "/providers/" + kind.full_type + "/" + name;
  bool created = false;
  std::string removed;
  // The change is made to the workload as it is when it is written, so
  // concurrent changes (tags, identities) all land.
  auto stored = store_.PutWorkload(
      resource_id,
      [&](const std::optional<storage::WorkloadWrite>& current)
          -> StatusOr<storage::WorkloadWrite> {
        std::optional<storage::WorkloadRecord> found;
        if (current) {
          found = current->workload;
        }
        if (patch && !found) {
          return NotFoundError("The Resource '" + std::string(kind.full_type) + "/" + name +
                                   "' under resource group '" + rg + "' was not found.",
                               "ResourceNotFound");
        }
        RETURN_IF_ERROR(
            CheckPreconditions(req, found ? std::optional<int64_t>(found->version) : std::nullopt));
        storage::WorkloadWrite write;
        storage::WorkloadRecord& w = write.workload;
        if (found) {
          w = *found;
        } else {
          w.uid = crypto::RandomUuid();
          w.resource_id = resource_id;
          w.type = kind.full_type;
          w.location = "local";
          w.created = clock_.NowSeconds();
        }
        w.location = location.value_or(w.location);
        w.tags_json = tags.value_or(patch ? w.tags_json : "{}");
        ASSIGN_OR_RETURN(IdentityWish wish, ParseIdentity(identity, found, patch));
        w.user_assigned.clear();
        for (const auto& id : wish.user_assigned) {
          bool attached = false;
          if (found) {
            for (const auto& now : found->user_assigned) {
              attached = attached || EqualsIgnoreCase(now, id);
            }
          }
          if (!attached && IsIdentityId(id, config_.subscription_id)) {
            // SECURITY: a workload's code acts as every identity attached to
            // it, so attaching one needs a right on the identity itself, not
            // only on the workload (Azure's linked check). It comes before
            // the existence check, so a caller learns nothing of identities
            // it may not assign.
            RETURN_IF_ERROR(linked(kAssignIdentityAction, id));
          }
          const storage::PrincipalRecord* match = FindUserAssigned(*principals, id);
          if (match == nullptr) {
            return InvalidArgumentError("Identity operation failed: the user-assigned identity '" +
                                            id.substr(0, 300) + "' was not found.",
                                        "FailedIdentityOperation");
          }
          w.user_assigned.push_back(match->resource_id);
        }
        // The system-assigned identity is born and dies with the resource.
        if (wish.system && w.system_principal_id.empty()) {
          storage::PrincipalRecord p;
          p.object_id = crypto::RandomUuid();
          p.app_id = crypto::RandomUuid();
          p.tenant_id = config_.tenant_id;
          p.display_name = name;
          p.kind = "SystemAssignedIdentity";
          p.created = clock_.NowSeconds();
          p.resource_id = w.resource_id;
          w.system_principal_id = p.object_id;
          write.add_principal = std::move(p);
        } else if (!wish.system && !w.system_principal_id.empty()) {
          write.remove_principal_id = w.system_principal_id;
          w.system_principal_id.clear();
        }
        created = !found;
        removed = write.remove_principal_id;
        return write;
      });
  if (!stored.ok()) {
    return ArmError(stored.status());
  }
  if (!removed.empty()) {
    config_.on_principal_deleted(removed);
  }
  http::Response r = http::JsonResponse(created ? 201 : 200, ToJson(ToArm(*stored, *principals)));
  r.SetHeader("ETag", ETag(stored->version));
  return r;
}

http::Response WorkloadManager::Delete(const storage::WorkloadRecord& w) {
  // SECURITY: the system-assigned identity goes with its resource, and its
  // tokens stop working on the next request. User-assigned ones stay.
  Status deleted = store_.DeleteWorkload(w.uid);
  if (!deleted.ok() && deleted.code() != StatusCode::kNotFound) {
    return ArmError(deleted);
  }
  if (!w.system_principal_id.empty()) {
    config_.on_principal_deleted(w.system_principal_id);
  }
  return http::EmptyResponse(200);
}

http::Response WorkloadManager::Action(const std::string& action, storage::WorkloadRecord w) {
  if (EqualsIgnoreCase(action, "regenerateIdentityHeader")) {
    auto put = store_.PutWorkload(w.resource_id,
                                  [&](const std::optional<storage::WorkloadWrite>& current)
                                      -> StatusOr<storage::WorkloadWrite> {
                                    if (!current) {
                                      return NotFoundError("The workload was deleted.",
                                                           "ResourceNotFound");
                                    }
                                    storage::WorkloadWrite write = *current;
                                    ++write.workload.header_generation;
                                    return write;
                                  });
    if (!put.ok()) {
      return ArmError(put.status());
    }
    w = *put;
  }
  http::Response r =
      http::JsonResponse(200, ToJson(Json{{"identityEndpoint", config_.identity_endpoint},
                                          {"identityHeader", config_.identity_header(w)}}));
  r.SetHeader("Cache-Control", "no-store");
  return r;
}

}  // namespace coffer::mgmt
