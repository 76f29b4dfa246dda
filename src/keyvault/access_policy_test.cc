#include "keyvault/access_policy.h"

#include <gtest/gtest.h>

#include "keyvault/vault_registry.h"

namespace coffer::keyvault {
namespace {

http::Request Req(const std::string& method, const std::string& target) {
  http::Request r;
  r.method = method;
  r.target = target;
  EXPECT_TRUE(http::ParseTarget(target, r).ok());
  return r;
}

TEST(SecretPermission, EveryOperationMapsToKeyVaultsPermission) {
  EXPECT_EQ(SecretPermission(Req("GET", "/secrets")), "list");
  EXPECT_EQ(SecretPermission(Req("GET", "/secrets/")), "list");
  EXPECT_EQ(SecretPermission(Req("GET", "/deletedsecrets")), "list");
  EXPECT_EQ(SecretPermission(Req("PUT", "/secrets/a")), "set");
  EXPECT_EQ(SecretPermission(Req("GET", "/secrets/a")), "get");
  EXPECT_EQ(SecretPermission(Req("GET", "/secrets/a/0123")), "get");
  EXPECT_EQ(SecretPermission(Req("PATCH", "/secrets/a/0123")), "set");
  EXPECT_EQ(SecretPermission(Req("DELETE", "/secrets/a")), "delete");
  EXPECT_EQ(SecretPermission(Req("GET", "/secrets/a/versions")), "list");
  EXPECT_EQ(SecretPermission(Req("POST", "/secrets/a/backup")), "backup");
  EXPECT_EQ(SecretPermission(Req("POST", "/secrets/restore")), "restore");
  EXPECT_EQ(SecretPermission(Req("GET", "/deletedsecrets/a")), "list");
  EXPECT_EQ(SecretPermission(Req("DELETE", "/deletedsecrets/a")), "purge");
  EXPECT_EQ(SecretPermission(Req("POST", "/deletedsecrets/a/recover")), "recover");
  EXPECT_EQ(SecretPermission(Req("POST", "/secrets/a")), "");
  EXPECT_EQ(SecretPermission(Req("GET", "/keys/a")), "");
}

// The policies as the vault registry parses them from ARM `properties`.
Json Policies(const std::string& properties_json) {
  return ParseVaultSettings(properties_json).access_policies;
}

TEST(AccessPolicyAllows, OnlyTheGrantedPermissionOfTheNamedPrincipal) {
  const std::string props = R"({"accessPolicies":[
    {"tenantId":"T","objectId":"reader","permissions":{"secrets":["Get","list"],"keys":["all"]}},
    {"tenantId":"T","objectId":"owner","permissions":{"secrets":["all"]}},
    {"tenantId":"other","objectId":"foreign","permissions":{"secrets":["all"]}},
    "not an object", {"objectId":7}]})";
  EXPECT_TRUE(AccessPolicyAllows(Policies(props), "T", "reader", "get"));
  EXPECT_TRUE(AccessPolicyAllows(Policies(props), "t", "READER", "list"));
  EXPECT_FALSE(AccessPolicyAllows(Policies(props), "T", "reader", "set"));
  EXPECT_TRUE(AccessPolicyAllows(Policies(props), "T", "owner", "purge"));
  EXPECT_FALSE(
      AccessPolicyAllows(Policies(props), "T", "foreign", "get"));  // another tenant's entry
  EXPECT_FALSE(AccessPolicyAllows(Policies(props), "T", "nobody", "get"));
  EXPECT_FALSE(AccessPolicyAllows(Policies(props), "T", "owner", ""));
  EXPECT_FALSE(AccessPolicyAllows(Policies("{}"), "T", "owner", "get"));
  EXPECT_FALSE(AccessPolicyAllows(Policies("not json"), "T", "owner", "get"));
  EXPECT_FALSE(AccessPolicyAllows(Policies(R"({"accessPolicies":{}})"), "T", "owner", "get"));
}

}  // namespace
}  // namespace coffer::keyvault
