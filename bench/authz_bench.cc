// One authorization decision, measured with the server's own Authorizer
// (Google Benchmark), with 1,000 role assignments in the tenant:
//   RbacAllow      a data-plane read granted by a vault-scope assignment;
//   RbacDeny       a read no assignment of the principal covers;
//   AllScopes      a write none of the principal's four assignments grants;
//   AccessPolicy   a read granted by the last of 1,024 access-policy entries;
//   Management     an ARM action granted at the resource group.
// bench/run.sh runs it with repetitions and reports the median
// (docs/benchmarks.md).

#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "authz/authorizer.h"
#include "authz/permissions.h"
#include "common/json.h"
#include "storage/memory/memory_store.h"

namespace {

using coffer::authz::Authorizer;
using coffer::authz::VaultContext;

constexpr char kSub[] = "/subscriptions/00000000-0000-0000-0000-000000000001";
const std::string kRg = std::string(kSub) + "/resourceGroups/rg-7";
const std::string kVault = kRg + "/providers/Microsoft.KeyVault/vaults/vault-7";
constexpr char kSecretsUser[] = "4633458b-17de-408a-b874-0445c86b69e6";
constexpr char kSecretsOfficer[] = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7";
constexpr char kReader[] = "21090545-7ca7-4776-b22c-e363652d74d2";
constexpr char kContributor[] = "b24988ac-6180-42a0-ab88-20f7382dd24c";

struct World {
  coffer::storage::MemoryStore store;
  Authorizer authz{store};
  coffer::authz::AccessPolicySet policies;

  World() {
    // 1,000 assignments: 996 spread over 250 other principals at every kind
    // of scope, and 4 for the principal under test ("me").
    const char* roles[] = {kSecretsUser, kSecretsOfficer, kReader, kContributor};
    int n = 0;
    auto add = [&](const std::string& principal, const std::string& role,
                   const std::string& scope) {
      coffer::storage::RoleAssignmentRecord a{
          "a" + std::to_string(n++), scope, role, principal, "ServicePrincipal", "", "", 1, 1};
      (void)store.CreateRoleAssignment(a);
    };
    for (int i = 0; i < 996; ++i) {
      std::string rg = std::string(kSub) + "/resourceGroups/rg-" + std::to_string(i % 20);
      std::string vault =
          rg + "/providers/Microsoft.KeyVault/vaults/vault-" + std::to_string(i % 20);
      std::string scope = i % 4 == 0   ? std::string(kSub)
                          : i % 4 == 1 ? rg
                          : i % 4 == 2 ? vault
                                       : vault + "/secrets/s" + std::to_string(i);
      add("p" + std::to_string(i % 250), roles[i % 4], scope);
    }
    add("me", kSecretsUser, std::string(kSub) + "/resourceGroups/rg-3");
    add("me", kSecretsUser, kVault + "/secrets/only-this");
    add("me", kContributor, kRg);
    add("me", kSecretsUser, kVault);
    (void)authz.Reload();
    coffer::Json entries = coffer::Json::array();
    for (int i = 0; i < 1024; ++i) {
      entries.push_back({{"tenantId", "t"},
                         {"objectId", i == 1023 ? "me" : "p" + std::to_string(i)},
                         {"permissions", {{"secrets", {"get", "list"}}}}});
    }
    policies = *coffer::authz::CompileAccessPolicies(entries);
  }
};

World& TheWorld() {
  static World world;
  return world;
}

const coffer::authz::Principal kMe{"me", "app", "t"};

// Decide times `decide` and checks every answer is `allowed`.
template <class Fn>
void Decide(benchmark::State& state, bool allowed, Fn decide) {
  for (auto _ : state) {
    auto d = decide();
    benchmark::DoNotOptimize(d.allowed);
    if (d.allowed != allowed) {
      state.SkipWithError(allowed ? "expected allow" : "expected deny");
    }
  }
}

void DataPlane(benchmark::State& state, bool allowed, const VaultContext& vault,
               const char* operation, const char* object) {
  World& w = TheWorld();
  const auto& op = *coffer::authz::FindOperation(operation);
  Decide(state, allowed, [&] { return w.authz.CheckData(kMe, vault, op, object); });
}

void RbacAllow(benchmark::State& state) {
  DataPlane(state, true, {true, nullptr, kVault}, "SecretGet", "db-password");
}

void RbacDeny(benchmark::State& state) {
  const std::string other =
      std::string(kSub) + "/resourceGroups/rg-9/providers/Microsoft.KeyVault/vaults/vault-9";
  DataPlane(state, false, {true, nullptr, other}, "SecretGet", "db-password");
}

void AllScopes(benchmark::State& state) {
  // Secrets User grants no set: every assignment of "me" is looked at.
  DataPlane(state, false, {true, nullptr, kVault}, "SecretSet", "only-this");
}

void AccessPolicy(benchmark::State& state) {
  DataPlane(state, true, {false, &TheWorld().policies, kVault}, "SecretGet", "db-password");
}

void Management(benchmark::State& state) {
  World& w = TheWorld();
  const std::string scope = kRg + "/providers/Microsoft.Web/sites/app";
  Decide(state, true, [&] { return w.authz.CheckAction(kMe, "Microsoft.Web/sites/write", scope); });
}

BENCHMARK(RbacAllow);
BENCHMARK(RbacDeny);
BENCHMARK(AllScopes);
BENCHMARK(AccessPolicy);
BENCHMARK(Management);

}  // namespace

BENCHMARK_MAIN();
