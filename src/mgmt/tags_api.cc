#include "mgmt/tags_api.h"

#include <cctype>

#include "common/strings.h"
#include "mgmt/arm.h"

namespace coffer::mgmt {
namespace {

constexpr char kPrincipalKind[] = "UserAssignedIdentity";

// Applies one tags request to the stored tags (JSON text). `operation` is
// "Replace" for a PUT.
Status ApplyTags(const std::string& operation, const Json& given, std::string& tags_json) {
  Json tags = ParseJson(tags_json).value_or(Json::object());
  if (!tags.is_object()) {
    tags = Json::object();
  }
  if (EqualsIgnoreCase(operation, "Replace")) {
    tags = given;
  } else if (EqualsIgnoreCase(operation, "Merge")) {
    for (const auto& [k, v] : given.items()) {
      tags[k] = v;
    }
  } else if (EqualsIgnoreCase(operation, "Delete")) {
    // Azure deletes a tag named with its value, or any value when the
    // request gives none.
    for (const auto& [k, v] : given.items()) {
      auto it = tags.find(k);
      if (it != tags.end() && (v.get<std::string>().empty() || *it == v)) {
        tags.erase(it);
      }
    }
  } else {
    return InvalidArgumentError("operation must be Merge, Replace or Delete.", "InvalidOperation");
  }
  RETURN_IF_ERROR(CheckArmTags(tags));
  tags_json = ToJson(tags);
  return OkStatus();
}

}  // namespace

std::vector<ArmRoute> TagsApi::Routes() {
  auto handle = [this](const ArmCall& call) { return Handle(call); };
  constexpr std::string_view kTags = "/{resource...}/providers/Microsoft.Resources/tags/default";
  return {
      {"GET", kTags, "Microsoft.Resources/tags/read", false, handle},
      {"PUT", kTags, "Microsoft.Resources/tags/write", false, handle},
      {"PATCH", kTags, "Microsoft.Resources/tags/write", false, handle},
      {"DELETE", kTags, "Microsoft.Resources/tags/delete", false, handle},
      {"GET", "/subscriptions/{sub}/resourceGroups/{rg}",
       "Microsoft.Resources/subscriptions/resourceGroups/read", false,
       [this](const ArmCall& call) { return ResourceGroup(call); }},
  };
}

http::Response TagsApi::ResourceGroup(const ArmCall& call) const {
  const std::string rg(call.params.Get("rg"));
  // ARM's rule for a group's name, so that a name no resource could carry
  // does not read as a group.
  bool ok = !rg.empty() && rg.size() <= 90 && rg.back() != '.';
  for (char c : rg) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' ||
                c == '.' || c == '(' || c == ')');
  }
  if (!ok) {
    return http::ErrorResponse(404, "ResourceGroupNotFound",
                               "Resource group '" + rg.substr(0, 90) + "' could not be found.");
  }
  Json body = {{"id", "/subscriptions/" + subscription_id_ + "/resourceGroups/" + rg},
               {"name", rg},
               {"type", "Microsoft.Resources/resourceGroups"},
               {"location", "local"},
               {"properties", {{"provisioningState", "Succeeded"}}}};
  return http::JsonResponse(200, ToJson(body));
}

