// The seed file (ParseSeed). It must not crash, and what it accepts must
// hold the documented invariants: at least one version per secret, values
// within Key Vault's size, no vault or secret named twice, and a file that
// RenderSeed writes back parses to the same shape.
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "cli/seed_file.h"
#include "common/strings.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  coffer::cli::SeedContext context;
  context.host = "localhost";
  context.port = 8443;
  context.now = 1800000000;
  auto seed = coffer::cli::ParseSeed(text, "fuzz.yaml", context);
  if (!seed.ok()) {
    return 0;
  }
  std::set<std::string> vaults;
  for (const auto& v : seed->vaults) {
    if (!vaults.insert(coffer::AsciiLower(v.name)).second) {
      std::abort();
    }
    std::set<std::string> secrets;
    for (const auto& s : v.secrets) {
      if (s.versions.empty() || !secrets.insert(coffer::AsciiLower(s.name)).second) {
        std::abort();
      }
      for (const auto& version : s.versions) {
        if (version.value && version.value->size() > 25 * 1024) {
          std::abort();
        }
      }
    }
  }
  auto again = coffer::cli::ParseSeed(coffer::cli::RenderSeed(*seed), "fuzz.yaml", context);
  if (!again.ok() || again->vaults.size() != seed->vaults.size() ||
      again->identities.size() != seed->identities.size() ||
      again->access.size() != seed->access.size()) {
    std::abort();
  }
  for (size_t i = 0; i < seed->vaults.size(); ++i) {
    for (size_t j = 0; j < seed->vaults[i].secrets.size(); ++j) {
      const auto& a = seed->vaults[i].secrets[j].versions;
      const auto& b = again->vaults[i].secrets[j].versions;
      if (a.size() != b.size()) {
        std::abort();
      }
      for (size_t k = 0; k < a.size(); ++k) {
        if (a[k].value != b[k].value || a[k].exp != b[k].exp || a[k].nbf != b[k].nbf ||
            a[k].enabled != b[k].enabled || a[k].tags != b[k].tags) {
          std::abort();
        }
      }
    }
  }
  return 0;
}
