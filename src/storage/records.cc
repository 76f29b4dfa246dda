#include "storage/records.h"

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

bool AccessModelChanged(const VaultRecord& before, const VaultRecord& after) {
  return before.rbac_authorization != after.rbac_authorization ||
         before.access_policies != after.access_policies;
}

}  // namespace coffer::storage
