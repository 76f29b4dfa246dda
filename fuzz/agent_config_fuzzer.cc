// The standalone agent's config file (ParseAgentConfig). It must not crash,
// and what it accepts must hold the documented invariants: absolute, distinct
// targets, modes within 0777, a positive poll interval and jitter in [0, 1].
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "agent/agent_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = coffer::agent::ParseAgentConfig(text, "/etc/coffer");
  if (!config.ok()) {
    return 0;
  }
  if (config->poll_interval.count() <= 0 || !(config->jitter >= 0 && config->jitter <= 1)) {
    std::abort();
  }
  std::set<std::string> targets;
  std::set<std::string> names;
  for (const auto& mount : config->mounts) {
    if (mount.target.empty() || mount.target[0] != '/' || mount.target == "/" ||
        mount.spc_file.empty() || mount.spc_file[0] != '/' || mount.permission > 0777 ||
        !targets.insert(mount.target).second || !names.insert(mount.name).second) {
      std::abort();
    }
  }
  return 0;
}
