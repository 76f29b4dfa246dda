#include "mgmt/vault_manager.h"

#include <gtest/gtest.h>

#include "crypto/primitives.h"
#include "storage/memory/memory_store.h"

namespace coffer::mgmt {
namespace {

class VaultManagerTest : public ::testing::Test {
 protected:
  VaultManagerTest()
      : clock_(1800000000),
        envelope_(keyvault::Envelope::Create(crypto::RandomBytes(32)).value()),
        registry_(store_, *envelope_, clock_),
        manager_(Config(), store_, *envelope_, registry_, clock_) {}

  static ManagementConfig Config() {
    ManagementConfig c;
    c.subscription_id = "sub1";
    c.tenant_id = "t1";
    c.vault_host_suffix = ".vault.localhost:8443/";
    return c;
  }

  http::Response Call(const std::string& method, const std::string& path,
                      const std::string& body = "") {
    http::Request r;
    r.method = method;
    EXPECT_TRUE(http::ParseTarget(path + "?api-version=2023-07-01", r).ok());
    r.body = body;
    // As the management plane runs it, authorization aside.
    auto match = table_.Find(r.method, r.segments);
    EXPECT_EQ(match.status, 200) << method << " " << path;
    if (match.status != 200) {
      return http::ErrorResponse(match.status, "NoRoute", "no route");
    }
    authz::Principal who{"oid", "app", "t1"};
    LinkedCheck linked = [](std::string_view, std::string_view) { return OkStatus(); };
    return routes_[match.index].handle(ArmCall{r, match.params, who, linked});
  }

  static std::string Path(const std::string& name) {
    return "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/" + name;
  }
  static std::string Code(const http::Response& r) {
    return (*ParseJson(r.body))["error"]["code"].get<std::string>();
  }

  storage::MemoryStore store_;
  FakeClock clock_;
  std::unique_ptr<keyvault::Envelope> envelope_;
  keyvault::VaultRegistry registry_;
  VaultManager manager_;
  std::vector<ArmRoute> routes_ = manager_.Routes();
  http::RouteTable table_{http::RouteTable::EntriesOf(routes_), true};
};

TEST_F(VaultManagerTest, CreateGetListDelete) {
  auto created = Call("PUT", Path("kv1"),
                      R"({"location":"westeurope","tags":{"a":"b"},
                          "properties":{"tenantId":"t1","sku":{"family":"A","name":"standard"},
                          "softDeleteRetentionInDays":7}})");
  ASSERT_EQ(created.status, 201) << created.body;
  auto j = *ParseJson(created.body);
  EXPECT_EQ(j["id"], Path("kv1"));
  EXPECT_EQ(j["type"], "Microsoft.KeyVault/vaults");
  EXPECT_EQ(j["properties"]["vaultUri"], "https://kv1.vault.localhost:8443/");
  EXPECT_EQ(j["properties"]["softDeleteRetentionInDays"], 7);
  EXPECT_EQ(j["properties"]["enableSoftDelete"], true);
  EXPECT_EQ(j["tags"]["a"], "b");
  EXPECT_EQ(Call("PUT", Path("kv1"), R"({"properties":{"softDeleteRetentionInDays":7}})").status,
            200);
  EXPECT_EQ(Call("GET", Path("KV1")).status, 200);
  auto list =
      *ParseJson(Call("GET", "/subscriptions/sub1/providers/Microsoft.KeyVault/vaults").body);
  EXPECT_EQ(list["value"].size(), 1u);
  auto other_rg = *ParseJson(
      Call("GET", "/subscriptions/sub1/resourceGroups/rg2/providers/Microsoft.KeyVault/vaults")
          .body);
  EXPECT_EQ(other_rg["value"].size(), 0u);
  EXPECT_EQ(Call("DELETE", Path("kv1")).status, 200);
  EXPECT_EQ(Call("DELETE", Path("kv1")).status, 204);
  auto missing = Call("GET", Path("kv1"));
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(Code(missing), "ResourceNotFound");
}

TEST_F(VaultManagerTest, RetentionAndPurgeProtectionAreOneWay) {
  ASSERT_EQ(Call("PUT", Path("kv2"), R"({"properties":{"softDeleteRetentionInDays":30,
                                                       "enablePurgeProtection":true}})")
                .status,
            201);
  EXPECT_EQ(Call("PATCH", Path("kv2"), R"({"properties":{"softDeleteRetentionInDays":31}})").status,
            400);
  EXPECT_EQ(Call("PATCH", Path("kv2"), R"({"properties":{"enablePurgeProtection":false}})").status,
            400);
  EXPECT_EQ(Call("PUT", Path("kv2"), R"({"properties":{}})").status, 200);
  auto j = *ParseJson(Call("GET", Path("kv2")).body);
  EXPECT_EQ(j["properties"]["enablePurgeProtection"], true);
  EXPECT_EQ(j["properties"]["softDeleteRetentionInDays"], 30);
  auto patched = Call("PATCH", Path("kv2"), R"({"properties":{"enableRbacAuthorization":true}})");
  EXPECT_EQ((*ParseJson(patched.body))["properties"]["enableRbacAuthorization"], true);
}

