#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "authz/permissions.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/status.h"
#include "keyvault/envelope.h"
#include "storage/store.h"

namespace coffer::keyvault {

// VaultSettings are the vault properties the data plane acts on.
struct VaultSettings {
  int retention_days = 90;
  bool purge_protection = false;
  bool rbac_authorization = false;
  // The access policies, compiled (validated by the management plane when
  // written).
  authz::AccessPolicySet access_policies;
};

// The settings of a vault record, with its access policies compiled.
VaultSettings SettingsOf(const storage::VaultRecord& record);
// RecoveryLevel is Key Vault's recoveryLevel string for these settings.
std::string RecoveryLevel(const VaultSettings& settings);

// An open vault: its record, parsed settings and unwrapped data key.
struct OpenVault {
  storage::VaultRecord record;
  std::string resource_id;  // record.ResourceId()
  VaultSettings settings;
  std::string data_key;
  ~OpenVault();
};

// VaultRegistry resolves vault names to open vaults, caching them briefly so
// the hot read path does not unwrap keys or re-read vault rows per request.
// Writers on this process invalidate at once; the short TTL bounds how long
// another replica's change can go unseen. While the store is unavailable,
// Get answers from an entry read at most `stale_seconds` ago (0: never).
//
// Thread-safe. `store`, `envelope` and `clock` must outlive it.
class VaultRegistry {
 public:
  VaultRegistry(storage::Store& store, const Envelope& envelope, const Clock& clock,
                int64_t ttl_seconds = 5, int64_t stale_seconds = 0);

  // Get returns the vault. kNotFound (reason "VaultNotFound") if absent;
  // kDataLoss if its data key does not open.
  StatusOr<std::shared_ptr<const OpenVault>> Get(const std::string& name);
  // TryGetCached returns the cached vault if it is fresh, else nullptr.
  // Never blocks. Once the entry is older than the TTL, the first caller
  // gets nullptr and is to refresh it with Get; for the next two seconds the
  // others get the expired entry, so that an expiry under load sends one
  // read to the store, not one per request.
  std::shared_ptr<const OpenVault> TryGetCached(const std::string& name);
  void Invalidate(const std::string& name);
  void InvalidateAll();

 private:
  struct Entry {
    std::shared_ptr<const OpenVault> vault;
    int64_t fetched = 0;
    int64_t refresh_claimed = 0;  // see TryGetCached; 0: nobody has
  };
  storage::Store& store_;
  const Envelope& envelope_;
  const Clock& clock_;
  const int64_t ttl_seconds_;
  const int64_t stale_seconds_;
  std::mutex mu_;
  std::map<std::string, Entry> cache_;  // guarded by mu_; key: lower-case name
};

}  // namespace coffer::keyvault
