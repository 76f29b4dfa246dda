// The secrets REST mapping on arbitrary method/path/body: always a
// well-formed response, never a crash; the store stays consistent.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/json.h"
#include "crypto/primitives.h"
#include "keyvault/secrets_api.h"
#include "storage/memory/memory_store.h"

namespace {

struct World {
  World()
      : clock(1800000000),
        envelope(coffer::keyvault::Envelope::Create(coffer::crypto::RandomBytes(32)).value()),
        registry(store, *envelope, clock),
        service(store, *envelope, clock),
        api(service),
        routes(api.Operations()) {
    coffer::storage::VaultRecord v;
    v.name = "kv";
    v.tags_json = "{}";
    v.wrapped_data_key = envelope->NewWrappedDataKey("kv");
    (void)store.CreateVault(v);
  }
  coffer::storage::MemoryStore store;
  coffer::FakeClock clock;
  std::unique_ptr<coffer::keyvault::Envelope> envelope;
  coffer::keyvault::VaultRegistry registry;
  coffer::keyvault::SecretService service;
  coffer::keyvault::SecretsApi api;
  coffer::keyvault::VaultRoutes routes;
};

}  // namespace

// Input: "<METHOD> <target>\n<body>".
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World world;
  std::string in(reinterpret_cast<const char*>(data), size);
  size_t nl = in.find('\n');
  std::string line = in.substr(0, nl);
  coffer::http::Request r;
  r.host = "kv.vault.localhost:8443";
  size_t sp = line.find(' ');
  r.method = line.substr(0, sp);
  std::string target = sp == std::string::npos ? "/" : line.substr(sp + 1);
  if (!coffer::http::ParseTarget(target, r).ok()) {
    return 0;
  }
  r.body = nl == std::string::npos ? "" : in.substr(nl + 1);
  auto found = world.routes.Find(r);
  coffer::http::Response res;
  if (found.operation == nullptr) {
    res = coffer::keyvault::VaultRoutes::Unmatched(found);
  } else {
    auto vault = world.registry.Get("kv").value();
    coffer::authz::Principal who{"oid", "app", "tenant"};
    res = found.operation->handle(coffer::keyvault::VaultCall{vault, r, found.params, who});
  }
  if (res.status < 200 || res.status > 599) {
    std::abort();
  }
  if (res.status >= 400 && !coffer::ParseJson(res.body)) {
    std::abort();  // every error has a JSON body
  }
  return 0;
}
