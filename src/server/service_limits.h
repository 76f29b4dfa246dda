#pragma once

// Key Vault's service limits (docs/service-limits.md): per vault, per
// 10-second window, a budget of transactions by type, and 429 with
// Retry-After beyond it, as Key Vault answers. Off by default; `azure` applies
// Key Vault's published numbers, `custom` numbers of one's own (for every
// vault, and per vault).

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/clock.h"
#include "common/status.h"
#include "http/message.h"

namespace coffer::server {

// The store's meta key of the installation's settings (LimitSettings JSON).
inline constexpr char kServiceLimitsMetaKey[] = "service_limits";

// The transaction types Key Vault counts apart.
enum class LimitClass {
  kSecretCreate,  // SecretSet, SecretRestore
  kSecretOther,   // every other operation on secrets and certificates, and the vault's
  kKeyCreate,     // KeyCreate, KeyImport, KeyRestore, KeyRotate
  kKeyOther,      // every other key operation, GetRandomBytes
};
inline constexpr size_t kLimitClasses = 4;

// Transactions per 10 seconds, by class.
struct VaultLimits {
  int64_t secret_create = 300;
  int64_t secret_other = 4000;
  int64_t key_create = 20;
  int64_t key_other = 4000;

  int64_t Of(LimitClass c) const;
};

struct LimitSettings {
  enum class Mode { kOff, kAzure, kCustom };
  Mode mode = Mode::kOff;
  // kCustom: the limits of every vault not named in `vaults`.
  VaultLimits custom;
  // kCustom: per vault (lower-case names).
  std::map<std::string, VaultLimits> vaults;

  // The JSON of GET/PUT /coffer/v1/service-limits:
  //   {"mode": "off" | "azure" | "custom",
  //    "limits": {"secretCreate": n, "secretOther": n, "keyCreate": n, "keyOther": n},
  //    "vaults": {"<vault>": {...the same keys...}}}
  // Omitted numbers are Key Vault's; each is 1 to 1,000,000; at most 1,000 vaults.
  std::string ToJson() const;
  static StatusOr<LimitSettings> Parse(std::string_view json);
  // Patch is `base` with the members `json` has (PATCH
  // /coffer/v1/service-limits): mode and limits replaced when given, and
  // each vault under `vaults` replaced, or removed when its value is null;
  // the result is checked as Parse checks.
  static StatusOr<LimitSettings> Patch(const LimitSettings& base, std::string_view json);
  static StatusOr<Mode> ParseMode(std::string_view mode);
};

// ServiceLimits counts transactions per vault and class in 10-second
// windows (aligned to the clock: the window of a request is its time
// divided by 10 s). Thread-safe. The hot path takes no lock while off, and
// when on only the lock of the vault's shard (one of 32).
class ServiceLimits {
 public:
  explicit ServiceLimits(const Clock& clock);

  // ClassOf names an operation's class ("SecretSet": kSecretCreate).
  static LimitClass ClassOf(std::string_view operation);

  // Apply replaces the settings; concurrent calls apply one after the other
  // (no vault sees a mix).
  void Apply(const LimitSettings& settings);
  LimitSettings settings() const;
  bool on() const { return on_.load(std::memory_order_relaxed); }
  // azure: the mode is `azure` (Resource Manager's limits apply too;
  // arm_limits.h).
  bool azure() const { return azure_.load(std::memory_order_relaxed); }

  // Charge counts one transaction of `operation` on `vault`, weighing
  // `weight` (Key Vault's weights by key size: KeyWeight): nullopt when it
  // is within the vault's budget and the installation's (the subscription's,
  // five times a vault's), else the whole seconds until the window ends (at
  // least 1), and then it is not counted (Key Vault does not count throttled
  // requests). A transaction that weighs more than a whole budget passes
  // alone in an otherwise unused window.
  std::optional<int64_t> Charge(std::string_view vault, std::string_view operation,
                                int64_t weight = 1);

  // KeyWeight is what one operation with an RSA key of `rsa_bits` weighs
  // against Key Vault's budget of RSA-2048 operations (4,000 / 1,000 / 500
  // per 10 s for 2,048, 3,072 and 4,096 bits: 1, 4, 8); 0 bits (an EC key)
  // weighs 1.
  static int64_t KeyWeight(int rsa_bits);

  // Key Vault's answer to a throttled request.
  static http::Response Throttled(int64_t retry_after_seconds);

 private:
  struct Window {
    int64_t index = -1;  // time / 10 s
    int64_t used = 0;
  };
  struct Shard {
    std::mutex mu;
    LimitSettings settings;                                                     // GUARDED_BY(mu)
    std::unordered_map<std::string, std::array<Window, kLimitClasses>> vaults;  // GUARDED_BY(mu)
  };

  const Clock& clock_;
  std::atomic<bool> on_{false};
  std::atomic<bool> azure_{false};
  mutable std::mutex settings_mu_;
  LimitSettings settings_;  // GUARDED_BY(settings_mu_)
  std::array<Shard, 32> shards_;
  // The installation's use per class in the current window, for the
  // subscription-wide cap: (window index mod 2^32) << 32 | used, changed by
  // compare-and-swap, so that no request takes a lock shared by every vault.
  std::array<std::atomic<uint64_t>, kLimitClasses> subscription_{};
  // Counts `weight` in the subscription's window `index` for class `cls`,
  // unless that passes `limit` (then false, and nothing is counted).
  bool ChargeSubscription(size_t cls, int64_t index, int64_t weight, int64_t limit);
};

}  // namespace coffer::server
