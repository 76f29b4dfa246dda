// SecretProviderClass manifests and the Azure provider's parameters, as the
// agent reads them from files (standalone mounts): ParseSecretProviderClasses,
// then ParseAzureProviderParameters for each class, and ParseKubernetesSecret
// (nodePublishSecretRef files). None may crash, and every object they accept
// must name a file the atomic writer accepts (a selection: for a name it
// could select).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "agent/atomic_writer.h"
#include "agent/spc.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto classes = coffer::agent::ParseSecretProviderClasses(text);
  if (classes.ok()) {
    coffer::agent::AzureParseOptions options;
    options.require_pod_info = false;
    for (const auto& spc : *classes) {
      auto params = coffer::agent::ParseAzureProviderParameters(spc.parameters, {}, options);
      if (!params.ok()) {
        continue;
      }
      for (const auto& object : params->objects) {
        // A selection names its files by its template; a selected secret's
        // name is a Key Vault name that starts with the prefix.
        const std::string file =
            object.selector.has_value()
                ? object.selector->FileNameFor(object.selector->name_prefix + "x")
                : object.FileName();
        if (!coffer::agent::ValidatePayloadPath(file).ok() ||
            (object.file_permission && *object.file_permission > 0777)) {
          std::abort();
        }
      }
    }
  }
  static_cast<void>(coffer::agent::ParseKubernetesSecret(text));
  return 0;
}
