#include "server/public_names.h"

#include <gtest/gtest.h>

namespace coffer::server {
namespace {

TEST(PublicNameTest, ANameWithAndWithoutAPort) {
  auto plain = ParsePublicName("Coffer.Corp.Example", "--authority-host");
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(plain->name, "coffer.corp.example");
  EXPECT_EQ(plain->port, 0);
  auto with_port = ParsePublicName("vault.corp.example:8443", "--dns-suffix");
  ASSERT_TRUE(with_port.ok()) << with_port.status().ToString();
  EXPECT_EQ(with_port->name, "vault.corp.example");
  EXPECT_EQ(with_port->port, 8443);
  auto https = ParsePublicName("localhost:443", "--authority-host");
  ASSERT_TRUE(https.ok());
  EXPECT_EQ(https->port, 443);
}

TEST(PublicNameTest, AnythingButANameIsRefusedAndTheErrorNamesTheFlag) {
  for (const char* bad :
       {"", "127.0.0.1", "[::1]", "10.0.0.1:8443", "*.vault.example", "vault.example/path",
        "vault.example:0", "vault.example:65536", "vault.example:http", "user@vault.example",
        "vault.example?x", "vault example", "vault_example.test", "a..b", "-",
        "vault.example:", "\xc3\xa9.example"}) {
    auto parsed = ParsePublicName(bad, "--dns-suffix");
    EXPECT_FALSE(parsed.ok()) << "'" << bad << "' -> " << (parsed.ok() ? parsed->name : "");
    if (!parsed.ok()) {
      EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
      EXPECT_EQ(parsed.status().message().rfind("--dns-suffix", 0), 0u)
          << parsed.status().message();
    }
  }
  EXPECT_FALSE(ParsePublicName(std::string(300, 'a'), "--authority-host").ok());
}

TEST(CoversNameTest, ExactNamesAndOneLabelWildcards) {
  const std::vector<std::string> sans = {"Coffer.Test", "*.vault.coffer.test"};
  EXPECT_TRUE(CoversName(sans, "coffer.test"));
  EXPECT_TRUE(CoversName(sans, "dev.VAULT.coffer.test"));
  EXPECT_TRUE(CoversName(sans, "*.vault.coffer.test")) << "every vault";
  EXPECT_FALSE(CoversName(sans, "vault.coffer.test")) << "a wildcard needs a label";
  EXPECT_FALSE(CoversName(sans, "a.b.vault.coffer.test")) << "one label only";
  EXPECT_FALSE(CoversName(sans, ".vault.coffer.test"));
  EXPECT_FALSE(CoversName(sans, "x.coffer.test"));
  EXPECT_FALSE(CoversName(sans, "coffer.test.evil"));
  EXPECT_FALSE(CoversName({}, "coffer.test"));
  EXPECT_FALSE(CoversName({"*."}, "a."));
}

}  // namespace
}  // namespace coffer::server
