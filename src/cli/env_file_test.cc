#include "cli/env_file.h"

#include <map>
#include <string>

#include <gtest/gtest.h>

namespace coffer::cli {
namespace {

// The files an environments file may name, by path.
std::map<std::string, std::string>& Files() {
  static std::map<std::string, std::string> files;
  return files;
}

StatusOr<std::string> Read(const std::string& path) {
  auto it = Files().find(path);
  if (it == Files().end()) {
    return NotFoundError("no such file");
  }
  return it->second;
}

StatusOr<EnvFile> Parse(const std::string& text) {
  return ParseEnvFile(text, "envs.yaml", Read);
}

std::string ErrorOf(const std::string& text) {
  auto f = Parse(text);
  return f.ok() ? "<no error>" : std::string(f.status().message());
}

constexpr char kTeam[] = R"yaml(
environments:
  - name: dev
    variables: {group: rg-dev}
  - name: staging
    variables: {group: rg-staging}
  - name: prod
    variables: {group: rg-prod}
    vaults:
      - name: audit-prod
        enableRbacAuthorization: false
vaults:
  - name: shop-${env}
    resourceGroup: ${group}
    enableRbacAuthorization: true
    softDeleteRetentionInDays: 7
identities:
  - name: shop-${env}
    resourceGroup: ${group}
  - name: ci-${env}
    kind: servicePrincipal
    environments: [prod]
applications:
  - name: shop
    identity: shop-${env}
    vault: shop-${env}
    secrets:
      - name: db-password
        contentType: text/plain
        expiry: {required: true, maxAhead: 90d, minRemaining: 14d}
      - name: feature-flags
        shareable: true
      - name: payments-key
        environments: [staging, prod]
    references:
      - "@Microsoft.KeyVault(VaultName=shop-${env};SecretName=db-password)"
access:
  - vault: shop-${env}
    principal: shop-${env}
    role: Key Vault Secrets User
  - vault: audit-prod
    principal: ci-prod
    permissions: {secrets: [get, list]}
    environments: [prod]
)yaml";

TEST(EnvFileTest, ExpandsEntriesForEveryEnvironment) {
  auto f = Parse(kTeam);
  ASSERT_TRUE(f.ok()) << f.status().message();
  ASSERT_EQ(f->environments.size(), 3u);
  const Environment* prod = f->Find("prod");
  ASSERT_NE(prod, nullptr);
  ASSERT_EQ(prod->vaults.size(), 2u);
  EXPECT_EQ(prod->vaults[0].name, "audit-prod");
  EXPECT_EQ(prod->vaults[0].rbac, false);
  EXPECT_EQ(prod->vaults[1].name, "shop-prod");
  EXPECT_EQ(prod->vaults[1].resource_group, "rg-prod");
  EXPECT_EQ(prod->vaults[1].retention_days, 7);
  ASSERT_EQ(prod->identities.size(), 2u);
  EXPECT_EQ(prod->identities[1].kind, EnvIdentityKind::kServicePrincipal);
  ASSERT_EQ(prod->applications.size(), 1u);
  const EnvApplication& shop = prod->applications[0];
  EXPECT_EQ(shop.identity, "shop-prod");
  ASSERT_EQ(shop.secrets.size(), 3u);
  EXPECT_EQ(shop.secrets[0].vault, "shop-prod");
  EXPECT_TRUE(shop.secrets[0].expiry_required);
  EXPECT_EQ(shop.secrets[0].max_ahead, 90 * 86400);
  EXPECT_EQ(shop.secrets[0].min_remaining, 14 * 86400);
  EXPECT_FALSE(shop.secrets[0].shareable);
  EXPECT_TRUE(shop.secrets[1].shareable);
  ASSERT_EQ(shop.reads.size(), 1u);
  EXPECT_EQ(shop.reads[0].vault, "shop-prod");
  EXPECT_EQ(shop.reads[0].name, "db-password");
  ASSERT_EQ(prod->access.size(), 2u);
  EXPECT_EQ(prod->access[1].permissions.at("secrets"), (std::vector<std::string>{"get", "list"}));

  const Environment* dev = f->Find("dev");
  ASSERT_NE(dev, nullptr);
  EXPECT_EQ(dev->vaults.size(), 1u);
  EXPECT_EQ(dev->identities.size(), 1u);
  EXPECT_EQ(dev->applications[0].secrets.size(), 2u);  // payments-key is staging and prod only
  EXPECT_EQ(dev->access.size(), 1u);
}

TEST(EnvFileTest, ReadsSecretProviderClassesAndReferenceFiles) {
  Files()["k8s/prod/spc.yaml"] = R"(
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata: {name: shop}
spec:
  provider: azure
  parameters:
    keyvaultName: shop-prod
    clientID: 11111111-2222-3333-4444-555555555555
    objects: |
      array:
        - |
          objectName: db-password
          objectType: secret
        - |
          objectName: signing
          objectType: key
)";
  Files()["prod.env"] =
      "DB=@Microsoft.KeyVault(VaultName=shop-dev;SecretName=db-password)\n"
      "PLAIN=hello\n";
  auto f = Parse(R"(
environments: [{name: prod}]
vaults: [{name: shop-prod}]
applications:
  - name: shop
    secretProviderClasses: k8s/${env}/spc.yaml
    referenceFiles: ['${env}.env']
)");
  ASSERT_TRUE(f.ok()) << f.status().message();
  const auto& reads = f->environments[0].applications[0].reads;
  ASSERT_EQ(reads.size(), 3u);
  EXPECT_EQ(reads[0].type, "secret");
  EXPECT_EQ(reads[0].client_id, "11111111-2222-3333-4444-555555555555");
  EXPECT_EQ(reads[1].type, "key");
  EXPECT_EQ(reads[1].name, "signing");
  EXPECT_EQ(reads[2].vault, "shop-dev");  // check reports it as another environment's
  EXPECT_NE(reads[2].where.find("prod.env DB"), std::string::npos);
}

