#include "keyvault/operations.h"

#include <set>

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

TEST(ClassifyRequest, EveryOperationMapsToOnePermissionAndOneDataAction) {
  struct Case {
    const char* method;
    const char* target;
    const char* operation;
    const char* object;
    const char* permission;
    const char* data_action;
  };
  const Case cases[] = {
      {"GET", "/secrets", "SecretList", "", "list", "readMetadata/action"},
      {"GET", "/secrets/", "SecretList", "", "list", "readMetadata/action"},
      {"GET", "/deletedsecrets", "SecretListDeleted", "", "list", "readMetadata/action"},
      {"PUT", "/secrets/Db", "SecretSet", "Db", "set", "setSecret/action"},
      {"GET", "/secrets/a", "SecretGet", "a", "get", "getSecret/action"},
      {"GET", "/secrets/a/0123", "SecretGet", "a", "get", "getSecret/action"},
      {"PATCH", "/secrets/a/0123", "SecretUpdate", "a", "set", "update/action"},
      {"DELETE", "/secrets/a", "SecretDelete", "a", "delete", "delete"},
      {"GET", "/secrets/a/versions", "SecretListVersions", "a", "list", "readMetadata/action"},
      {"POST", "/secrets/a/backup", "SecretBackup", "a", "backup", "backup/action"},
      {"POST", "/secrets/restore", "SecretRestore", "", "restore", "restore/action"},
      {"GET", "/deletedsecrets/a", "SecretGetDeleted", "a", "list", "readMetadata/action"},
      {"DELETE", "/deletedsecrets/a", "SecretPurge", "a", "purge", "purge/action"},
      {"POST", "/deletedsecrets/a/recover", "SecretRecover", "a", "recover", "recover/action"},
  };
  std::set<std::string> seen;
  for (const auto& c : cases) {
    const http::Request request = Req(c.method, c.target);
    auto r = ClassifyRequest(request);
    ASSERT_NE(r.op, nullptr) << c.method << " " << c.target;
    EXPECT_EQ(r.op->name, c.operation);
    EXPECT_EQ(r.object, c.object) << c.target;
    EXPECT_EQ(r.op->permission, c.permission) << c.target;
    EXPECT_EQ(r.op->data_action, std::string("Microsoft.KeyVault/vaults/secrets/") + c.data_action);
    seen.insert(std::string(r.op->name));
  }
  // Every operation of the table is reachable.
  EXPECT_EQ(seen.size(), authz::DataOperations().size());
  for (const auto& [m, t] :
       std::vector<std::pair<const char*, const char*>>{{"POST", "/secrets/a"},
                                                        {"GET", "/keys/a"},
                                                        {"PUT", "/secrets"},
                                                        {"GET", "/secrets/a/b/c"},
                                                        {"PUT", "/deletedsecrets/a"},
                                                        {"GET", "/"}}) {
    EXPECT_EQ(ClassifyRequest(Req(m, t)).op, nullptr) << m << " " << t;
  }
}

TEST(VaultSettings, CompilesAccessPoliciesAndIgnoresNamesThatAreNoPermission) {
  storage::VaultRecord v;
  v.retention_days = 7;
  v.purge_protection = true;
  storage::AccessPolicyRecord reader;
  reader.tenant_id = "T";
  reader.object_id = "Reader";
  reader.secrets = std::vector<std::string>{"Get", "list", "no-such-permission"};
  v.access_policies = {reader};
  auto s = SettingsOf(v);
  ASSERT_EQ(s.access_policies.entries.size(), 1u);
  EXPECT_EQ(s.access_policies.entries[0].object_id, "reader");
  EXPECT_EQ(s.access_policies.entries[0].tenant_id, "t");
  EXPECT_EQ(s.access_policies.by_object.at("reader"), std::vector<uint32_t>{0});
  EXPECT_EQ(s.access_policies.entries[0].granted[static_cast<int>(authz::ObjectType::kSecrets)],
            *authz::ParsePermission(authz::ObjectType::kSecrets, "get") |
                *authz::ParsePermission(authz::ObjectType::kSecrets, "list"));
  EXPECT_EQ(s.retention_days, 7);
  EXPECT_TRUE(s.purge_protection);
  EXPECT_EQ(RecoveryLevel(s), "CustomizedRecoverable");
}

}  // namespace
}  // namespace coffer::keyvault
