#include "keyvault/vault_api.h"

#include <set>
#include <tuple>

#include <gtest/gtest.h>

#include "crypto/primitives.h"
#include "keyvault/certificates_api.h"
#include "keyvault/keys_api.h"
#include "keyvault/secrets_api.h"
#include "storage/memory/memory_store.h"

namespace coffer::keyvault {
namespace {

http::Request Req(const std::string& method, const std::string& target) {
  http::Request r;
  r.method = method;
  r.target = target;
  EXPECT_TRUE(http::ParseTarget(target, r).ok());
  return r;
}

class VaultRoutesTest : public ::testing::Test {
 protected:
  VaultRoutesTest()
      : clock_(1800000000),
        envelope_(Envelope::Create(crypto::RandomBytes(32)).value()),
        service_(store_, *envelope_, clock_),
        api_(service_),
        keys_(store_, *envelope_, clock_),
        keys_api_(keys_),
        authority_(store_, *envelope_, clock_),
        issuers_(store_, clock_, authority_),
        certificates_(store_, *envelope_, clock_, service_, keys_, issuers_),
        certificates_api_(certificates_, issuers_, [](std::string_view) { return false; }),
        routes_(AllOperations()) {}

  std::vector<VaultOperation> AllOperations() {
    std::vector<VaultOperation> ops = api_.Operations();
    for (auto& op : keys_api_.Operations()) {
      ops.push_back(std::move(op));
    }
    for (auto& op : certificates_api_.Operations()) {
      ops.push_back(std::move(op));
    }
    return ops;
  }

