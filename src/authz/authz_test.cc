#include <set>

#include <gtest/gtest.h>

#include "authz/arm_action.h"
#include "authz/authorizer.h"
#include "authz/permissions.h"
#include "authz/roles.h"
#include "storage/memory/memory_store.h"

namespace coffer::authz {
namespace {

constexpr char kTenant[] = "tenant-1";
constexpr char kVault[] =
    "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/Main";
constexpr char kOwner[] = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
constexpr char kContributor[] = "b24988ac-6180-42a0-ab88-20f7382dd24c";
constexpr char kSecretsUser[] = "4633458b-17de-408a-b874-0445c86b69e6";
constexpr char kSecretsOfficer[] = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7";
constexpr char kKeyVaultReader[] = "21090545-7ca7-4776-b22c-e363652d74d2";
constexpr char kCertificateUser[] = "db79e9a7-68ee-4b58-9aeb-b90e7c24fcba";
constexpr char kDataAccessAdmin[] = "8b54135c-b56d-4d72-a534-26097cfdc8d8";

const RoleDefinition& Role(std::string_view id) {
  for (const auto& r : BuiltInRoles()) {
    if (r.id == id) {
      return r;
    }
  }
  ADD_FAILURE() << "no built-in role " << id;
  return BuiltInRoles()[0];
}

TEST(ActionMatchesTest, IsACaseInsensitiveGlob) {
  EXPECT_TRUE(ActionMatches("*", "Microsoft.KeyVault/vaults/read"));
  EXPECT_TRUE(ActionMatches("*/read", "Microsoft.KeyVault/vaults/read"));
  EXPECT_FALSE(ActionMatches("*/read", "Microsoft.KeyVault/vaults/write"));
  EXPECT_TRUE(
      ActionMatches("Microsoft.KeyVault/vaults/*/read", "microsoft.keyvault/vaults/keys/read"));
  EXPECT_FALSE(ActionMatches("Microsoft.KeyVault/vaults/*/read",
                             "Microsoft.KeyVault/vaults/secrets/readMetadata/action"));
  EXPECT_TRUE(ActionMatches("Microsoft.Authorization/*/Write",
                            "Microsoft.Authorization/roleAssignments/write"));
  EXPECT_FALSE(ActionMatches("Microsoft.KeyVault/vaults/secrets/getSecret/action",
                             "Microsoft.KeyVault/vaults/secrets/getSecret/actionx"));
  EXPECT_FALSE(ActionMatches("", "x"));
  // A hostile pattern stays cheap and wrong.
  EXPECT_FALSE(ActionMatches(std::string(200, '*') + "b", std::string(5000, 'a')));
}

TEST(ActionMatchesTest, AStarSegmentMayStandForNoSegment) {
  // Managed Identity Operator's pattern grants the action Azure checks when
  // an identity is attached to a workload.
  EXPECT_TRUE(ActionMatches("Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
                            "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"));
  EXPECT_TRUE(ActionMatches("Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
                            "Microsoft.ManagedIdentity/userAssignedIdentities/x/assign/action"));
  EXPECT_FALSE(ActionMatches("Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
                             "Microsoft.ManagedIdentity/userAssignedIdentities/assign"));
  EXPECT_FALSE(ActionMatches("Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
                             "Microsoft.ManagedIdentity/userAssignedIdentitiesassign/action"));
  EXPECT_TRUE(Grants(Role("f1a07417-d97a-45cb-824c-7a7467783830"),
                     "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action", false));
  EXPECT_FALSE(Grants(Role("acdd72a7-3385-48ef-bd42-f606fba81ae7"),  // Reader
                      "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action", false));
}

TEST(BuiltInRolesTest, HaveAzureNamesAndGrantWhatAzureGrants) {
  std::set<std::string> ids;
  for (const auto& r : BuiltInRoles()) {
    EXPECT_EQ(r.id.size(), 36u) << r.role_name;
    EXPECT_TRUE(ids.insert(r.id).second) << r.role_name;
  }
  EXPECT_EQ(Role(kSecretsUser).role_name, "Key Vault Secrets User");
  EXPECT_TRUE(
      Grants(Role(kSecretsUser), "Microsoft.KeyVault/vaults/secrets/getSecret/action", true));
  EXPECT_FALSE(
      Grants(Role(kSecretsUser), "Microsoft.KeyVault/vaults/secrets/setSecret/action", true));
  EXPECT_TRUE(
      Grants(Role(kSecretsOfficer), "Microsoft.KeyVault/vaults/secrets/purge/action", true));
  EXPECT_TRUE(
      Grants(Role(kCertificateUser), "Microsoft.KeyVault/vaults/secrets/getSecret/action", true));
  // Control-plane roles grant no data actions.
  EXPECT_FALSE(Grants(Role(kOwner), "Microsoft.KeyVault/vaults/secrets/getSecret/action", true));
  EXPECT_TRUE(Grants(Role(kOwner), "Microsoft.Authorization/roleAssignments/write", false));
  // Contributor manages everything except access, and so may edit access policies.
  EXPECT_TRUE(Grants(Role(kContributor), "Microsoft.KeyVault/vaults/accessPolicies/write", false));
  EXPECT_FALSE(Grants(Role(kContributor), "Microsoft.Authorization/roleAssignments/write", false));
  EXPECT_TRUE(Grants(Role(kContributor), "Microsoft.Authorization/roleAssignments/read", false));
  const auto& kv_contributor = Role("f25e0fa2-a7c8-4377-a976-54943a77a395");
  EXPECT_TRUE(Grants(kv_contributor, "Microsoft.KeyVault/vaults/write", false));
  EXPECT_FALSE(
      Grants(kv_contributor, "Microsoft.KeyVault/locations/deletedVaults/purge/action", false));
  EXPECT_FALSE(Grants(kv_contributor, "Microsoft.Web/sites/write", false));
  EXPECT_NE(DelegationCondition(Role(kDataAccessAdmin)).find(kSecretsUser), std::string::npos);
  EXPECT_EQ(DelegationCondition(Role(kOwner)), "");
}

TEST(AccessPolicyTest, CompilesKeyVaultsPermissionNamesStrictly) {
  auto ok = CompileAccessPolicies(ParseJson(R"([{"tenantId":"T","objectId":"O",
      "permissions":{"secrets":["Get","list"],"keys":["all"],"certificates":[],"storage":null}}])")
                                      .value());
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->entries[0].object_id, "o");
  EXPECT_EQ(ok->entries[0].granted[0], *ParsePermission(ObjectType::kSecrets, "get") |
                                           *ParsePermission(ObjectType::kSecrets, "list"));
  EXPECT_EQ(ok->entries[0].granted[1], *ParsePermission(ObjectType::kKeys, "all"));
  for (const char* bad : {
           R"({})",
           R"([1])",
           R"([{"objectId":"O","permissions":{}}])",
           R"([{"tenantId":"T","objectId":7,"permissions":{}}])",
           R"([{"tenantId":"T","objectId":"O"}])",
           R"([{"tenantId":"T","objectId":"O","permissions":{"secrets":["read"]}}])",
           R"([{"tenantId":"T","objectId":"O","permissions":{"secrets":"get"}}])",
           R"([{"tenantId":"T","objectId":"O","permissions":{"blobs":["get"]}}])",
           R"([{"tenantId":"T","objectId":"O","permissions":{"keys":["getSecret"]}}])",
           R"([{"tenantId":"T","objectId":"O","applicationId":5,"permissions":{}}])",
       }) {
    auto r = CompileAccessPolicies(ParseJson(bad).value());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  Json many = Json::array();
  for (int i = 0; i < 1025; ++i) {
    many.push_back(
        {{"tenantId", "t"}, {"objectId", std::to_string(i)}, {"permissions", Json::object()}});
  }
  EXPECT_EQ(CompileAccessPolicies(many).status().code(), StatusCode::kInvalidArgument);
  many.erase(many.begin());
  EXPECT_TRUE(CompileAccessPolicies(many).ok());
}

