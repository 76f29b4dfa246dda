#include "server/service_limits.h"

#include <algorithm>
#include <functional>

#include "common/json.h"
#include "common/strings.h"

namespace coffer::server {
namespace {

constexpr int64_t kWindowMicros = 10'000'000;
constexpr int64_t kMaxLimit = 1'000'000;
constexpr size_t kMaxVaults = 1000;

constexpr std::array<std::string_view, kLimitClasses> kClassKeys = {"secretCreate", "secretOther",
                                                                    "keyCreate", "keyOther"};

std::string_view ModeName(LimitSettings::Mode mode) {
  switch (mode) {
    case LimitSettings::Mode::kOff:
      return "off";
    case LimitSettings::Mode::kAzure:
      return "azure";
    case LimitSettings::Mode::kCustom:
      return "custom";
  }
  return "off";
}

int64_t& Slot(VaultLimits& l, size_t i) {
  switch (i) {
    case 0:
      return l.secret_create;
    case 1:
      return l.secret_other;
    case 2:
      return l.key_create;
    default:
      return l.key_other;
  }
}

Json LimitsJson(VaultLimits l) {
  Json j = Json::object();
  for (size_t i = 0; i < kLimitClasses; ++i) {
    j[std::string(kClassKeys[i])] = Slot(l, i);
  }
  return j;
}

StatusOr<VaultLimits> ParseLimits(const Json& j, const std::string& where) {
  if (!j.is_object()) {
    return InvalidArgumentError(where + " must be an object of limits per 10 seconds",
                                "BadParameter");
  }
  VaultLimits out;
  for (const auto& [key, value] : j.items()) {
    size_t i = 0;
    while (i < kLimitClasses && kClassKeys[i] != key) {
      ++i;
    }
    if (i == kLimitClasses) {
      return InvalidArgumentError(where + " has an unknown key " + QuoteForError(key) +
                                      " (secretCreate, secretOther, keyCreate, keyOther)",
                                  "BadParameter");
    }
    if (!value.is_number_integer() || value.get<int64_t>() < 1 ||
        value.get<int64_t>() > kMaxLimit) {
      return InvalidArgumentError(
          where + "." + key + " must be a whole number from 1 to " + std::to_string(kMaxLimit),
          "BadParameter");
    }
    Slot(out, i) = value.get<int64_t>();
  }
  return out;
}

}  // namespace

int64_t VaultLimits::Of(LimitClass c) const {
  switch (c) {
    case LimitClass::kSecretCreate:
      return secret_create;
    case LimitClass::kSecretOther:
      return secret_other;
    case LimitClass::kKeyCreate:
      return key_create;
    case LimitClass::kKeyOther:
      return key_other;
  }
  return secret_other;
}

StatusOr<LimitSettings::Mode> LimitSettings::ParseMode(std::string_view mode) {
  for (Mode m : {Mode::kOff, Mode::kAzure, Mode::kCustom}) {
    if (mode == ModeName(m)) {
      return m;
    }
  }
  return InvalidArgumentError("mode " + QuoteForError(mode) + " is not off, azure or custom",
                              "BadParameter");
}

std::string LimitSettings::ToJson() const {
  Json vault_limits = Json::object();
  for (const auto& [name, limits] : vaults) {
    vault_limits[name] = LimitsJson(limits);
  }
  return coffer::ToJson(Json{{"mode", std::string(ModeName(mode))},
                             {"limits", LimitsJson(custom)},
                             {"vaults", std::move(vault_limits)}});
}

StatusOr<LimitSettings> LimitSettings::Parse(std::string_view json) {
  std::optional<Json> j = ParseJson(json, 4);
  if (!j || !j->is_object()) {
    return InvalidArgumentError(
        "The body must be a JSON object: {\"mode\": \"off\" | \"azure\" | \"custom\", "
        "\"limits\": {...}, \"vaults\": {...}}.",
        "BadParameter");
  }
  LimitSettings out;
  for (const auto& [key, value] : j->items()) {
    if (key == "mode") {
      if (!value.is_string()) {
        return InvalidArgumentError("mode must be a string", "BadParameter");
      }
      ASSIGN_OR_RETURN(out.mode, ParseMode(value.get<std::string>()));
    } else if (key == "limits") {
      ASSIGN_OR_RETURN(out.custom, ParseLimits(value, "limits"));
    } else if (key == "vaults") {
      if (!value.is_object() || value.size() > kMaxVaults) {
        return InvalidArgumentError(
            "vaults must be an object of at most " + std::to_string(kMaxVaults) + " vaults",
            "BadParameter");
      }
      for (const auto& [vault, limits] : value.items()) {
        bool name = !vault.empty() && vault.size() <= 24;
        for (char c : vault) {
          name = name && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                          (c >= 'A' && c <= 'Z') || c == '-');
        }
        if (!name) {
          return InvalidArgumentError("vaults: " + QuoteForError(vault) + " is not a vault name",
                                      "BadParameter");
        }
        ASSIGN_OR_RETURN(out.vaults[AsciiLower(vault)], ParseLimits(limits, "vaults." + vault));
      }
    } else {
      return InvalidArgumentError("unknown key " + QuoteForError(key) + " (mode, limits, vaults)",
                                  "BadParameter");
    }
  }
  return out;
}

