// ParseJson must never throw or crash, and whatever it accepts must
// serialise and parse back to the same value.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = coffer::ParseJson(text);
  if (parsed) {
    auto again = coffer::ParseJson(coffer::ToJson(*parsed), 64);
    if (!again || *again != *parsed) {
      std::abort();
    }
  }
  return 0;
}