TEST(AccessPolicyTest, CompoundIdentityAppliesOnlyThroughItsApplication) {
  auto policies = *CompileAccessPolicies(ParseJson(R"([
      {"tenantId":"tenant-1","objectId":"user","applicationId":"app-a","permissions":{"secrets":["get"]}},
      {"tenantId":"tenant-1","objectId":"user","permissions":{"secrets":["list"]}}])")
                                             .value());
  storage::MemoryStore store;
  Authorizer authz(store);
  VaultContext vault{false, &policies, kVault};
  const DataOperation& get = *FindOperation("SecretGet");
  const DataOperation& list = *FindOperation("SecretList");
  EXPECT_TRUE(authz.CheckData({"user", "app-a", kTenant}, vault, get, "db").allowed);
  auto other_app = authz.CheckData({"user", "app-b", kTenant}, vault, get, "db", true);
  EXPECT_FALSE(other_app.allowed);
  EXPECT_EQ(other_app.reason, Reason::kAccessPolicyLacksPermission);
  EXPECT_EQ(other_app.considered.size(), 2u);
  EXPECT_TRUE(authz.CheckData({"user", "app-b", kTenant}, vault, list, "").allowed);
  auto other_tenant = authz.CheckData({"user", "app-a", "tenant-2"}, vault, list, "");
  EXPECT_EQ(other_tenant.reason, Reason::kNoAccessPolicy);
}