StatusOr<LimitSettings> LimitSettings::Patch(const LimitSettings& base, std::string_view json) {
  std::optional<Json> patch = ParseJson(json, 4);
  if (!patch || !patch->is_object()) {
    return InvalidArgumentError(
        "The body must be a JSON object with some of mode, limits and vaults.", "BadParameter");
  }
  std::optional<Json> merged = ParseJson(base.ToJson(), 4);
  for (const auto& [key, value] : patch->items()) {
    if (key != "vaults" || !value.is_object()) {
      (*merged)[key] = value;  // Parse refuses what does not belong
      continue;
    }
    for (const auto& [vault, limits] : value.items()) {
      if (limits.is_null()) {
        (*merged)["vaults"].erase(AsciiLower(vault));
      } else {
        (*merged)["vaults"][vault] = limits;
      }
    }
  }
  return Parse(coffer::ToJson(*merged));
}

ServiceLimits::ServiceLimits(const Clock& clock) : clock_(clock) {}

LimitClass ServiceLimits::ClassOf(std::string_view operation) {
  if (operation == "SecretSet" || operation == "SecretRestore") {
    return LimitClass::kSecretCreate;
  }
  if (operation == "KeyCreate" || operation == "KeyImport" || operation == "KeyRestore" ||
      operation == "KeyRotate") {
    return LimitClass::kKeyCreate;
  }
  if (StartsWith(operation, "Key") || operation == "GetRandomBytes") {
    return LimitClass::kKeyOther;
  }
  return LimitClass::kSecretOther;
}

void ServiceLimits::Apply(const LimitSettings& settings) {
  // settings_mu_ is held throughout, so that two Applies cannot leave the
  // shards with each other's settings; Charge takes only a shard's lock.
  std::lock_guard<std::mutex> lock(settings_mu_);
  settings_ = settings;
  for (Shard& shard : shards_) {
    std::lock_guard<std::mutex> shard_lock(shard.mu);
    shard.settings = settings;
  }
  on_.store(settings.mode != LimitSettings::Mode::kOff);
  azure_.store(settings.mode == LimitSettings::Mode::kAzure);
}

LimitSettings ServiceLimits::settings() const {
  std::lock_guard<std::mutex> lock(settings_mu_);
  return settings_;
}

int64_t ServiceLimits::KeyWeight(int rsa_bits) {
  if (rsa_bits > 3072) {
    return 8;
  }
  return rsa_bits > 2048 ? 4 : 1;
}

