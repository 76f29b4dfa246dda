#include "storage/records.h"

#include "common/json.h"
#include "common/strings.h"

namespace coffer::storage {

std::string RoleScopeKey(std::string_view scope) {
  while (scope.size() > 1 && scope.back() == '/') {
    scope.remove_suffix(1);
  }
  return AsciiLower(scope);
}

std::string VaultRecord::ResourceId() const {
  return "/subscriptions/" + subscription_id + "/resourceGroups/" + resource_group +
         "/providers/Microsoft.KeyVault/vaults/" + name;
}

StatusOr<std::string> AddTimeShift(const std::optional<std::string>& current,
                                   const std::vector<std::string>& vault_keys, int64_t seconds) {
  if (seconds < 1 || seconds > kMaxTimeShiftSeconds) {
    return InvalidArgumentError(
        "A time shift is 1 to " + std::to_string(kMaxTimeShiftSeconds) + " seconds forward.",
        "BadParameter");
  }
  Json totals = Json::object();
  if (current.has_value()) {
    auto parsed = ParseJson(*current, 2);
    if (!parsed || !parsed->is_object()) {
      return InternalError("the stored time shifts are not a JSON object");
    }
    totals = *std::move(parsed);
  }
  for (const std::string& key : vault_keys) {
    int64_t total =
        totals.contains(key) && totals[key].is_number_integer() ? totals[key].get<int64_t>() : 0;
    if (total + seconds > kMaxTimeShiftSeconds) {
      return InvalidArgumentError("Vault '" + key + "' is already " + std::to_string(total) +
                                      " seconds ahead; its clock goes at most " +
                                      std::to_string(kMaxTimeShiftSeconds) + " seconds ahead.",
                                  "BadParameter");
    }
    totals[key] = total + seconds;
  }
  return totals.dump();
}

std::optional<std::string> RemoveTimeShift(const std::string& current,
                                           const std::string& vault_key) {
  auto totals = ParseJson(current, 2);
  if (!totals || !totals->is_object() || !totals->contains(vault_key)) {
    return std::nullopt;
  }
  totals->erase(vault_key);
  return totals->dump();
}

bool AccessModelChanged(const VaultRecord& before, const VaultRecord& after) {
  return before.rbac_authorization != after.rbac_authorization ||
         before.access_policies != after.access_policies;
}

std::string_view ObjectKindName(ObjectKind kind) {
  switch (kind) {
    case ObjectKind::kSecret:
      return "Secret";
    case ObjectKind::kKey:
      return "Key";
    case ObjectKind::kCertificate:
      return "Certificate";
  }
  return "Secret";
}

std::string_view ObjectCollectionName(ObjectKind kind) {
  switch (kind) {
    case ObjectKind::kSecret:
      return "secrets";
    case ObjectKind::kKey:
      return "keys";
    case ObjectKind::kCertificate:
      return "certificates";
  }
  return "secrets";
}

std::optional<ObjectKind> ParseObjectKind(std::string_view name) {
  for (ObjectKind kind : {ObjectKind::kSecret, ObjectKind::kKey, ObjectKind::kCertificate}) {
    if (name == ObjectKindName(kind)) {
      return kind;
    }
  }
  return std::nullopt;
}

Status ObjectNotFoundError(ObjectKind kind, const std::string& name) {
  return NotFoundError(AsciiLower(ObjectKindName(kind)) + " '" + name + "' not found",
                       std::string(ObjectKindName(kind)) + "NotFound");
}

Status DeletedObjectNotFoundError(ObjectKind kind, const std::string& name) {
  return NotFoundError("deleted " + AsciiLower(ObjectKindName(kind)) + " '" + name + "' not found",
                       std::string(ObjectKindName(kind)) + "NotFound");
}

}  // namespace coffer::storage