TEST(AccessPolicyTest, SecretHashNeedsWhatReadingTheValueNeeds) {
  // An HMAC under the caller's key is an oracle for the value: list, or
  // every other permission but get, does not grant it.
  const DataOperation* hash = FindOperation("SecretHash");
  ASSERT_NE(hash, nullptr);
  const DataOperation& get = *FindOperation("SecretGet");
  EXPECT_EQ(hash->permission, get.permission);
  EXPECT_EQ(hash->data_action, get.data_action);
  EXPECT_EQ(hash->bit, get.bit);
  EXPECT_TRUE(hash->on_object);
  auto policies = *CompileAccessPolicies(ParseJson(R"([
      {"tenantId":"tenant-1","objectId":"lister","permissions":{"secrets":["list"]}},
      {"tenantId":"tenant-1","objectId":"most","permissions":{"secrets":
          ["list","set","delete","recover","backup","restore","purge"]}},
      {"tenantId":"tenant-1","objectId":"getter","permissions":{"secrets":["get"]}}])")
                                             .value());
  storage::MemoryStore store;
  Authorizer authz(store);
  VaultContext vault{false, &policies, kVault};
  auto lister = authz.CheckData({"lister", "app", kTenant}, vault, *hash, "db");
  EXPECT_FALSE(lister.allowed);
  EXPECT_EQ(lister.reason, Reason::kAccessPolicyLacksPermission);
  EXPECT_TRUE(
      authz.CheckData({"lister", "app", kTenant}, vault, *FindOperation("SecretList"), "").allowed);
  EXPECT_FALSE(authz.CheckData({"most", "app", kTenant}, vault, *hash, "db").allowed);
  EXPECT_TRUE(authz.CheckData({"getter", "app", kTenant}, vault, *hash, "db").allowed);
}

class RbacTest : public ::testing::Test {
 protected:
  void Assign(const std::string& id, const std::string& principal, const std::string& role,
              const std::string& scope) {
    storage::RoleAssignmentRecord a{id, scope, role, principal, "ServicePrincipal", "", "", 1, 1};
    ASSERT_TRUE(store_.CreateRoleAssignment(a).ok());
    ASSERT_TRUE(authz_.Reload().ok());
  }
  storage::MemoryStore store_;
  Authorizer authz_{store_};
  VaultContext vault_{true, nullptr, kVault};
};

TEST_F(RbacTest, AssignmentsApplyAtTheirScopeAndBelow) {
  const DataOperation& get = *FindOperation("SecretGet");
  const DataOperation& list = *FindOperation("SecretList");
  Principal p{"p1", "app", kTenant};
  EXPECT_EQ(authz_.CheckData(p, vault_, get, "db").reason, Reason::kNoRoleAssignment);
  Assign("obj", "p1", kSecretsUser, std::string(kVault) + "/secrets/DB");
  EXPECT_TRUE(authz_.CheckData(p, vault_, get, "db").allowed);
  EXPECT_EQ(authz_.CheckData(p, vault_, get, "db").applied, "obj");
  EXPECT_EQ(authz_.CheckData(p, vault_, get, "db2").reason, Reason::kNoRoleAssignment);
  EXPECT_FALSE(authz_.CheckData(p, vault_, list, "").allowed);  // list is vault-wide
  Assign("rg", "p1", kSecretsUser, "/subscriptions/sub/resourceGroups/RG");
  EXPECT_TRUE(authz_.CheckData(p, vault_, list, "").allowed);
  const DataOperation& set = *FindOperation("SecretSet");
  auto denied = authz_.CheckData(p, vault_, set, "db", true);
  EXPECT_FALSE(denied.allowed);
  EXPECT_EQ(denied.reason, Reason::kRoleLacksAction);
  EXPECT_EQ(denied.considered.size(), 2u);
  // A sibling whose name extends the vault's is not below it.
  const std::string sibling_id = std::string(kVault) + "2";
  VaultContext sibling{true, nullptr, sibling_id};
  Assign("vault", "p1", kSecretsOfficer, kVault);
  EXPECT_FALSE(authz_.CheckData(p, sibling, set, "db").allowed);
  EXPECT_TRUE(authz_.CheckData(p, vault_, set, "db").allowed);
}

