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
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "http/message.h"
#include "server/limit_shares.h"
#include "storage/store.h"

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

  // --- several servers (limit_shares.h): each budget above is the
  // installation's, and this server admits up to its share of it. Alone, a
  // server's share is the whole budget. ---

  // WindowAt is the window of `micros` (Unix microseconds).
  static int64_t WindowAt(int64_t micros);
  // SetSplit says how windows begin divided: `now` and `next` for the
  // windows they name, the newest of them for any later one.
  void SetSplit(const ShareSplit& now, const ShareSplit& next);
  // SetServers is how many servers are live (Resource Manager's buckets are
  // divided among them: arm_limits.h).
  void SetServers(int live) { servers_.store(std::max(1, live), std::memory_order_relaxed); }
  int servers() const { return servers_.load(std::memory_order_relaxed); }
  // Claims is what this server has to tell the others about window
  // `window`: the budgets it was refused requests for since the last call
  // (hungry), and those `wanted` by another server of which it can spare
  // some -- their share is lowered here, before the others hear of it, to
  // what was used plus a reserve (what it used since the last call, and at
  // least a tenth of an even share).
  std::vector<ShareClaim> Claims(int64_t window, const std::set<std::string>& wanted);
  // Grant raises the shares of `claims` (from Claims(window)) to what the
  // document granted (`view`, from MergeShares).
  void Grant(int64_t window, const std::vector<ShareClaim>& claims, const ShareView& view);

  // Sync is one round of agreeing with the other servers of `store` (run
  // every half second): while the limits are on, it reads the document,
  // spares what others want, claims what it was refused for, and takes what
  // it is granted; on or off, it writes this server's heartbeat (`self`)
  // every 5 s. `written_ms` is when this server last wrote (Sync's alone).
  Status Sync(storage::Store& store, const std::string& self, int64_t& written_ms);
  // Leave gives this server's shares back (a server that stops).
  Status Leave(storage::Store& store, const std::string& self);

 private:
  struct Window {
    int64_t index = -1;  // time / 10 s
    int64_t used = 0;
    int64_t share = 0;       // this server's share of the budget in the window
    int64_t prev = 0;        // `used` at the last Claims
    int64_t refused = 0;     // refused for want of share since the last Claims
    bool exhausted = false;  // no other server has any to spare
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
  // subscription-wide cap: (window index mod 2^16) << 48 | this server's
  // share << 24 | used (a share of kNoShare: the window's even share),
  // changed by compare-and-swap, so that no request takes a lock shared by
  // every vault.
  std::array<std::atomic<uint64_t>, kLimitClasses> subscription_{};
  std::array<std::atomic<int64_t>, kLimitClasses> subscription_refused_{};
  std::array<std::atomic<int64_t>, kLimitClasses> subscription_prev_{};
  std::array<std::atomic<int64_t>, kLimitClasses> subscription_exhausted_{};  // a window index
  // The split of windows: (window mod 2^32) << 32 | members << 1 | member.
  std::atomic<uint64_t> split_now_{0};
  std::atomic<uint64_t> split_next_{0};
  std::atomic<int> servers_{1};
  // Even is this server's share of `budget` at the start of window `index`.
  int64_t Even(int64_t index, int64_t budget) const;
  // Counts `weight` in the subscription's window `index` for class `cls`,
  // unless that passes `limit` or this server's share of it (then the
  // seconds to wait, and nothing is counted).
  std::optional<int64_t> ChargeSubscription(size_t cls, int64_t index, int64_t weight,
                                            int64_t limit, int64_t now);
  // The budgets of `vault` (lower case) for class `cls` under `s`: the
  // vault's and the installation's.
  static std::pair<int64_t, int64_t> Budgets(const LimitSettings& s, const std::string& vault,
                                             LimitClass cls);
};

}  // namespace coffer::server
