// The fields of a CSI MountRequest as the driver sends them, from a hostile
// or broken driver: the input is tried as `attributes` (ParseStringMapJson,
// then the Azure provider's rules with the pod keys required), as `secrets`
// (`null` allowed), as `permission` and as the service-account tokens
// attribute. None may crash; an accepted mode is at most 0777, and accepted
// objects name files the atomic writer accepts.
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include "agent/atomic_writer.h"
#include "agent/spc.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  using namespace coffer::agent;
  auto attributes = ParseStringMapJson(text, false);
  auto secrets = ParseStringMapJson(text, true);
  if (attributes.ok()) {
    auto params = ParseAzureProviderParameters(
        *attributes, secrets.ok() ? *secrets : std::map<std::string, std::string>{}, {});
    if (params.ok()) {
      for (const auto& object : params->objects) {
        // A selection names its files by its template (for a name it could
        // select).
        const std::string file =
            object.selector.has_value()
                ? object.selector->FileNameFor(object.selector->name_prefix + "x")
                : object.FileName();
        if (!ValidatePayloadPath(file).ok()) {
          std::abort();
        }
      }
    }
  }
  auto mode = ParsePermission(text);
  if (mode.ok() && *mode > 0777) {
    std::abort();
  }
  static_cast<void>(ParseServiceAccountTokens(text, kWorkloadIdentityAudience));
  return 0;
}