TEST_F(RbacTest, SecretHashNeedsGetSecret) {
  const DataOperation& hash = *FindOperation("SecretHash");
  Principal reader{"reader", "app", kTenant};
  Principal user{"user", "app", kTenant};
  Assign("r", "reader", kKeyVaultReader, kVault);
  Assign("u", "user", kSecretsUser, std::string(kVault) + "/secrets/db");
  // Key Vault Reader reads metadata, never values.
  EXPECT_TRUE(authz_.CheckData(reader, vault_, *FindOperation("SecretListVersions"), "db").allowed);
  auto denied = authz_.CheckData(reader, vault_, hash, "db");
  EXPECT_FALSE(denied.allowed);
  EXPECT_EQ(denied.reason, Reason::kRoleLacksAction);
  EXPECT_TRUE(authz_.CheckData(user, vault_, hash, "db").allowed);
  EXPECT_FALSE(authz_.CheckData(user, vault_, hash, "db2").allowed) << "object scope applies";
}

TEST_F(RbacTest, HoldsRoleWithinCountsAssignmentsAboveAtAndBelow) {
  // What lists a subscription to a caller: any role in it, whatever it grants.
  Principal p{"P1", "app", kTenant};
  EXPECT_FALSE(authz_.HoldsRoleWithin(p, "/subscriptions/sub"));
  Assign("other", "p2", kSecretsUser, "/subscriptions/sub");
  EXPECT_FALSE(authz_.HoldsRoleWithin(p, "/subscriptions/sub"));
  Assign("below", "p1", kSecretsUser, std::string(kVault) + "/secrets/db");
  EXPECT_TRUE(authz_.HoldsRoleWithin(p, "/subscriptions/sub"));
  EXPECT_TRUE(authz_.HoldsRoleWithin(p, "/Subscriptions/SUB"));
  EXPECT_FALSE(authz_.HoldsRoleWithin(p, "/subscriptions/sub2"));
  EXPECT_FALSE(authz_.HoldsRoleWithin(p, "/subscriptions/su"));
  Assign("root", "p3", kSecretsUser, "/");
  EXPECT_TRUE(authz_.HoldsRoleWithin({"p3", "app", kTenant}, "/subscriptions/sub2"));
}

TEST_F(RbacTest, InVaultCountsAnAssignmentOnOneOfItsObjects) {
  const DataOperation& get = *FindOperation("SecretGet");
  const DataOperation& list = *FindOperation("SecretList");
  Principal p{"p1", "app", kTenant};
  EXPECT_FALSE(authz_.CheckDataInVault(p, vault_, get).allowed);
  // A secret of another vault whose name extends this one's is not in it.
  Assign("sibling", "p1", kSecretsUser, std::string(kVault) + "2/secrets/db");
  EXPECT_FALSE(authz_.CheckDataInVault(p, vault_, get).allowed);
  Assign("obj", "p1", kSecretsUser, std::string(kVault) + "/secrets/DB");
  EXPECT_TRUE(authz_.CheckDataInVault(p, vault_, get).allowed);
  EXPECT_EQ(authz_.CheckDataInVault(p, vault_, get).applied, "obj");
  EXPECT_TRUE(authz_.CheckDataInVault(p, vault_, list).allowed);  // readMetadata on that one
  EXPECT_FALSE(authz_.CheckData(p, vault_, get, "").allowed) << "not vault-wide";
  EXPECT_FALSE(authz_.CheckData(p, vault_, list, "").allowed) << "not vault-wide";
  const DataOperation& set = *FindOperation("SecretSet");
  EXPECT_FALSE(authz_.CheckDataInVault(p, vault_, set).allowed) << "only what the role grants";
  Principal q{"p2", "app", kTenant};
  Assign("rg", "p2", kSecretsUser, "/subscriptions/sub/resourceGroups/RG");
  EXPECT_TRUE(authz_.CheckDataInVault(q, vault_, list).allowed);
}