TEST(EnvFileTest, ErrorsNameTheLineTheEntryAndTheEnvironment) {
  std::string e = ErrorOf(R"(
environments: [{name: dev}, {name: prod}]
vaults: [{name: 'shop-${env}'}]
applications:
  - name: shop
    secrets:
      - name: db-password
        sharable: true
)");
  EXPECT_NE(e.find("envs.yaml: line 7: applications[0].secrets[0] [dev] (db-password)"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("unknown key \"sharable\""), std::string::npos) << e;
}

TEST(EnvFileTest, RefusesWhatCannotBeRight) {
  const std::string envs = "environments: [{name: dev}, {name: prod}]\n";
  struct Case {
    std::string text;
    std::string message;
  };
  const Case cases[] = {
      {"", "the file is empty"},
      {"vaults: []\n", "must list at least one environment"},
      {"environments: [{name: dev}, {name: dev}]\nvaults: [{name: 'a-${env}'}]\n", "named twice"},
      {"environments: [{name: 'dev prod'}]\n", "is not an environment name"},
      {envs + "vaults: [{name: shop}]\n", "also declared by environment 'dev'"},
      {envs + "vaults: [{name: 'shop-${env}'}]\nidentities: [{name: cii}]\n",
       "identity 'cii' is also declared by environment 'dev'"},
      {envs + "vaults: [{name: 'shop-${region}'}]\n", "unknown placeholder \"${region}\""},
      {envs + "vaults: [{name: 'shop-${env}', environments: [qa]}]\n",
       "\"qa\" is not an environment"},
      {envs, "the environment declares no vault"},
      {envs + "vaults: [{name: 'shop-${env}'}]\naccess: [{vault: other, principal: 'x-${env}', "
              "role: Reader}]\n",
       "vault \"other\" is not a vault of environment 'dev'"},
      {envs + "vaults: [{name: 'shop-${env}'}]\naccess: [{vault: 'shop-${env}', principal: "
              "nobody, role: Reader}]\n",
       "principal \"nobody\" is neither an identity of environment 'dev'"},
      {envs + "vaults: [{name: 'shop-${env}', enableRbacAuthorization: false}]\n"
              "access: [{vault: 'shop-${env}', principal: 0b9f0a43-5b8e-4bd2-9a3e-1d6f7a0c1e11, "
              "role: Reader}]\n",
       "give permissions, not a role"},
      {envs + "vaults: [{name: 'a-${env}'}, {name: 'b-${env}'}]\napplications: [{name: x, secrets: "
              "[{name: s}]}]\n",
       "vault is required (the environment has 2 vaults)"},
      {envs + "vaults: [{name: 'a-${env}'}]\napplications: [{name: x, secrets: [{name: s, expiry: "
              "{required: true}}]}]\n",
       "expiry.required needs expiry.maxAhead"},
      {envs + "vaults: [{name: 'a-${env}'}]\napplications: [{name: x, secrets: [{name: s, expiry: "
              "{maxAhead: soon}}]}]\n",
       "must be a duration"},
      {envs + "vaults: [{name: 'a-${env}'}]\napplications: [{name: x, secrets: [{name: s, expiry: "
              "{maxAhead: 7d, minRemaining: 30d}}]}]\n",
       "minRemaining must be shorter"},
      {envs + "vaults: [{name: 'a-${env}'}]\napplications: [{name: x, identity: ghost}]\n",
       "identity \"ghost\" is neither"},
      {envs + "vaults: [{name: 'a-${env}'}]\napplications: [{name: x, secretProviderClasses: "
              "[missing.yaml]}]\n",
       "secretProviderClasses: \"missing.yaml\": no such file"},
      {envs + "vaults: [{name: 'a-${env}'}]\napplications: [{name: x, references: [plain]}]\n",
       "is not a @Microsoft.KeyVault(...) reference"},
      {envs + "vaults: [{name: 'a-${env}'}]\nidentities: [{name: 'i-${env}', kind: robot}]\n",
       "is not an identity kind"},
      {envs + "vaults: [{name: 'a-${env}'}]\nsecrets: []\n", "unknown key \"secrets\""},
      {"environments: [{name: dev, variables: {env: x}}]\n", "is not a variable name"},
      {"environments: [{name: dev, vaults: [{name: a, environments: [dev]}]}]\n",
       "an environment's own entry takes no environments"},
      {envs + "vaults: [{name: 'a-${env}'}]\napplications: [{name: x, secrets: [{name: s}]}, "
              "{name: y, secrets: [{name: S, shareable: true}]}]\n",
       "application 'x' declares this secret differently"},
      {envs + "vaults: [{name: 'a-${env}', enableRbacAuthorization: false}]\naccess: [{vault: "
              "'a-${env}', principal: 0b9f0a43-5b8e-4bd2-9a3e-1d6f7a0c1e11, permissions: "
              "{secrets: []}}]\n",
       "permissions grant nothing"},
      {"environments: [{name: dev}]\nvaults: &a [*a]\n", "YAML"},
  };
  for (const Case& c : cases) {
    std::string e = ErrorOf(c.text);
    EXPECT_NE(e.find(c.message), std::string::npos) << c.text << "\n=> " << e;
  }
}

TEST(EnvFileTest, BoundsWhatAFileMayExpandTo) {
  std::string text = "environments:\n";
  for (int i = 0; i < 21; ++i) {
    text += "  - name: e" + std::to_string(i) + "\n";
  }
  EXPECT_NE(ErrorOf(text).find("at most 20 environments"), std::string::npos);

  std::string many = "environments: [";
  for (int i = 0; i < 20; ++i) {
    many += std::string(i ? ", " : "") + "{name: e" + std::to_string(i) + "}";
  }
  many += "]\nvaults: [{name: 'v-${env}'}]\napplications:\n  - name: a\n    secrets:\n";
  for (int i = 0; i < 300; ++i) {
    many += "      - name: s" + std::to_string(i) + "\n";
  }
  EXPECT_NE(ErrorOf(many).find("more than 5000 entries"), std::string::npos);
}

}  // namespace
}  // namespace coffer::cli
