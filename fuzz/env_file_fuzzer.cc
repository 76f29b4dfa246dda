// The environments file of `coffer env` (ParseEnvFile). It must not crash,
// and what it accepts must hold the documented invariants: every
// environment has a vault, no vault belongs to two environments, every
// secret and access entry names a vault of its own environment, and a
// secret whose expiry is required says how far ahead.
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include "cli/env_file.h"
#include "common/strings.h"

namespace {

bool HasVault(const coffer::cli::Environment& env, const std::string& name) {
  for (const auto& v : env.vaults) {
    if (coffer::EqualsIgnoreCase(v.name, name)) {
      return true;
    }
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  // Every manifest or reference file it names is this same text.
  auto read = [&](const std::string&) -> coffer::StatusOr<std::string> {
    return std::string(text);
  };
  auto file = coffer::cli::ParseEnvFile(text, "fuzz.yaml", read);
  if (!file.ok()) {
    return 0;
  }
  std::map<std::string, std::string> owner;
  for (const auto& env : file->environments) {
    if (env.vaults.empty()) {
      std::abort();
    }
    for (const auto& v : env.vaults) {
      if (!owner.emplace(coffer::AsciiLower(v.name), env.name).second) {
        std::abort();
      }
    }
    for (const auto& a : env.access) {
      if (!HasVault(env, a.vault) || a.role.empty() == a.permissions.empty()) {
        std::abort();
      }
    }
    for (const auto& app : env.applications) {
      for (const auto& s : app.secrets) {
        if (!HasVault(env, s.vault) || (s.expiry_required && !s.max_ahead)) {
          std::abort();
        }
      }
    }
  }
  return 0;
}