TEST_F(RbacTest, DataAccessAdministratorMayOnlyDelegateKeyVaultDataRoles) {
  Assign("daa", "admin", kDataAccessAdmin, kVault);
  Principal p{"admin", "app", kTenant};
  std::string scope = std::string(kVault) + "/providers/Microsoft.Authorization/roleAssignments/x";
  auto ok =
      authz_.CheckAction(p, "Microsoft.Authorization/roleAssignments/write", scope, kSecretsUser);
  EXPECT_TRUE(ok.allowed);
  auto owner =
      authz_.CheckAction(p, "Microsoft.Authorization/roleAssignments/write", scope, kOwner);
  EXPECT_FALSE(owner.allowed);
  EXPECT_EQ(owner.reason, Reason::kConditionNotMet);
  EXPECT_FALSE(
      authz_
          .CheckAction(p, "Microsoft.Authorization/roleAssignments/delete", scope, kCertificateUser)
          .allowed);
  EXPECT_TRUE(
      authz_.CheckAction(p, "Microsoft.Authorization/roleAssignments/read", kVault).allowed);
  EXPECT_FALSE(authz_.CheckAction(p, "Microsoft.KeyVault/vaults/write", kVault).allowed);
}

TEST_F(RbacTest, AnAssignmentOutsideItsRolesAssignableScopesGrantsNothing) {
  // A custom role narrowed to one resource group after it was assigned at
  // the subscription (or assigned there in a race with the narrowing).
  RoleDefinition role;
  role.role_name = "narrowed";
  role.permissions.push_back({{"*"}, {}, {}, {}});
  role.assignable_scopes = {"/subscriptions/sub/resourceGroups/RG-B"};
  const std::string id = "11111111-2222-3333-4444-555555555555";
  storage::RoleDefinitionRecord rec{id, "narrowed", CustomRoleToJson(role), 1, 1};
  ASSERT_TRUE(
      store_
          .PutRoleDefinition(
              id, [&](const auto&) -> StatusOr<storage::RoleDefinitionRecord> { return rec; })
          .ok());
  Assign("wide", "p1", id, "/subscriptions/sub");
  Assign("narrow", "p2", id, "/subscriptions/sub/resourceGroups/rg-b/");
  Principal wide{"p1", "app", kTenant};
  Principal narrow{"p2", "app", kTenant};
  const std::string in_b = "/subscriptions/sub/resourceGroups/rg-b/providers/X/y/z";
  EXPECT_FALSE(
      authz_
          .CheckAction(wide, "Microsoft.Authorization/roleAssignments/write", "/subscriptions/sub")
          .allowed);
  EXPECT_FALSE(authz_.CheckAction(wide, "X/y/write", in_b).allowed);
  EXPECT_TRUE(authz_.CheckAction(narrow, "X/y/write", in_b).allowed);
  EXPECT_FALSE(
      authz_.CheckAction(narrow, "X/y/write", "/subscriptions/sub/resourceGroups/rg-c").allowed);
}