namespace {

// The subscription's word: window (16 bits) | share (24) | used (24).
constexpr uint64_t kField = 0xffffff;
constexpr uint64_t kNoShare = kField;

uint64_t PackUse(int64_t index, uint64_t share, uint64_t used) {
  return (static_cast<uint64_t>(index) & 0xffff) << 48 | (share & kField) << 24 | (used & kField);
}
bool SameWindow(uint64_t word, int64_t index) {
  return (word >> 48) == (static_cast<uint64_t>(index) & 0xffff);
}

uint64_t PackSplit(const ShareSplit& s) {
  return (static_cast<uint64_t>(s.window) & 0xffffffffu) << 32 |
         (static_cast<uint64_t>(std::max(1, s.members)) & 0x7fffffffu) << 1 | (s.member ? 1 : 0);
}

// Reserve is what a server keeps of a budget it spares to another: what it
// used since it last told, and at least a tenth of its even share.
int64_t Reserve(int64_t used_since, int64_t even) {
  return std::max<int64_t>({1, used_since, even / 10});
}

std::string ShareKey(std::string_view vault, size_t cls) {
  return std::string(vault) + "/" + std::to_string(cls);
}

// The vault ("*": the installation) and class ShareKey made `key` of;
// nullopt for a key it could not have made.
std::optional<std::pair<std::string, size_t>> ParseShareKey(const std::string& key) {
  const size_t slash = key.rfind('/');
  if (slash == std::string::npos || slash == 0 || slash + 2 != key.size() || key[slash + 1] < '0' ||
      key[slash + 1] >= '0' + static_cast<char>(kLimitClasses)) {
    return std::nullopt;
  }
  return std::make_pair(key.substr(0, slash), static_cast<size_t>(key[slash + 1] - '0'));
}

// The whole seconds from `now` to the end of window `index` (at least 1):
// a refusal's Retry-After when nothing more may come in the window.
int64_t SecondsLeft(int64_t index, int64_t now) {
  const int64_t left = (index + 1) * kWindowMicros - now;
  return std::max<int64_t>(1, (left + 999'999) / 1'000'000);
}

}  // namespace

int64_t ServiceLimits::WindowAt(int64_t micros) {
  return micros / kWindowMicros;
}

void ServiceLimits::SetSplit(const ShareSplit& now, const ShareSplit& next) {
  split_now_.store(PackSplit(now), std::memory_order_relaxed);
  split_next_.store(PackSplit(next), std::memory_order_relaxed);
}

int64_t ServiceLimits::Even(int64_t index, int64_t budget) const {
  const uint64_t window = static_cast<uint64_t>(index) & 0xffffffffu;
  uint64_t split = split_now_.load(std::memory_order_relaxed);
  bool known = (split >> 32) == window;
  if (!known) {
    split = split_next_.load(std::memory_order_relaxed);
    known = (split >> 32) == window;
  }
  const int64_t members = static_cast<int64_t>((split >> 1) & 0x7fffffffu);
  if (members == 0) {
    return budget;  // nothing known yet: alone
  }
  if (known && (split & 1) == 0) {
    return 0;  // no member of the window
  }
  // A window no split names yet: as the newest split said, this server in it.
  return budget / members;
}

std::pair<int64_t, int64_t> ServiceLimits::Budgets(const LimitSettings& s, const std::string& vault,
                                                   LimitClass cls) {
  switch (s.mode) {
    case LimitSettings::Mode::kOff:
      break;
    case LimitSettings::Mode::kAzure: {
      const int64_t limit = VaultLimits{}.Of(cls);
      return {limit, 5 * limit};
    }
    case LimitSettings::Mode::kCustom: {
      auto it = s.vaults.find(vault);
      return {(it == s.vaults.end() ? s.custom : it->second).Of(cls), 5 * s.custom.Of(cls)};
    }
  }
  return {0, 0};
}

std::optional<int64_t> ServiceLimits::ChargeSubscription(size_t cls, int64_t index, int64_t weight,
                                                         int64_t limit, int64_t now) {
  std::atomic<uint64_t>& slot = subscription_[cls];
  uint64_t seen = slot.load(std::memory_order_relaxed);
  while (true) {
    const bool same = SameWindow(seen, index);
    const int64_t used = same ? static_cast<int64_t>(seen & kField) : 0;
    const uint64_t field = same ? (seen >> 24) & kField : kNoShare;
    const int64_t share =
        field == kNoShare ? Even(index, limit) : std::min(static_cast<int64_t>(field), limit);
    if (used + weight > share && (used > 0 || share <= 0)) {
      if (share < limit && subscription_exhausted_[cls].load(std::memory_order_relaxed) != index) {
        subscription_refused_[cls].fetch_add(1, std::memory_order_relaxed);
        return 1;  // another server may spare some: soon
      }
      return SecondsLeft(index, now);
    }
    const uint64_t next = PackUse(index, field, static_cast<uint64_t>(used + weight));
    if (slot.compare_exchange_weak(seen, next, std::memory_order_relaxed)) {
      return std::nullopt;
    }
  }
}

std::optional<int64_t> ServiceLimits::Charge(std::string_view vault, std::string_view operation,
                                             int64_t weight) {
  if (!on()) {
    return std::nullopt;
  }
  weight = std::max<int64_t>(1, weight);
  const std::string key = AsciiLower(vault);
  const LimitClass cls = ClassOf(operation);
  const size_t c = static_cast<size_t>(cls);
  const int64_t now = clock_.NowMicros();
  const int64_t index = now / kWindowMicros;
  Shard& shard = shards_[std::hash<std::string>{}(key) % shards_.size()];
  std::lock_guard<std::mutex> lock(shard.mu);
  if (shard.settings.mode == LimitSettings::Mode::kOff) {
    return std::nullopt;
  }
  const auto [limit, subscription_limit] = Budgets(shard.settings, key, cls);
  Window& w = shard.vaults[key][c];
  if (w.index != index) {
    w = Window{};
    w.index = index;
    w.share = -1;  // the window's even share until a claim says otherwise
  }
  const int64_t share = w.share < 0 ? Even(index, limit) : std::min(w.share, limit);
  if (w.used + weight > share && (w.used > 0 || share <= 0)) {
    if (share < limit && !w.exhausted) {
      ++w.refused;
      return 1;  // another server may spare some: soon
    }
    return SecondsLeft(index, now);
  }
  // The vault's budget holds it (this shard's lock keeps it so); now the
  // installation's.
  if (auto refused = ChargeSubscription(c, index, weight, subscription_limit, now)) {
    return refused;
  }
  w.used += weight;
  return std::nullopt;
}

std::vector<ShareClaim> ServiceLimits::Claims(int64_t window, const std::set<std::string>& wanted) {
  std::vector<ShareClaim> out;
  std::set<std::string> known;
  // A window's entry of this server: what to claim or spare of it.
  const auto consider = [&](const std::string& key, int64_t limit, int64_t used, int64_t& prev,
                            int64_t refused, int64_t share,
                            bool implicit) -> std::optional<int64_t> {
    const int64_t since = used - prev;
    prev = used;
    if (refused > 0 && share < limit) {
      out.push_back({key, limit, share, true});
      return share;
    }
    if (wanted.count(key)) {
      const int64_t keep = std::min(share, used + Reserve(since, Even(window, limit)));
      if (keep < share || implicit) {
        out.push_back({key, limit, keep, false});
        return keep;
      }
    }
    return std::nullopt;
  };
  for (Shard& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    for (auto& [vault, windows] : shard.vaults) {
      for (size_t c = 0; c < kLimitClasses; ++c) {
        Window& w = windows[c];
        if (w.index != window) {
          continue;
        }
        const int64_t limit = Budgets(shard.settings, vault, static_cast<LimitClass>(c)).first;
        const std::string key = ShareKey(vault, c);
        known.insert(key);
        const int64_t share = w.share < 0 ? Even(window, limit) : std::min(w.share, limit);
        const int64_t refused = std::exchange(w.refused, 0);
        if (auto set = consider(key, limit, w.used, w.prev, refused, share, w.share < 0)) {
          w.share = *set;
        }
      }
    }
  }
  const LimitSettings settings = this->settings();
  for (size_t c = 0; c < kLimitClasses; ++c) {
    const std::string key = ShareKey("*", c);
    known.insert(key);
    const int64_t limit = Budgets(settings, "", static_cast<LimitClass>(c)).second;
    const int64_t refused = subscription_refused_[c].exchange(0, std::memory_order_relaxed);
    std::atomic<uint64_t>& slot = subscription_[c];
    uint64_t seen = slot.load(std::memory_order_relaxed);
    int64_t prev = subscription_prev_[c].load(std::memory_order_relaxed);
    while (limit > 0) {
      const bool same = SameWindow(seen, window);
      const int64_t used = same ? static_cast<int64_t>(seen & kField) : 0;
      const uint64_t field = same ? (seen >> 24) & kField : kNoShare;
      const int64_t share =
          field == kNoShare ? Even(window, limit) : std::min(static_cast<int64_t>(field), limit);
      int64_t at = same ? prev : 0;
      const size_t before = out.size();
      std::optional<int64_t> set =
          consider(key, limit, used, at, refused, share, field == kNoShare);
      if (!set) {
        subscription_prev_[c].store(at, std::memory_order_relaxed);
        break;
      }
      // The share is lowered only if no request took more meanwhile.
      if (slot.compare_exchange_weak(
              seen, PackUse(window, static_cast<uint64_t>(*set), static_cast<uint64_t>(used)),
              std::memory_order_relaxed)) {
        subscription_prev_[c].store(at, std::memory_order_relaxed);
        break;
      }
      out.resize(before);
    }
  }
  // Budgets another server wants that this one has not used in the window:
  // all of its share but the reserve is spared.
  for (const std::string& key : wanted) {
    auto parsed = ParseShareKey(key);
    if (known.count(key) || !parsed) {
      continue;
    }
    const auto& [vault, c] = *parsed;
    Shard& shard = shards_[std::hash<std::string>{}(vault) % shards_.size()];
    std::lock_guard<std::mutex> lock(shard.mu);
    if (shard.settings.mode == LimitSettings::Mode::kOff) {
      continue;
    }
    const int64_t limit = Budgets(shard.settings, vault, static_cast<LimitClass>(c)).first;
    Window& w = shard.vaults[vault][c];
    if (w.index == window) {
      continue;  // a request came since: it will be considered next time
    }
    w = Window{};
    w.index = window;
    w.share = std::min(Even(window, limit), Reserve(0, Even(window, limit)));
    out.push_back({key, limit, w.share, false});
  }
  return out;
}

void ServiceLimits::Grant(int64_t window, const std::vector<ShareClaim>& claims,
                          const ShareView& view) {
  for (size_t i = 0; i < claims.size() && i < view.granted.size(); ++i) {
    const std::string& key = claims[i].key;
    const int64_t granted = std::max(view.granted[i], claims[i].held);
    const bool exhausted = i < view.exhausted.size() && view.exhausted[i];
    auto parsed = ParseShareKey(key);
    if (!parsed) {
      continue;
    }
    const auto& [vault, c] = *parsed;
    if (vault == "*") {
      std::atomic<uint64_t>& slot = subscription_[c];
      uint64_t seen = slot.load(std::memory_order_relaxed);
      while (SameWindow(seen, window)) {
        const uint64_t field = (seen >> 24) & kField;
        if (field != kNoShare && static_cast<int64_t>(field) >= granted) {
          break;
        }
        if (slot.compare_exchange_weak(
                seen, PackUse(window, static_cast<uint64_t>(granted), seen & kField),
                std::memory_order_relaxed)) {
          break;
        }
      }
      subscription_exhausted_[c].store(exhausted ? window : -1, std::memory_order_relaxed);
      continue;
    }
    Shard& shard = shards_[std::hash<std::string>{}(vault) % shards_.size()];
    std::lock_guard<std::mutex> lock(shard.mu);
    auto it = shard.vaults.find(vault);
    if (it == shard.vaults.end() || it->second[c].index != window) {
      continue;
    }
    Window& w = it->second[c];
    w.share = std::max(w.share, granted);
    w.exhausted = exhausted;
  }
}

Status ServiceLimits::Sync(storage::Store& store, const std::string& self, int64_t& written_ms) {
  constexpr int64_t kHeartbeatMillis = 5'000;
  const int64_t now_ms = clock_.NowMicros() / 1000;
  const int64_t window = WindowAt(now_ms * 1000);
  const bool heartbeat = now_ms - written_ms >= kHeartbeatMillis;
  std::vector<ShareClaim> claims;
  if (on()) {
    ASSIGN_OR_RETURN(std::optional<std::string> stored, store.GetMeta(kLimitSharesMetaKey));
    ShareView seen = ReadShares(stored, self, now_ms, window);
    SetSplit(seen.now, seen.next);
    SetServers(seen.live);
    // What this server spares is lowered here, before the others hear of it.
    claims = Claims(window, seen.wanted);
  }
  if (claims.empty() && !heartbeat) {
    return OkStatus();
  }
  ShareView view;
  // When the write fails, what was spared stays spared, what was wanted is
  // asked for again when refused again, and the heartbeat is tried again in
  // 5 s.
  written_ms = now_ms;
  ASSIGN_OR_RETURN(
      std::string written,
      store.UpdateMeta(kLimitSharesMetaKey,
                       [&](const std::optional<std::string>& doc) -> StatusOr<std::string> {
                         return MergeShares(doc, self, now_ms, window, claims, &view);
                       }));
  if (!view.stale) {
    SetSplit(view.now, view.next);
  }
  SetServers(view.live);
  Grant(window, claims, view);
  return OkStatus();
}

Status ServiceLimits::Leave(storage::Store& store, const std::string& self) {
  return store
      .UpdateMeta(kLimitSharesMetaKey,
                  [&](const std::optional<std::string>& doc) -> StatusOr<std::string> {
                    return LeaveShares(doc, self);
                  })
      .status();
}

http::Response ServiceLimits::Throttled(int64_t retry_after_seconds) {
  http::Response r = http::ErrorResponse(
      429, "Throttled",
      "Request was not processed because too many requests were received. Reason: "
      "VaultRequestTypeLimitReached");
  r.SetHeader("Retry-After", std::to_string(retry_after_seconds));
  return r;
}

}  // namespace coffer::server
