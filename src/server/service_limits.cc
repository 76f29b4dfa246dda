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

bool ServiceLimits::ChargeSubscription(size_t cls, int64_t index, int64_t weight, int64_t limit) {
  const uint64_t window = static_cast<uint64_t>(index) & 0xffffffffu;
  std::atomic<uint64_t>& slot = subscription_[cls];
  uint64_t seen = slot.load(std::memory_order_relaxed);
  while (true) {
    uint64_t used = (seen >> 32) == window ? (seen & 0xffffffffu) : 0;
    if (used > 0 && used + static_cast<uint64_t>(weight) > static_cast<uint64_t>(limit)) {
      return false;
    }
    uint64_t next = (window << 32) | (used + static_cast<uint64_t>(weight));
    if (slot.compare_exchange_weak(seen, next, std::memory_order_relaxed)) {
      return true;
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
  const auto wait = [&] {
    int64_t left = (index + 1) * kWindowMicros - now;
    return std::max<int64_t>(1, (left + 999'999) / 1'000'000);
  };
  Shard& shard = shards_[std::hash<std::string>{}(key) % shards_.size()];
  std::lock_guard<std::mutex> lock(shard.mu);
  const LimitSettings& s = shard.settings;
  int64_t limit = 0;
  int64_t subscription_limit = 0;
  switch (s.mode) {
    case LimitSettings::Mode::kOff:
      return std::nullopt;
    case LimitSettings::Mode::kAzure:
      limit = VaultLimits{}.Of(cls);
      subscription_limit = 5 * limit;
      break;
    case LimitSettings::Mode::kCustom: {
      auto it = s.vaults.find(key);
      limit = (it == s.vaults.end() ? s.custom : it->second).Of(cls);
      subscription_limit = 5 * s.custom.Of(cls);
      break;
    }
  }
  Window& w = shard.vaults[key][c];
  if (w.index != index) {
    w.index = index;
    w.used = 0;
  }
  if (w.used > 0 && w.used + weight > limit) {
    return wait();
  }
  // The vault's budget holds it (this shard's lock keeps it so); now the
  // installation's.
  if (!ChargeSubscription(c, index, weight, subscription_limit)) {
    return wait();
  }
  w.used += weight;
  return std::nullopt;
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
