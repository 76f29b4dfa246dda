// Cost of bearer-token validation on the vault's hot path, in nanoseconds per
// request, measured with the server's own classes (bench/run.sh prints it
// next to the GET benchmark of the same run; docs/benchmarks.md):
//   cached  Authenticator::TryCached with a token verified before: what every
//           GET after a token's first use pays (SHA-256 of the token, one map
//           lookup under a mutex);
//   full    Authenticator::Authenticate with an empty cache: RS256 signature
//           check, claim checks and the principal lookup, paid once per token.
// Usage: token_validation_bench [--threads N] [--seconds S]

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "auth/directory.h"
#include "auth/signing_keys.h"
#include "auth/token_service.h"
#include "auth/token_verifier.h"
#include "server/authenticator.h"
#include "storage/memory/memory_store.h"

namespace {

using Clock = std::chrono::steady_clock;

template <class Fn>
double NanosPerOp(int threads, double seconds, Fn fn) {
  std::atomic<bool> stop{false};
  std::atomic<long> ops{0};
  std::vector<std::thread> pool;
  auto start = Clock::now();
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      long n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        fn();
        ++n;
      }
      ops += n;
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& th : pool) {
    th.join();
  }
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  // CPU time per operation: each thread spends `elapsed` seconds.
  return elapsed * threads * 1e9 / static_cast<double>(ops.load());
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  double seconds = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--threads") {
      threads = std::atoi(argv[i + 1]);
    } else if (flag == "--seconds") {
      seconds = std::atof(argv[i + 1]);
    }
  }
  using namespace coffer;
  auto dir =
      std::filesystem::temp_directory_path() / ("coffer-token-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  SystemClock& clock = SystemClock::Get();
  storage::MemoryStore store;
  // The keys as a server keeps them: sealed in the store (no key files in `dir`).
  auto keys = auth::SigningKeySet::Open(
      store, auth::SigningKeySet::SealingKeyFor(std::string(32, 'm')), dir.string(), clock);
  if (!keys.ok()) {
    std::fprintf(stderr, "signing keys: %s\n", keys.status().ToString().c_str());
    return 1;
  }
  const std::string tenant = "00000000-0000-4000-8000-000000000001";
  storage::PrincipalRecord p{"oid-bench", "app-bench", tenant, "bench", "ServicePrincipal",
                             0,           "",          "",     "{}"};
  (void)store.CreatePrincipal(p);
  auth::Directory directory(store, clock, tenant,
                            auth::DirectoryOptions{std::string(32, 'k'), {}, {}, 16384});
  auth::TokenServiceConfig ts;
  ts.tenant_id = tenant;
  ts.authority_hosts = {"localhost:8443"};
  ts.resources = {"https://vault.localhost:8443"};
  auth::TokenService tokens(ts, directory, **keys, clock);
  auth::TokenVerifier verifier(**keys, clock, tokens.Issuers(), tenant);
  const std::vector<std::string> audiences = {"https://vault.localhost:8443"};
  const std::string header =
      "Bearer " + tokens.IssueAppToken(p, audiences[0], tokens.CanonicalIssuer());

  server::Authenticator warm(verifier, store, clock);
  if (!warm.Authenticate(header, audiences).ok()) {
    std::fprintf(stderr, "the benchmark token does not verify\n");
    return 1;
  }
  double cached = NanosPerOp(threads, seconds, [&] {
    if (!warm.TryCached(header, audiences)) {
      std::abort();
    }
  });
  double full = NanosPerOp(threads, seconds, [&] {
    server::Authenticator cold(verifier, store, clock);
    if (!cold.Authenticate(header, audiences).ok()) {
      std::abort();
    }
  });
  std::printf("token validation: cached %.0f ns/request, full %.0f ns/token (%d threads)\n", cached,
              full, threads);
  std::filesystem::remove_all(dir);
  return 0;
}
