#pragma once

#include <functional>
#include <string>

#include "common/clock.h"
#include "common/json.h"
#include "http/message.h"
#include "keyvault/envelope.h"
#include "keyvault/vault_registry.h"
#include "mgmt/arm.h"
#include "mgmt/arm_routes.h"
#include "storage/store.h"

namespace coffer::mgmt {

struct ManagementConfig {
  std::string subscription_id;
  std::string tenant_id;
  std::string default_location = "local";
  // vaultUri is "https://" + name + vault_host_suffix, e.g. suffix
  // ".vault.localhost:8443/".
  std::string vault_host_suffix;
  // Called after a change to role assignments (deleting a vault deletes
  // its own), so the authorizer reloads.
  std::function<void()> on_assignments_changed;
  // Called after a vault is purged (its event subscriptions went with it).
  std::function<void()> on_vault_purged;
};

// VaultManager is the ARM-shaped management plane for vaults:
//   PUT|PATCH|GET|DELETE /subscriptions/{s}/resourceGroups/{rg}/providers/
//                        Microsoft.KeyVault/vaults/{name}?api-version=...
//   GET /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults
//   GET /subscriptions/{s}/providers/Microsoft.KeyVault/vaults
//   GET  /subscriptions/{s}/providers/Microsoft.KeyVault/deletedVaults
//   GET  /subscriptions/{s}/providers/Microsoft.KeyVault/locations/{l}/deletedVaults/{name}
//   POST .../deletedVaults/{name}/purge
//   PUT  .../vaults/{name}/accessPolicies/{add|replace|remove}
// with Azure's property names, immutability rules and error codes
// (docs/management-plane.md). Deleting a vault soft-deletes it; PUT with
// properties.createMode "recover" brings it back. Routes() is its part of
// the management plane's route table; the plane authenticates and
// authorizes each request before a handler runs.
//
// Thread-safe. The referenced objects must outlive it.
class VaultManager {
 public:
  VaultManager(ManagementConfig config, storage::Store& store, const keyvault::Envelope& envelope,
               keyvault::VaultRegistry& registry, const Clock& clock);

  // The vault operations of the management plane's route table.
  std::vector<ArmRoute> Routes();

  // ResourceId of a vault record.
  std::string ResourceId(const storage::VaultRecord& vault) const;
  // CreateOrUpdate applies an ARM PUT or PATCH body sent with
  // `api_version` (which picks a new vault's default permission model),
  // atomically: the body is applied to the vault as it is when the change
  // is written. `precondition` is asked with the current version (nullopt
  // when the vault does not exist) before anything is written. Returns the
  // resulting record and whether it was created.
  StatusOr<std::pair<storage::VaultRecord, bool>> CreateOrUpdate(
      const std::string& resource_group, const std::string& name, const Json& body,
      const std::string& api_version,
      const Precondition& precondition = [](std::optional<int64_t>) { return OkStatus(); });
  Json ToArm(const storage::VaultRecord& vault) const;
  Json ToArmDeleted(const storage::VaultRecord& vault) const;

  // PurgeExpired removes soft-deleted vaults whose retention has ended.
  StatusOr<int> PurgeExpired();

 private:
  http::Response List(const ArmCall& call);
  // GET /subscriptions/{s}/resources?$filter=resourceType eq
  // 'Microsoft.KeyVault/vaults': the vaults as generic resources (az finds
  // a vault's resource group so); any other $filter is 400.
  http::Response ListResources(const ArmCall& call);
  // Coffer keeps no managed HSMs; their lists are empty, so that clients
  // that list vaults and HSMs together (az keyvault list-deleted) work.
  http::Response ListNone(const ArmCall& call);
  http::Response Get(const ArmCall& call);
  http::Response Put(const ArmCall& call);  // and PATCH
  http::Response Delete(const ArmCall& call);
  http::Response EditAccessPolicies(const ArmCall& call);
  http::Response ListDeleted(const ArmCall& call);
  http::Response GetDeleted(const ArmCall& call);
  http::Response PurgeDeleted(const ArmCall& call);
  // The live vault {name} of resource group {rg}; kNotFound
  // (ResourceNotFound) when there is none.
  StatusOr<storage::VaultRecord> FindLive(const ArmCall& call);
  // The deleted vault {name} of {location}; kNotFound (DeletedVaultNotFound).
  StatusOr<storage::VaultRecord> FindDeleted(const ArmCall& call);

  const ManagementConfig config_;
  storage::Store& store_;
  const keyvault::Envelope& envelope_;
  keyvault::VaultRegistry& registry_;
  const Clock& clock_;
};

}  // namespace coffer::mgmt
