#include "cli/seed_file.h"

#include <string>

#include <gtest/gtest.h>

namespace coffer::cli {
namespace {

constexpr int64_t kNow = 1800000000;

SeedContext Context() {
  SeedContext c;
  c.host = "localhost";
  c.port = 8443;
  c.now = kNow;
  return c;
}

StatusOr<Seed> Parse(const std::string& text) {
  return ParseSeed(text, "seed.yaml", Context());
}

// The error's message, or a marker that there was none.
std::string ErrorOf(const std::string& text) {
  auto seed = Parse(text);
  return seed.ok() ? "<no error>" : std::string(seed.status().message());
}

constexpr char kWorld[] = R"(
vaults:
  - name: app-dev
    resourceGroup: rg-1
    enableRbacAuthorization: true
    softDeleteRetentionInDays: 7
    tags: {team: payments}
    secrets:
      - name: db-url
        value: "https://${host}:${port}/db"
        contentType: text/plain
        expires: ${now+30d}
        notBefore: ${now-2h}
        tags: {owner: a}
      - name: api-key
        versions:
          - value: old
            enabled: false
          - value: "new $${not-a-placeholder}"
            expires: 2027-01-31T00:00:00Z
  - name: legacy
    enableRbacAuthorization: false
identities:
  - name: web-app
    resourceGroup: rg-1
access:
  - vault: app-dev
    principal: web-app
    role: Key Vault Secrets User
  - vault: legacy
    principal: 0b9f0a43-5b8e-4bd2-9a3e-1d6f7a0c1e11
    permissions:
      secrets: [get, List]
)";

TEST(SeedFileTest, ParsesAWholeWorldWithPlaceholders) {
  auto seed = Parse(kWorld);
  ASSERT_TRUE(seed.ok()) << seed.status().ToString();
  ASSERT_EQ(seed->vaults.size(), 2u);
  const SeedVault& app = seed->vaults[0];
  EXPECT_EQ(app.name, "app-dev");
  EXPECT_EQ(app.resource_group, "rg-1");
  EXPECT_EQ(app.rbac, true);
  EXPECT_EQ(app.retention_days, 7);
  EXPECT_EQ(app.purge_protection, std::nullopt);
  EXPECT_EQ(app.tags["team"], "payments");
  ASSERT_EQ(app.secrets.size(), 2u);
  const SeedVersion& url = app.secrets[0].versions.at(0);
  EXPECT_EQ(url.value, "https://localhost:8443/db");
  EXPECT_EQ(url.content_type, "text/plain");
  EXPECT_EQ(url.exp, kNow + 30 * 86400);
  EXPECT_EQ(url.nbf, kNow - 2 * 3600);
  EXPECT_EQ(url.tags["owner"], "a");
  const SeedSecret& key = app.secrets[1];
  ASSERT_EQ(key.versions.size(), 2u);
  EXPECT_FALSE(key.versions[0].enabled);
  EXPECT_EQ(key.versions[1].value, "new ${not-a-placeholder}");
  EXPECT_EQ(key.versions[1].exp, 1801353600);
  EXPECT_EQ(seed->vaults[1].rbac, false);
  ASSERT_EQ(seed->identities.size(), 1u);
  EXPECT_EQ(seed->identities[0].name, "web-app");
  ASSERT_EQ(seed->access.size(), 2u);
  EXPECT_EQ(seed->access[0].role, "Key Vault Secrets User");
  EXPECT_EQ(seed->access[1].permissions.at("secrets"), (std::vector<std::string>{"get", "list"}));
}

TEST(SeedFileTest, WhatIsRenderedParsesBackTheSame) {
  auto seed = Parse(kWorld);
  ASSERT_TRUE(seed.ok());
  std::string text = RenderSeed(*seed);
  auto again = Parse(text);
  ASSERT_TRUE(again.ok()) << again.status().ToString() << "\n" << text;
  ASSERT_EQ(again->vaults.size(), seed->vaults.size());
  for (size_t i = 0; i < seed->vaults.size(); ++i) {
    const SeedVault& a = seed->vaults[i];
    const SeedVault& b = again->vaults[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.rbac, b.rbac);
    EXPECT_EQ(a.retention_days, b.retention_days);
    EXPECT_EQ(a.tags, b.tags);
    ASSERT_EQ(a.secrets.size(), b.secrets.size());
    for (size_t j = 0; j < a.secrets.size(); ++j) {
      ASSERT_EQ(a.secrets[j].versions.size(), b.secrets[j].versions.size());
      for (size_t k = 0; k < a.secrets[j].versions.size(); ++k) {
        const SeedVersion& x = a.secrets[j].versions[k];
        const SeedVersion& y = b.secrets[j].versions[k];
        EXPECT_EQ(x.value, y.value);
        EXPECT_EQ(x.enabled, y.enabled);
        EXPECT_EQ(x.nbf, y.nbf);
        EXPECT_EQ(x.exp, y.exp);
        EXPECT_EQ(x.tags, y.tags);
        EXPECT_EQ(x.content_type, y.content_type);
      }
    }
  }
  ASSERT_EQ(again->access.size(), 2u);
  EXPECT_EQ(again->access[1].permissions, seed->access[1].permissions);
  EXPECT_EQ(again->identities[0].resource_group, "rg-1");
}

TEST(SeedFileTest, ValuesWithQuotesNewlinesAndUnicodeSurviveTheRoundTrip) {
  Seed seed;
  SeedVault v;
  v.name = "app";
  SeedSecret s;
  s.name = "odd";
  SeedVersion version;
  version.value = "line 1\n\"quoted\" \\ back\ttab ${host} é ✓ #not a comment: - [x]";
  s.versions.push_back(version);
  v.secrets.push_back(s);
  seed.vaults.push_back(v);
  auto again = Parse(RenderSeed(seed));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  // Written values are not expanded again: RenderSeed escapes "${".
  EXPECT_EQ(again->vaults[0].secrets[0].versions[0].value, version.value);
}

TEST(SeedFileTest, AnEmptyFileSeedsNothing) {
  for (const char* text : {"", "---\n", "# nothing\n"}) {
    auto seed = Parse(text);
    ASSERT_TRUE(seed.ok()) << text;
    EXPECT_TRUE(seed->vaults.empty());
  }
}

TEST(SeedFileTest, ErrorsNameTheFileTheLineAndTheEntry) {
  struct Case {
    const char* text;
    const char* expected;
  };
  const Case cases[] = {
      {"vaults: [", "seed.yaml: "},
      {"vault:\n  - name: a\n", "unknown key \"vault\""},
      {"vaults:\n  - name: app\n    secrets:\n      - name: x\n        valeu: y\n",
       "line 4: vaults[0].secrets[0] (x): unknown key \"valeu\""},
      {"vaults:\n  - name: a\n", "line 2: vaults[0]"},
      {"vaults:\n  - name: ok-name\n  - name: OK-NAME\n", "named twice"},
      {"vaults:\n  - name: app\n    secrets:\n      - name: x\n        value: a\n      - name: X\n"
       "        value: b\n",
       "vaults[0].secrets[1] (X): the secret is named twice"},
      {"vaults:\n  - name: app\n    secrets:\n      - name: bad_name\n        value: a\n",
       "vaults[0].secrets[0]"},
      {"vaults:\n  - name: app\n    softDeleteRetentionInDays: 3\n", "from 7 to 90"},
      {"vaults:\n  - name: app\n    enableRbacAuthorization: yes\n", "true or false"},
      {"vaults:\n  - name: app\n    secrets:\n      - name: x\n        value: a\n        expires: "
       "soon\n",
       "expires must be a time"},
      {"vaults:\n  - name: app\n    secrets:\n      - name: x\n        value: ${nope}\n",
       "unknown placeholder \"${nope}\""},
      {"vaults:\n  - name: app\n    secrets:\n      - name: x\n        value: ${now+5y}\n",
       "unknown placeholder"},
      {"vaults:\n  - name: app\n    secrets:\n      - name: x\n        value: \"${host\"\n",
       "not closed"},
      {"vaults:\n  - name: app\n    secrets:\n      - name: x\n        value: a\n        "
       "versions:\n"
       "          - value: b\n",
       "either versions or value"},
      {"vaults:\n  - name: app\n    secrets:\n      - name: x\n        versions: []\n",
       "at least one version"},
      {"vaults:\n  - name: app\n    secrets:\n      - name: x\n        value: [a]\n",
       "value must be a scalar"},
      {"access:\n  - vault: app\n    principal: nobody\n    role: Reader\n",
       "principal \"nobody\" is neither"},
      {"vaults:\n  - name: app\n    enableRbacAuthorization: true\naccess:\n  - vault: app\n"
       "    principal: 0b9f0a43-5b8e-4bd2-9a3e-1d6f7a0c1e11\n    permissions: {secrets: [get]}\n",
       "uses Azure RBAC"},
      {"vaults:\n  - name: app\n    enableRbacAuthorization: false\naccess:\n  - vault: app\n"
       "    principal: 0b9f0a43-5b8e-4bd2-9a3e-1d6f7a0c1e11\n    role: Reader\n",
       "uses access policies"},
      {"access:\n  - vault: app\n    principal: 0b9f0a43-5b8e-4bd2-9a3e-1d6f7a0c1e11\n"
       "    permissions: {secrets: [fly]}\n",
       "no permission \"fly\""},
      {"access:\n  - vault: app\n    principal: 0b9f0a43-5b8e-4bd2-9a3e-1d6f7a0c1e11\n",
       "give a role"},
      {"identities:\n  - name: x\n", "not an identity name"},
      {"vaults:\n  - name: app\n    resourceGroup: \"a/b\"\n", "not a resource group name"},
      {"vaults: {name: app}\n", "line 1: vaults: must be a list"},
  };
  for (const Case& c : cases) {
    std::string error = ErrorOf(c.text);
    EXPECT_NE(error.find(c.expected), std::string::npos) << "input:\n"
                                                         << c.text << "\nerror: " << error;
    EXPECT_EQ(error.rfind("seed.yaml: ", 0), 0u) << error;
  }
}

TEST(SeedFileTest, TagsAreCheckedAsKeyVaultChecksThem) {
  std::string text =
      "vaults:\n  - name: app\n    secrets:\n      - name: x\n        value: a\n"
      "        tags:\n";
  for (int i = 0; i < 16; ++i) {
    text += "          t" + std::to_string(i) + ": v\n";
  }
  EXPECT_NE(ErrorOf(text).find("vaults[0].secrets[0] (x): tags"), std::string::npos)
      << ErrorOf(text);
}

TEST(SeedFileTest, AValueNeverAppearsInAnError) {
  const std::string secret = "s3cr3t-VALUE-never-shown";
  const std::string bad_utf8 =
      "vaults:\n  - name: app\n    secrets:\n      - name: x\n"
      "        value: \"" +
      secret + "\xff\"\n";
  std::string long_value(25 * 1024 + 1, 'a');
  long_value.replace(0, secret.size(), secret);
  const std::string too_long =
      "vaults:\n  - name: app\n    secrets:\n      - name: x\n"
      "        value: " +
      long_value + "\n";
  const std::string bad_time =
      "vaults:\n  - name: app\n    secrets:\n      - name: x\n"
      "        value: " +
      secret + "\n        expires: never\n";
  for (const std::string& text : {bad_utf8, too_long, bad_time}) {
    std::string error = ErrorOf(text);
    EXPECT_NE(error, "<no error>");
    EXPECT_EQ(error.find(secret), std::string::npos) << error;
  }
  EXPECT_NE(ErrorOf(too_long).find("longer than"), std::string::npos);
}

TEST(SeedFileTest, HostileFilesAreRefusedWithinBounds) {
  // Nesting deeper than a seed ever needs.
  std::string deep = "vaults: ";
  for (int i = 0; i < 40; ++i) {
    deep += "[";
  }
  EXPECT_NE(ErrorOf(deep), "<no error>");
  // An alias bomb.
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  char prev = 'a';
  for (char c = 'b'; c <= 'k'; ++c, ++prev) {
    bomb += std::string(1, c) + ": &" + c + " [*" + prev + ", *" + prev + ", *" + prev + ", *" +
            prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev +
            ", *" + prev + "]\n";
  }
  EXPECT_NE(ErrorOf(bomb), "<no error>");
  // More than one document, and a file past the size bound.
  EXPECT_NE(ErrorOf("vaults: []\n---\nvaults: []\n"), "<no error>");
  EXPECT_NE(ErrorOf(std::string(kMaxSeedBytes + 1, '#')), "<no error>");
  // Too many versions of one secret.
  std::string versions =
      "vaults:\n  - name: app\n    secrets:\n      - name: x\n        versions:\n";
  for (size_t i = 0; i <= kMaxSeedVersions; ++i) {
    versions += "          - value: v\n";
  }
  EXPECT_NE(ErrorOf(versions).find("at most"), std::string::npos);
}

}  // namespace
}  // namespace coffer::cli
