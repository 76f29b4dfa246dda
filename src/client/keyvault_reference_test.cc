#include "client/keyvault_reference.h"

#include <gtest/gtest.h>

namespace coffer::client {
namespace {

KeyVaultReference Parsed(std::string_view value) {
  auto r = ParseKeyVaultReference(value);
  EXPECT_TRUE(r.ok()) << value << ": " << r.status().ToString();
  EXPECT_TRUE(r.ok() && r->has_value()) << value;
  return r.ok() && r->has_value() ? **r : KeyVaultReference();
}

std::string Refused(std::string_view value) {
  auto r = ParseKeyVaultReference(value);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << value;
  return r.ok() ? "" : std::string(r.status().message());
}

TEST(KeyVaultReference, SecretUriFormVersionedAndVersionless) {
  auto r = Parsed(
      "@Microsoft.KeyVault(SecretUri=https://Team-A.vault.localhost:8443/secrets/"
      "db-password/0123456789abcdef0123456789abcdef)");
  EXPECT_EQ(r.vault_url, "https://team-a.vault.localhost:8443");
  EXPECT_EQ(r.vault_name, "Team-A");
  EXPECT_EQ(r.secret_name, "db-password");
  EXPECT_EQ(r.version, "0123456789abcdef0123456789abcdef");
  r = Parsed("@Microsoft.KeyVault(SecretUri=https://kv1.vault.azure.net/secrets/api-key)");
  EXPECT_EQ(r.vault_url, "https://kv1.vault.azure.net");
  EXPECT_EQ(r.version, "");
  // A trailing slash on a versionless URI still means the latest version.
  r = Parsed("@Microsoft.KeyVault(SecretUri=https://kv1.vault.azure.net/secrets/api-key/)");
  EXPECT_EQ(r.secret_name, "api-key");
  EXPECT_EQ(r.version, "");
}

TEST(KeyVaultReference, VaultNameFormAndTolerances) {
  auto r = Parsed("@Microsoft.KeyVault(VaultName=kv1;SecretName=api-key)");
  EXPECT_EQ(r.vault_url, "");
  EXPECT_EQ(r.vault_name, "kv1");
  EXPECT_EQ(r.secret_name, "api-key");
  EXPECT_EQ(r.version, "");
  r = Parsed(
      "  @microsoft.keyvault( vaultname = kv1 ; secretname=api-key; SecretVersion=abc123; ) ");
  EXPECT_EQ(r.vault_name, "kv1");
  EXPECT_EQ(r.secret_name, "api-key");
  EXPECT_EQ(r.version, "abc123");
}

TEST(KeyVaultReference, OrdinaryValuesAreNotReferences) {
  for (const char* v :
       {"", "plain", "@Microsoft.KeyVault", "prefix @Microsoft.KeyVault(VaultName=a)",
        "@Microsoft.KeyVaultX(VaultName=kv1;SecretName=a)"}) {
    auto r = ParseKeyVaultReference(v);
    ASSERT_TRUE(r.ok()) << v;
    EXPECT_FALSE(r->has_value()) << v;
  }
}

TEST(KeyVaultReference, MalformedReferencesSayWhy) {
  EXPECT_NE(Refused("@Microsoft.KeyVault(VaultName=kv1;SecretName=a").find("')'"),
            std::string::npos);
  Refused("@Microsoft.KeyVault()");
  EXPECT_NE(Refused("@Microsoft.KeyVault(VaultName=kv1)").find("SecretName"), std::string::npos);
  EXPECT_NE(Refused("@Microsoft.KeyVault(VaultName=kv1;SecretName=a;Colour=red)").find("Colour"),
            std::string::npos);
  EXPECT_NE(Refused("@Microsoft.KeyVault(VaultName=kv1;VaultName=kv2;SecretName=a)").find("twice"),
            std::string::npos);
  Refused("@Microsoft.KeyVault(SecretUri=https://kv1.vault.azure.net/secrets/a;VaultName=kv1)");
  Refused("@Microsoft.KeyVault(VaultName=kv1;SecretName=)");
  Refused("@Microsoft.KeyVault(VaultName;SecretName=a)");
  // URIs: scheme, shape, and nothing that could redirect the request.
  Refused("@Microsoft.KeyVault(SecretUri=http://kv1.vault.azure.net/secrets/a)");
  Refused("@Microsoft.KeyVault(SecretUri=https://kv1.vault.azure.net/keys/a)");
  Refused("@Microsoft.KeyVault(SecretUri=https://kv1.vault.azure.net/secrets/a/v1/extra)");
  Refused("@Microsoft.KeyVault(SecretUri=https://kv1.vault.azure.net/secrets/a?x=1)");
  Refused("@Microsoft.KeyVault(SecretUri=https://kv1.vault.azure.net/secrets/a#f)");
  Refused("@Microsoft.KeyVault(SecretUri=https://evil@kv1.vault.azure.net/secrets/a)");
  Refused("@Microsoft.KeyVault(SecretUri=https://localhost/secrets/a)");
  // Read by the HTTP client's URL parser: a port is a port, a host a host.
  Refused("@Microsoft.KeyVault(SecretUri=https://kv1.vault.azure.net:99999/secrets/a)");
  Refused("@Microsoft.KeyVault(SecretUri=https://kv1.vault.azure.net:8443x/secrets/a)");
  Refused("@Microsoft.KeyVault(SecretUri=https://kv1.vault..azure.net/secrets/a)");
  Refused("@Microsoft.KeyVault(SecretUri=https://[::1]:8443/secrets/a)");
  // Names.
  Refused("@Microsoft.KeyVault(VaultName=k;SecretName=a)");
  Refused("@Microsoft.KeyVault(VaultName=1kv;SecretName=a)");
  Refused("@Microsoft.KeyVault(VaultName=kv1;SecretName=a/b)");
  Refused("@Microsoft.KeyVault(VaultName=kv1;SecretName=" + std::string(128, 'a') + ")");
  Refused("@Microsoft.KeyVault(VaultName=kv1;SecretName=a;SecretVersion=../x)");
  // Hostile input.
  Refused("@Microsoft.KeyVault(VaultName=kv1;SecretName=a\n)");
  Refused(std::string("@Microsoft.KeyVault(VaultName=kv1;SecretName=a\0)", 48));
  Refused("@Microsoft.KeyVault(VaultName=kv1;SecretName=(a))");
  Refused("@Microsoft.KeyVault(VaultName=kv1;SecretName=" + std::string(5000, 'a') + ")");
}

}  // namespace
}  // namespace coffer::client
