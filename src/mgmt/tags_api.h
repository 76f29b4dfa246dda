#pragma once

#include <optional>
#include <string>
#include <vector>

#include "http/message.h"
#include "keyvault/vault_registry.h"
#include "mgmt/arm_routes.h"
#include "storage/store.h"

namespace coffer::mgmt {

// TagsApi is ARM's Microsoft.Resources/tags API on the resources Coffer
// keeps (vaults, user-assigned identities, workloads):
//   GET    {resource}/providers/Microsoft.Resources/tags/default
//   PUT    ... {"properties":{"tags":{...}}}              replaces the tags
//   PATCH  ... {"operation":"Merge|Replace|Delete",
//               "properties":{"tags":{...}}}               as `az tag update`
//   DELETE ...                                            removes every tag
// Each change is applied to the tags as they are when it is written, so
// concurrent merges of different tags all land. The plane authorizes
// Microsoft.Resources/tags/* at the resource before a handler runs.
//
// It also answers the one resource-group read clients make:
//   GET /subscriptions/{s}/resourceGroups/{rg}   (az keyvault create
//       without --location reads the group's location)
// Coffer's resource groups are names that resources carry, made by the
// first resource put in them; every name reads as a group in location
// "local", the location Coffer's resources report by default. The plane
// authorizes Microsoft.Resources/subscriptions/resourceGroups/read at the
// group.
// Thread-safe.
class TagsApi {
 public:
  TagsApi(std::string subscription_id, storage::Store& store, keyvault::VaultRegistry& registry)
      : subscription_id_(std::move(subscription_id)), store_(store), registry_(registry) {}

  // The tags operations of the management plane's route table.
  std::vector<ArmRoute> Routes();

 private:
  http::Response Handle(const ArmCall& call);
  http::Response ResourceGroup(const ArmCall& call) const;

  const std::string subscription_id_;
  storage::Store& store_;
  keyvault::VaultRegistry& registry_;
};

}  // namespace coffer::mgmt