TEST_F(VaultManagerTest, RejectsInvalidInputWithoutChangingAnything) {
  for (const char* name : {"ab", "1abc", "a--b", "abcdefghijklmnopqrstuvwxy", "ab-"}) {
    auto r = Call("PUT", Path(name), "{}");
    EXPECT_EQ(r.status, 400) << name;
    EXPECT_EQ(Code(r), "VaultNameNotValid") << name;
  }
  for (const char* body :
       {R"({"properties":{"softDeleteRetentionInDays":6}})",
        R"({"properties":{"softDeleteRetentionInDays":91}})",
        R"({"properties":{"softDeleteRetentionInDays":"30"}})",
        R"({"properties":{"enableSoftDelete":false}})", R"({"properties":{"tenantId":"other"}})",
        R"({"properties":{"sku":{"name":"gold"}}})", R"({"properties":{"accessPolicies":{}}})",
        R"({"properties":{"accessPolicies":[{"tenantId":"t1"}]}})", R"({"properties":[]})",
        R"({"location":""})", R"([])", "not json"}) {
    EXPECT_EQ(Call("PUT", Path("kv3"), body).status, 400) << body;
  }
  EXPECT_TRUE(store_.ListVaults()->empty());
  EXPECT_EQ(Call("PATCH", Path("kv3"), "{}").status, 404);
}

TEST_F(VaultManagerTest, DeletedVaultsAreRecoverableAndKeepTheirName) {
  ASSERT_EQ(Call("PUT", Path("soft"),
                 R"({"location":"west","properties":{"softDeleteRetentionInDays":7}})")
                .status,
            201);
  ASSERT_EQ(Call("DELETE", Path("soft")).status, 200);
  EXPECT_EQ(Call("GET", Path("soft")).status, 404);
  auto list =
      *ParseJson(Call("GET", "/subscriptions/sub1/providers/Microsoft.KeyVault/vaults").body);
  EXPECT_TRUE(list["value"].empty());
  auto reuse = Call("PUT", Path("soft"), "{}");
  EXPECT_EQ(reuse.status, 409);
  EXPECT_EQ(Code(reuse), "ConflictError");
  auto deleted = *ParseJson(
      Call("GET", "/subscriptions/sub1/providers/Microsoft.KeyVault/deletedVaults").body);
  ASSERT_EQ(deleted["value"].size(), 1u);
  EXPECT_EQ(deleted["value"][0]["properties"]["vaultId"], Path("soft"));
  EXPECT_EQ(deleted["value"][0]["type"], "Microsoft.KeyVault/deletedVaults");
  const std::string one =
      "/subscriptions/sub1/providers/Microsoft.KeyVault/locations/west/deletedVaults/soft";
  EXPECT_EQ(Call("GET", one).status, 200);
  EXPECT_EQ(
      Call("GET",
           "/subscriptions/sub1/providers/Microsoft.KeyVault/locations/east/deletedVaults/soft")
          .status,
      404);
  auto recovered = Call("PUT", Path("soft"), R"({"properties":{"createMode":"recover"}})");
  ASSERT_EQ(recovered.status, 200) << recovered.body;
  EXPECT_EQ((*ParseJson(recovered.body))["properties"]["softDeleteRetentionInDays"], 7);
  EXPECT_EQ(Call("GET", one).status, 404);
  EXPECT_EQ(Call("PUT", Path("soft"), R"({"properties":{"createMode":"recover"}})").status, 400);
  ASSERT_EQ(Call("DELETE", Path("soft")).status, 200);
  EXPECT_EQ(Call("POST", one + "/purge").status, 200);
  EXPECT_EQ(Call("GET", one).status, 404);
  EXPECT_EQ(Call("PUT", Path("soft"), "{}").status, 201);
}

TEST_F(VaultManagerTest, PurgeProtectionHoldsADeletedVault) {
  ASSERT_EQ(Call("PUT", Path("held"),
                 R"({"properties":{"softDeleteRetentionInDays":7,"enablePurgeProtection":true}})")
                .status,
            201);
  ASSERT_EQ(Call("DELETE", Path("held")).status, 200);
  const std::string one =
      "/subscriptions/sub1/providers/Microsoft.KeyVault/locations/local/deletedVaults/held";
  EXPECT_EQ(Call("POST", one + "/purge").status, 409);
  EXPECT_EQ(*manager_.PurgeExpired(), 0);
  clock_.Advance(7 * 86400);
  EXPECT_EQ(*manager_.PurgeExpired(), 1);
  EXPECT_EQ(Call("GET", one).status, 404);
}

TEST_F(VaultManagerTest, VaultNamesAreUniqueAcrossResourceGroups) {
  ASSERT_EQ(Call("PUT", Path("shared"), "{}").status, 201);
  auto r = Call("PUT",
                "/subscriptions/sub1/resourceGroups/rg2/providers/Microsoft.KeyVault/vaults/shared",
                "{}");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(Code(r), "VaultAlreadyExists");
}

}  // namespace
}  // namespace coffer::mgmt
