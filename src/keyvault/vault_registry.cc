#include "keyvault/vault_registry.h"

#include "common/strings.h"
#include "crypto/primitives.h"

namespace coffer::keyvault {

VaultSettings SettingsOf(const storage::VaultRecord& record) {
  VaultSettings s;
  s.retention_days = record.retention_days;
  s.purge_protection = record.purge_protection;
  s.rbac_authorization = record.rbac_authorization;
  s.access_policies = authz::CompileAccessPolicies(record.access_policies);
  return s;
}

std::string RecoveryLevel(const VaultSettings& s) {
  std::string level = s.retention_days < 90 ? "CustomizedRecoverable" : "Recoverable";
  return s.purge_protection ? level : level + "+Purgeable";
}

OpenVault::~OpenVault() {
  crypto::SecureWipe(data_key);
}

namespace {

// How long an expired entry still answers while one caller refreshes it.
constexpr int64_t kRefreshGraceSeconds = 2;

}  // namespace

VaultRegistry::VaultRegistry(storage::Store& store, const Envelope& envelope, const Clock& clock,
                             int64_t ttl_seconds, int64_t stale_seconds)
    : store_(store),
      envelope_(envelope),
      clock_(clock),
      ttl_seconds_(ttl_seconds),
      stale_seconds_(stale_seconds) {}

StatusOr<std::shared_ptr<const OpenVault>> VaultRegistry::Get(const std::string& name) {
  std::string key = AsciiLower(name);
  int64_t now = clock_.NowSeconds();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end() && now - it->second.fetched < ttl_seconds_) {
      return it->second.vault;
    }
  }
  auto read = store_.GetVault(name);
  if (read.status().code() == StatusCode::kUnavailable) {
    // The database cannot be reached: answer from what was read before
    // (SECURITY: docs/ha.md bounds how long).
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end() && now - it->second.fetched < stale_seconds_) {
      return it->second.vault;
    }
  }
  ASSIGN_OR_RETURN(storage::VaultRecord record, std::move(read));
  if (record.deleted()) {
    return NotFoundError("vault '" + name + "' not found", "VaultNotFound");
  }
  {
    // Unchanged (the same incarnation, no update since): the entry is kept,
    // and with it every secret cached under it (SecretService matches the
    // open vault they were read with).
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      const storage::VaultRecord& held = it->second.vault->record;
      if (held.wrapped_data_key == record.wrapped_data_key && held.created == record.created &&
          held.version == record.version) {
        it->second.fetched = now;
        it->second.refresh_claimed = 0;
        return it->second.vault;
      }
    }
  }
  auto vault = std::make_shared<OpenVault>();
  ASSIGN_OR_RETURN(vault->data_key, envelope_.UnwrapDataKey(record.name, record.wrapped_data_key));
  vault->settings = SettingsOf(record);
  vault->resource_id = record.ResourceId();
  vault->record = std::move(record);
  std::lock_guard<std::mutex> lock(mu_);
  cache_[key] = Entry{vault, now, 0};
  return std::shared_ptr<const OpenVault>(vault);
}

std::shared_ptr<const OpenVault> VaultRegistry::TryGetCached(const std::string& name) {
  std::string key = AsciiLower(name);
  int64_t now = clock_.NowSeconds();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = cache_.find(key);
  if (it == cache_.end()) {
    return nullptr;
  }
  Entry& entry = it->second;
  if (now - entry.fetched >= ttl_seconds_ &&
      (entry.refresh_claimed == 0 || now - entry.refresh_claimed >= kRefreshGraceSeconds)) {
    entry.refresh_claimed = now;  // this caller refreshes it; the others are answered meanwhile
    return nullptr;
  }
  return entry.vault;
}

void VaultRegistry::Invalidate(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  cache_.erase(AsciiLower(name));
}

}  // namespace coffer::keyvault

namespace coffer::keyvault {

void VaultRegistry::InvalidateAll() {
  std::lock_guard<std::mutex> lock(mu_);
  cache_.clear();
}

}  // namespace coffer::keyvault