http::Response TagsApi::Handle(const ArmCall& call) {
  const http::Request& req = call.request;
  const std::string resource(call.params.Get("resource"));
  // {resource} = /subscriptions/{s}/resourceGroups/{rg}/providers/{ns}/{type}/{name}
  auto pieces = Split(resource, '/');
  std::vector<std::string> seg(pieces.begin() + 1, pieces.end());
  size_t n = seg.size();
  auto is = [&](size_t i, const char* v) { return n > i && EqualsIgnoreCase(seg[i], v); };
  bool resource_shape =
      n == 8 && is(0, "subscriptions") && is(2, "resourceGroups") && is(4, "providers");
  bool vault = resource_shape && is(5, "Microsoft.KeyVault") && is(6, "vaults");
  bool identity =
      resource_shape && is(5, "Microsoft.ManagedIdentity") && is(6, "userAssignedIdentities");
  bool workload = resource_shape && ((is(5, "Microsoft.Web") && is(6, "sites")) ||
                                     (is(5, "Microsoft.Compute") && is(6, "virtualMachines")));
  if (!vault && !identity && !workload) {
    return http::ErrorResponse(
        400, "UnsupportedResource",
        "Tags are kept on vaults, user-assigned identities, web apps and virtual machines.");
  }
  const std::string& rg = seg[3];
  const std::string& name = seg[7];
  auto not_found = [&] {
    return NotFoundError("The Resource '" + seg[5] + "/" + seg[6] + "/" + name +
                             "' under resource group '" + rg + "' was not found.",
                         "ResourceNotFound");
  };

  const std::string& m = req.method;
  std::optional<std::string> operation;
  Json given = Json::object();
  if (m == "PUT" || m == "PATCH") {
    auto body = ParseJson(req.body);
    if (!body || !body->is_object()) {
      return http::ErrorResponse(400, "InvalidRequestContent",
                                 "The request content is not a JSON object.");
    }
    Json props = body->value("properties", Json::object());
    if (!props.is_object() || !props.contains("tags") || !props["tags"].is_object()) {
      return http::ErrorResponse(400, "InvalidRequestContent",
                                 "The request content must be {\"properties\":{\"tags\":{...}}}.");
    }
    given = props["tags"];
    if (Status valid = CheckArmTags(given); !valid.ok()) {
      return ArmError(valid);
    }
    operation = m == "PUT" ? "Replace" : StringMember(*body, "operation");
  } else if (m == "DELETE") {
    operation = "Replace";  // with no tags
  } else if (m != "GET") {
    return http::ErrorResponse(405, "MethodNotAllowed", "Use GET, PUT, PATCH or DELETE.");
  }

  // The change runs inside the store's mutation of the resource.
  auto change = [&](std::string& tags_json) -> Status {
    return operation ? ApplyTags(*operation, given, tags_json) : OkStatus();
  };
  StatusOr<std::string> tags = not_found();
  if (vault) {
    auto done = m == "GET" ? store_.GetVault(name)
                           : store_.UpdateVault(name, [&](storage::VaultRecord& v) -> Status {
                               if (!EqualsIgnoreCase(v.resource_group, rg)) {
                                 return not_found();
                               }
                               return change(v.tags_json);
                             });
    if (done.ok() && (done->deleted() || !EqualsIgnoreCase(done->resource_group, rg))) {
      done = not_found();
    }
    if (done.ok()) {
      tags = done->tags_json;
    } else if (done.status().code() != StatusCode::kNotFound) {
      tags = done.status();
    }
    registry_.Invalidate(name);
  } else if (identity) {
    auto all = store_.ListPrincipals();
    if (!all.ok()) {
      return ArmError(all.status());
    }
    for (const auto& p : *all) {
      if (p.kind != kPrincipalKind || !EqualsIgnoreCase(p.resource_id, resource)) {
        continue;
      }
      auto done = m == "GET"
                      ? StatusOr<storage::PrincipalRecord>(p)
                      : store_.UpdatePrincipal(p.object_id, [&](storage::PrincipalRecord& r) {
                          return change(r.tags_json);
                        });
      tags = done.ok() ? StatusOr<std::string>(done->tags_json) : done.status();
    }
  } else {
    if (m == "GET") {
      auto all = store_.ListWorkloads();
      if (!all.ok()) {
        return ArmError(all.status());
      }
      for (const auto& w : *all) {
        if (EqualsIgnoreCase(w.resource_id, resource)) {
          tags = w.tags_json;
        }
      }
    } else {
      auto done = store_.PutWorkload(resource,
                                     [&](const std::optional<storage::WorkloadWrite>& current)
                                         -> StatusOr<storage::WorkloadWrite> {
                                       if (!current) {
                                         return not_found();
                                       }
                                       storage::WorkloadWrite write = *current;
                                       RETURN_IF_ERROR(change(write.workload.tags_json));
                                       return write;
                                     });
      tags = done.ok() ? StatusOr<std::string>(done->tags_json) : done.status();
    }
  }
  if (!tags.ok()) {
    return ArmError(tags.status());
  }
  return http::JsonResponse(
      200, ToJson(Json{{"id", resource + "/providers/Microsoft.Resources/tags/default"},
                       {"name", "default"},
                       {"type", "Microsoft.Resources/tags"},
                       {"properties", {{"tags", ParseJson(*tags).value_or(Json::object())}}}}));
}

}  // namespace coffer::mgmt
