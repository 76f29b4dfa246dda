// The C++ SDK's read path (Google Benchmark):
//   BM_CachedGetSecret   SecretCache::GetSecret of a cached secret (target: p50 < 1 us);
//   BM_VaultGetSecret    the baseline: SecretClient::GetSecret of the same secret from a
//                        real server over loopback TLS, registered when COFFER_VAULT_URL
//                        and the dev credentials are in the environment (bench/run.sh
//                        step 10 sets them).
// Run with --benchmark_repetitions to get the median (p50) across repetitions.

#include <cstdlib>

#include <benchmark/benchmark.h>

#include "coffer/credentials.h"
#include "coffer/secret_cache.h"
#include "coffer/secret_client.h"

namespace {

// An in-process vault answering one secret, so the cache is measured alone.
class OneSecret : public coffer::HttpTransport {
 public:
  coffer::StatusOr<coffer::HttpResponse> Send(const coffer::HttpRequest& r) override {
    for (const auto& header : r.headers) {
      if (header.first == "Authorization") {
        return coffer::HttpResponse{
            200,
            {},
            R"({"id":"https://dev.vault.localhost/secrets/db-password/v1",)"
            R"("value":"s3cr3t-value-for-the-benchmark","contentType":"text/plain",)"
            R"("attributes":{"enabled":true,"created":1,"updated":1},"tags":{"env":"bench"}})"};
      }
    }
    return coffer::HttpResponse{
        401, {{"WWW-Authenticate", "Bearer resource=\"https://vault.localhost\""}}, ""};
  }
  coffer::StatusOr<coffer::HttpResponse> Stream(const coffer::HttpRequest&,
                                                const std::function<bool(std::string_view)>&,
                                                const std::atomic<bool>*) override {
    return coffer::Status(coffer::StatusCode::kUnavailable, "no stream");
  }
};

class FixedToken : public coffer::TokenCredential {
 public:
  coffer::StatusOr<coffer::AccessToken> GetToken(const std::string&) override {
    return coffer::AccessToken{"t", std::chrono::system_clock::now() + std::chrono::hours(1)};
  }
};

void BM_CachedGetSecret(benchmark::State& state) {
  coffer::SecretClientOptions options;
  options.transport = std::make_shared<OneSecret>();
  auto client = std::make_shared<coffer::SecretClient>("https://dev.vault.localhost",
                                                       std::make_shared<FixedToken>(), options);
  coffer::SecretCacheOptions cache_options;
  cache_options.watch = false;
  coffer::SecretCache cache(client, cache_options);
  if (!cache.GetSecret("db-password").ok()) {
    state.SkipWithError("the first read failed");
    return;
  }
  for (auto _ : state) {
    auto secret = cache.GetSecret("db-password");
    benchmark::DoNotOptimize(secret);
  }
  state.counters["requests_after_first"] = static_cast<double>(cache.stats().misses - 1);
}
BENCHMARK(BM_CachedGetSecret);

void BM_VaultGetSecret(benchmark::State& state) {
  auto env = [](const char* n) { return std::getenv(n) ? std::string(std::getenv(n)) : ""; };
  coffer::CredentialOptions cred_options;
  cred_options.authority_host = env("AZURE_AUTHORITY_HOST");
  auto credential = std::make_shared<coffer::ClientSecretCredential>(
      env("AZURE_TENANT_ID"), env("AZURE_CLIENT_ID"), env("AZURE_CLIENT_SECRET"), cred_options);
  coffer::SecretClient client(env("COFFER_VAULT_URL"), credential);
  if (!client.GetSecret("bench-get").ok()) {
    state.SkipWithError("cannot read bench-get from COFFER_VAULT_URL");
    return;
  }
  for (auto _ : state) {
    auto secret = client.GetSecret("bench-get");
    benchmark::DoNotOptimize(secret);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (std::getenv("COFFER_VAULT_URL") != nullptr) {
    benchmark::RegisterBenchmark("BM_VaultGetSecret", BM_VaultGetSecret)
        ->Unit(benchmark::kMicrosecond);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
