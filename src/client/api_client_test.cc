// Where the CLI's vault commands send requests.

#include "client/api_client.h"

#include <gtest/gtest.h>

namespace coffer::client {
namespace {

ClientConfig Config(std::string authority, std::string suffix) {
  ClientConfig c;
  c.authority = std::move(authority);
  c.vault_dns_suffix = std::move(suffix);
  return c;
}

TEST(VaultUrlTest, ASuffixWithoutAPortTakesTheAuthoritys) {
  EXPECT_EQ(Config("https://localhost:8443", "vault.localhost").VaultUrl("Dev"),
            "https://dev.vault.localhost:8443");
  EXPECT_EQ(Config("https://coffer.corp.example", "vault.corp.example").VaultUrl("team"),
            "https://team.vault.corp.example");
}

TEST(VaultUrlTest, ASuffixWithItsOwnPortKeepsIt) {
  // Vaults behind another port than the authority (a port mapping, a
  // second load balancer): the node names it in COFFER_VAULT_DNS_SUFFIX.
  EXPECT_EQ(Config("https://coffer.test:9443", "vault.coffer.test:9444").VaultUrl("dev"),
            "https://dev.vault.coffer.test:9444");
  EXPECT_EQ(Config("https://coffer.test:9443", "vault.coffer.test:443").VaultUrl("dev"),
            "https://dev.vault.coffer.test");
}

}  // namespace
}  // namespace coffer::client
