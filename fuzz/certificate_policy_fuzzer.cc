// ParseCertificatePolicy must never throw or crash on any JSON, and what it
// accepts must render and load back to the same policy (its stored form).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/json.h"
#include "keyvault/certificate_policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto json = coffer::ParseJson(text);
  if (!json) {
    return 0;
  }
  auto policy = coffer::keyvault::ParseCertificatePolicy(*json, {});
  if (!policy.ok()) {
    return 0;
  }
  std::string stored = coffer::ToJson(coffer::keyvault::RenderCertificatePolicy(*policy, ""));
  auto loaded = coffer::keyvault::LoadCertificatePolicy(stored);
  if (!loaded.ok() ||
      coffer::ToJson(coffer::keyvault::RenderCertificatePolicy(*loaded, "")) != stored) {
    std::abort();
  }
  return 0;
}