TEST(ArmOperationTest, NamesActionsAsAzureDoes) {
  struct Case {
    const char* method;
    std::vector<std::string> path;
    const char* action;
    const char* scope;
  };
  const std::vector<Case> cases = {
      {"GET",
       {"subscriptions", "s", "providers", "Microsoft.KeyVault", "vaults"},
       "Microsoft.KeyVault/vaults/read",
       "/subscriptions/s"},
      {"PUT",
       {"subscriptions", "s", "resourceGroups", "rg", "providers", "Microsoft.KeyVault", "vaults",
        "v"},
       "Microsoft.KeyVault/vaults/write",
       "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v"},
      {"PUT",
       {"subscriptions", "s", "resourceGroups", "rg", "providers", "Microsoft.KeyVault", "vaults",
        "v", "accessPolicies", "add"},
       "Microsoft.KeyVault/vaults/accessPolicies/write",
       "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v/accessPolicies/"
       "add"},
      {"POST",
       {"subscriptions", "s", "providers", "Microsoft.KeyVault", "locations", "l", "deletedVaults",
        "v", "purge"},
       "Microsoft.KeyVault/locations/deletedVaults/purge/action",
       "/subscriptions/s/providers/Microsoft.KeyVault/locations/l/deletedVaults/v"},
      {"DELETE",
       {"subscriptions", "s", "resourceGroups", "rg", "providers", "Microsoft.ManagedIdentity",
        "userAssignedIdentities", "id", "federatedIdentityCredentials", "f"},
       "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/delete",
       "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/"
       "userAssignedIdentities/id/federatedIdentityCredentials/f"},
      {"POST",
       {"subscriptions", "s", "resourceGroups", "rg", "providers", "Microsoft.Web", "sites", "app",
        "listIdentityEndpoint"},
       "Microsoft.Web/sites/listIdentityEndpoint/action",
       "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/app"},
      {"GET",
       {"subscriptions", "s", "resourceGroups", "rg", "providers", "Microsoft.KeyVault", "vaults",
        "v", "providers", "Microsoft.Authorization", "roleAssignments"},
       "Microsoft.Authorization/roleAssignments/read",
       "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v"},
      {"PUT",
       {"subscriptions", "s", "providers", "Microsoft.Authorization", "roleAssignments", "a"},
       "Microsoft.Authorization/roleAssignments/write",
       "/subscriptions/s/providers/Microsoft.Authorization/roleAssignments/a"},
      {"GET",
       {"subscriptions", "s", "resourceGroups", "rg"},
       "Microsoft.Resources/subscriptions/resourceGroups/read",
       "/subscriptions/s/resourceGroups/rg"},
  };
  for (const auto& c : cases) {
    auto op = ArmOperationOf(c.method, c.path);
    ASSERT_TRUE(op.has_value()) << c.action;
    EXPECT_EQ(op->action, c.action);
    EXPECT_EQ(op->scope, c.scope) << c.action;
  }
  EXPECT_FALSE(ArmOperationOf("GET", {"v1.0", "applications"}).has_value());
  EXPECT_FALSE(ArmOperationOf("TRACE", {"subscriptions", "s"}).has_value());
}

TEST(CustomRoleTest, RejectsMalformedDefinitions) {
  auto good = CustomRoleFromArm("ABC", ParseJson(R"({"properties":{"roleName":"Reader of secrets",
      "permissions":[{"actions":[],"dataActions":["Microsoft.KeyVault/vaults/secrets/*"],
      "notDataActions":["Microsoft.KeyVault/vaults/secrets/purge/action"]}],
      "assignableScopes":["/subscriptions/s"]}})")
                                           .value());
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_EQ(good->id, "abc");
  EXPECT_TRUE(Grants(*good, "Microsoft.KeyVault/vaults/secrets/getSecret/action", true));
  EXPECT_FALSE(Grants(*good, "Microsoft.KeyVault/vaults/secrets/purge/action", true));
  auto again = CustomRoleFromJson("abc", CustomRoleToJson(*good), 1, 2);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->permissions[0].not_data_actions, good->permissions[0].not_data_actions);
  for (
      const char* bad : {
          R"({})",
          R"({"properties":{"permissions":[{}],"assignableScopes":["/"]}})",
          R"({"properties":{"roleName":"x","assignableScopes":["/"]}})",
          R"({"properties":{"roleName":"x","permissions":[],"assignableScopes":["/"]}})",
          R"({"properties":{"roleName":"x","permissions":[{"actions":"*"}],"assignableScopes":["/"]}})",
          R"({"properties":{"roleName":"x","permissions":[{"actions":["nope"]}],"assignableScopes":["/"]}})",
          R"({"properties":{"roleName":"x","permissions":[{"dataActions":["Microsoft.Storage/blobs/read"]}],"assignableScopes":["/"]}})",
          R"({"properties":{"roleName":"x","permissions":[{"actions":["*"]}],"assignableScopes":[]}})",
          R"({"properties":{"roleName":"x","permissions":[{"actions":["*"]}],"assignableScopes":["subscriptions/s"]}})",
          R"({"properties":{"roleName":"x","type":"BuiltInRole","permissions":[{"actions":["*"]}],"assignableScopes":["/"]}})",
          R"({"properties":{"roleName":"x","permissions":[{"actions":["*"],"condition":"true"}],"assignableScopes":["/"]}})",
      }) {
    EXPECT_EQ(CustomRoleFromArm("id", ParseJson(bad).value()).status().code(),
              StatusCode::kInvalidArgument)
        << bad;
  }
}

}  // namespace
}  // namespace coffer::authz
