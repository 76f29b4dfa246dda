// The token verifier on arbitrary bytes: never accepts, never crashes.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "auth/token_verifier.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto keys = coffer::auth::SigningKeySet::ForTest();
  static coffer::FakeClock clock(1800000000);
  static coffer::auth::TokenVerifier verifier(*keys, clock, {"https://localhost/t/v2.0"}, "t");
  std::string_view token(reinterpret_cast<const char*>(data), size);
  if (verifier.Verify(token, {"https://vault.localhost"}).ok()) {
    std::abort();  // nothing not signed by `keys` may verify
  }
  return 0;
}