  storage::MemoryStore store_;
  FakeClock clock_;
  std::unique_ptr<Envelope> envelope_;
  SecretService service_;
  SecretsApi api_;
  KeyService keys_;
  KeysApi keys_api_;
  CertificateAuthority authority_;
  CertificateIssuers issuers_;
  CertificateService certificates_;
  CertificatesApi certificates_api_;
  VaultRoutes routes_;
};

TEST_F(VaultRoutesTest, EveryOperationMapsToOnePermissionAndOneDataAction) {
  struct Case {
    const char* method;
    const char* target;
    const char* operation;
    const char* object;
    const char* permission;
    const char* data_action;
  };
  const Case cases[] = {
      {"GET", "/secrets", "SecretList", "", "list", "secrets/readMetadata/action"},
      {"GET", "/secrets/", "SecretList", "", "list", "secrets/readMetadata/action"},
      {"GET", "/deletedsecrets", "SecretListDeleted", "", "list", "secrets/readMetadata/action"},
      {"PUT", "/secrets/Db", "SecretSet", "Db", "set", "secrets/setSecret/action"},
      {"GET", "/secrets/a", "SecretGet", "a", "get", "secrets/getSecret/action"},
      {"GET", "/secrets/a/", "SecretGet", "a", "get", "secrets/getSecret/action"},
      {"GET", "/secrets/a/0123", "SecretGet", "a", "get", "secrets/getSecret/action"},
      {"PATCH", "/secrets/a/0123", "SecretUpdate", "a", "set", "secrets/update/action"},
      {"PATCH", "/secrets/a/", "SecretUpdate", "a", "set", "secrets/update/action"},
      {"DELETE", "/secrets/a", "SecretDelete", "a", "delete", "secrets/delete"},
      {"GET", "/secrets/a/versions", "SecretListVersions", "a", "list",
       "secrets/readMetadata/action"},
      {"POST", "/secrets/a/backup", "SecretBackup", "a", "backup", "secrets/backup/action"},
      {"POST", "/secrets/a/hash", "SecretHash", "a", "get", "secrets/getSecret/action"},
      {"POST", "/secrets/a/0123/hash", "SecretHash", "a", "get", "secrets/getSecret/action"},
      {"POST", "/secrets/a//hash", "SecretHash", "a", "get", "secrets/getSecret/action"},
      {"POST", "/secrets/restore", "SecretRestore", "", "restore", "secrets/restore/action"},
      {"GET", "/deletedsecrets/a", "SecretGetDeleted", "a", "list", "secrets/readMetadata/action"},
      {"DELETE", "/deletedsecrets/a", "SecretPurge", "a", "purge", "secrets/purge/action"},
      {"POST", "/deletedsecrets/a/recover", "SecretRecover", "a", "recover",
       "secrets/recover/action"},
      {"GET", "/keys", "KeyList", "", "list", "keys/read"},
      {"POST", "/keys/restore", "KeyRestore", "", "restore", "keys/restore/action"},
      {"POST", "/keys/k/create", "KeyCreate", "k", "create", "keys/create/action"},
      {"PUT", "/keys/k", "KeyImport", "k", "import", "keys/import/action"},
      {"GET", "/keys/k", "KeyGet", "k", "get", "keys/read"},
      {"GET", "/keys/k/0123", "KeyGet", "k", "get", "keys/read"},
      {"GET", "/keys/k/versions", "KeyListVersions", "k", "list", "keys/read"},
      {"PATCH", "/keys/k/", "KeyUpdate", "k", "update", "keys/update/action"},
      {"DELETE", "/keys/k", "KeyDelete", "k", "delete", "keys/delete"},
      {"POST", "/keys/k/backup", "KeyBackup", "k", "backup", "keys/backup/action"},
      {"POST", "/keys/k/rotate", "KeyRotate", "k", "rotate", "keys/rotate/action"},
      {"GET", "/keys/k/rotationpolicy", "KeyRotationPolicyGet", "k", "getrotationpolicy",
       "keyrotationpolicies/read"},
      {"PUT", "/keys/k/rotationpolicy", "KeyRotationPolicySet", "k", "setrotationpolicy",
       "keyrotationpolicies/write"},
      {"POST", "/keys/k/0123/encrypt", "KeyEncrypt", "k", "encrypt", "keys/encrypt/action"},
      {"POST", "/keys/k//decrypt", "KeyDecrypt", "k", "decrypt", "keys/decrypt/action"},
      {"POST", "/keys/k/0123/wrapkey", "KeyWrap", "k", "wrapKey", "keys/wrap/action"},
      {"POST", "/keys/k//unwrapkey", "KeyUnwrap", "k", "unwrapKey", "keys/unwrap/action"},
      {"POST", "/keys/k//sign", "KeySign", "k", "sign", "keys/sign/action"},
      {"POST", "/keys/k/0123/verify", "KeyVerify", "k", "verify", "keys/verify/action"},
      {"GET", "/deletedkeys", "KeyListDeleted", "", "list", "keys/read"},
      {"GET", "/deletedkeys/k", "KeyGetDeleted", "k", "list", "keys/read"},
      {"DELETE", "/deletedkeys/k", "KeyPurge", "k", "purge", "keys/purge/action"},
      {"POST", "/deletedkeys/k/recover", "KeyRecover", "k", "recover", "keys/recover/action"},
      {"POST", "/rng", "GetRandomBytes", "", "get", "keys/read"},
      {"GET", "/certificates", "CertificateList", "", "list", "certificates/read"},
      {"POST", "/certificates/c/create", "CertificateCreate", "c", "create",
       "certificates/create/action"},
      {"GET", "/certificates/c/pending", "CertificatePendingGet", "c", "get", "certificates/read"},
      {"POST", "/certificates/c/import", "CertificateImport", "c", "import",
       "certificates/import/action"},
      {"GET", "/certificates/c", "CertificateGet", "c", "get", "certificates/read"},
      {"GET", "/certificates/c/", "CertificateGet", "c", "get", "certificates/read"},
      {"GET", "/certificates/c/0123", "CertificateGet", "c", "get", "certificates/read"},
      {"GET", "/certificates/c/versions", "CertificateListVersions", "c", "list",
       "certificates/read"},
      {"GET", "/certificates/c/policy", "CertificatePolicyGet", "c", "get", "certificates/read"},
      {"PATCH", "/certificates/c/policy", "CertificatePolicyUpdate", "c", "update",
       "certificates/update/action"},
      {"PATCH", "/certificates/c/0123", "CertificateUpdate", "c", "update",
       "certificates/update/action"},
      {"DELETE", "/certificates/c", "CertificateDelete", "c", "delete", "certificates/delete"},
      {"GET", "/deletedcertificates", "CertificateListDeleted", "", "list", "certificates/read"},
      {"GET", "/deletedcertificates/c", "CertificateGetDeleted", "c", "list", "certificates/read"},
      {"DELETE", "/deletedcertificates/c", "CertificatePurge", "c", "purge",
       "certificates/purge/action"},
      {"POST", "/deletedcertificates/c/recover", "CertificateRecover", "c", "recover",
       "certificates/recover/action"},
      {"POST", "/certificates/c/backup", "CertificateBackup", "c", "backup",
       "certificates/backup/action"},
      {"POST", "/certificates/restore", "CertificateRestore", "", "restore",
       "certificates/restore/action"},
      {"PATCH", "/certificates/c/pending", "CertificatePendingUpdate", "c", "update",
       "certificates/update/action"},
      {"DELETE", "/certificates/c/pending", "CertificatePendingDelete", "c", "update",
       "certificates/update/action"},
      {"POST", "/certificates/c/pending/merge", "CertificatePendingMerge", "c", "create",
       "certificates/create/action"},
      {"GET", "/certificates/contacts", "CertificateContactsGet", "", "managecontacts",
       "certificatecontacts/write"},
      {"PUT", "/certificates/contacts", "CertificateContactsSet", "", "managecontacts",
       "certificatecontacts/write"},
      {"DELETE", "/certificates/contacts", "CertificateContactsDelete", "", "managecontacts",
       "certificatecontacts/write"},
      {"GET", "/certificates/issuers", "CertificateIssuerList", "", "listissuers",
       "certificatecas/read"},
      {"GET", "/certificates/issuers/i", "CertificateIssuerGet", "", "getissuers",
       "certificatecas/read"},
      {"GET", "/certificates/issuers/pending", "CertificateIssuerGet", "", "getissuers",
       "certificatecas/read"},
      {"PUT", "/certificates/issuers/i", "CertificateIssuerSet", "", "setissuers",
       "certificatecas/write"},
      {"PATCH", "/certificates/issuers/i", "CertificateIssuerUpdate", "", "setissuers",
       "certificatecas/write"},
      {"DELETE", "/certificates/issuers/i", "CertificateIssuerDelete", "", "deleteissuers",
       "certificatecas/delete"},
  };
  std::set<std::string> seen;
  for (const auto& c : cases) {
    const http::Request request = Req(c.method, c.target);
    auto found = routes_.Find(request);
    ASSERT_NE(found.operation, nullptr) << c.method << " " << c.target;
    const authz::DataOperation* op = authz::FindOperation(found.operation->operation);
    ASSERT_NE(op, nullptr) << c.target;
    EXPECT_EQ(op->name, c.operation);
    std::string_view object = found.operation->object_param.empty()
                                  ? ""
                                  : found.params.Get(found.operation->object_param);
    EXPECT_EQ(object, c.object) << c.target;
    EXPECT_EQ(op->permission, c.permission) << c.target;
    EXPECT_EQ(op->data_action, std::string("Microsoft.KeyVault/vaults/") + c.data_action);
    seen.insert(std::string(op->name));
  }
  // Every operation of the permission table is reachable, and every route
  // names one.
  EXPECT_EQ(seen.size(), authz::DataOperations().size());
  for (const auto& route : routes_.operations()) {
    EXPECT_NE(authz::FindOperation(route.operation), nullptr) << route.pattern;
  }
  for (const auto& [m, t, status] :
       std::vector<std::tuple<const char*, const char*, int>>{{"POST", "/secrets/a", 405},
                                                              {"GET", "/certificates/a/b/c", 404},
                                                              {"GET", "/keys/a/b/sign", 405},
                                                              {"PUT", "/secrets", 405},
                                                              {"GET", "/secrets/a/b/c", 404},
                                                              {"PUT", "/deletedsecrets/a", 405},
                                                              {"GET", "/secrets/restore", 405},
                                                              {"GET", "/secrets/a/hash", 405},
                                                              {"PATCH", "/secrets/a/hash", 405},
                                                              {"GET", "/secrets/a/b/hash", 405},
                                                              {"POST", "/secrets/a/b/c/hash", 404},
                                                              {"GET", "/", 404}}) {
    auto found = routes_.Find(Req(m, t));
    EXPECT_EQ(found.operation, nullptr) << m << " " << t;
    EXPECT_EQ(found.status, status) << m << " " << t;
    EXPECT_EQ(VaultRoutes::Unmatched(found).status, status);
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
