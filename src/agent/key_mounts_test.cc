// Keys in mounts (objectType: key) against the fake vault of
// mounts_testing.h: the public half as PEM, the key's version, one read per
// key and round, reads per identity, and a key apart from a secret of the
// same name. The real server is exercised in
// tests/integration/test_agent_keys.py.

#include <vector>

#include <gtest/gtest.h>

#include "agent/mount_builder.h"
#include "agent/mounts_testing.h"
#include "agent/vault_reader.h"
#include "common/json.h"
#include "common/strings.h"
#include "crypto/asym_key.h"

namespace coffer::agent {
namespace {

using mounts_testing::MountsTest;

AzureObject KeyObject(const std::string& name, const std::string& alias = "") {
  AzureObject o;
  o.name = name;
  o.type = ObjectType::kKey;
  o.format = "pem";
  o.alias = alias;
  return o;
}

Json PublicJwkOf(const std::string& kty, int size, const std::string& crv) {
  auto key = crypto::AsymKey::Generate(kty, size, crv);
  EXPECT_TRUE(key.ok()) << key.status().ToString();
  return (*key)->PublicJwk();
}

TEST_F(MountsTest, KeysAreTheirPublicHalfAsPemWithTheKeyVersion) {
  Json rsa = PublicJwkOf("RSA", 2048, "");
  Json ec = PublicJwkOf("EC", 0, "P-384");
  cloud_->PutKey("signing", PublicJwkOf("RSA", 2048, ""));
  std::string rsa_version = cloud_->PutKey("signing", rsa);
  std::string ec_version = cloud_->PutKey("ec", ec);
  // A secret of the same name as a key is another object.
  cloud_->Put("signing", "not-a-key");
  VaultReader reader(options_);
  auto round = reader.NewRound();
  std::vector<AzureObject> objects = {KeyObject("signing"), KeyObject("ec", "keys/ec.pem"),
                                      Secret("signing")};
  objects[2].alias = "signing-secret";
  objects[0].file_permission = 0640;
  EXPECT_EQ(BuildAtOnce(20, Params(objects), Sp("app", "good-app"), *round, 3), 20);
  EXPECT_EQ(cloud_->key_reads(), 2) << "one read per key and round, however many mounts";
  BuiltMount b = Build(Params(objects), Sp("app", "good-app"), *round);
  ASSERT_TRUE(b.status.ok()) << b.status.ToString();
  ASSERT_EQ(b.files.size(), 3u);
  EXPECT_EQ(b.files[0].path, "signing");
  EXPECT_EQ(b.files[0].contents, *crypto::PublicKeyPemFromJwk(rsa));
  EXPECT_TRUE(StartsWith(b.files[0].contents, "-----BEGIN PUBLIC KEY-----\n"));
  EXPECT_EQ(b.files[0].mode, 0640u);
  EXPECT_EQ(b.files[1].path, "keys/ec.pem");
  EXPECT_EQ(b.files[1].contents, *crypto::PublicKeyPemFromJwk(ec));
  EXPECT_EQ(b.files[2].path, "signing-secret");
  EXPECT_EQ(b.files[2].contents, "not-a-key");
  ASSERT_EQ(b.objects.size(), 3u);
  EXPECT_EQ(b.objects[0].id, "key/signing");
  EXPECT_EQ(b.objects[0].version, rsa_version);
  EXPECT_EQ(b.objects[1].id, "key/ec");
  EXPECT_EQ(b.objects[1].version, ec_version);
  EXPECT_EQ(b.objects[2].id, "secret/signing");

  // A pinned version reads that version.
  AzureObject pinned = KeyObject("signing");
  pinned.version = rsa_version;
  BuiltMount p = Build(Params({pinned}), Sp("app", "good-app"), *reader.NewRound());
  ASSERT_TRUE(p.status.ok()) << p.status.ToString();
  EXPECT_EQ(p.objects[0].version, rsa_version);
}

TEST_F(MountsTest, AKeyIsReadPerIdentityAndOnlyOfTheTypesTheAzureProviderWrites) {
  cloud_->PutKey("k", PublicJwkOf("EC", 0, "P-256"), {"app"});
  cloud_->Put("k", "secret of the same name", {"app", "other"});
  cloud_->PutKey("k1", PublicJwkOf("EC", 0, "P-256K"));
  VaultReader reader(options_);
  auto round = reader.NewRound();
  ASSERT_TRUE(Build(Params({KeyObject("k")}), Sp("app", "good-app"), *round).status.ok());
  // "other" may read the secret k, not the key k: neither its read of the
  // secret nor the key that "app" read serves it the key.
  ASSERT_TRUE(Build(Params({Secret("k")}), Sp("other", "good-other"), *round).status.ok());
  BuiltMount other = Build(Params({KeyObject("k")}), Sp("other", "good-other"), *round);
  EXPECT_EQ(other.status.code(), StatusCode::kPermissionDenied) << other.status.ToString();
  EXPECT_NE(other.status.message().find("objectType:key, objectName:k"), std::string::npos);
  EXPECT_TRUE(other.files.empty());
  BuiltMount forged = Build(Params({KeyObject("k")}), Sp("app", "guess"), *round);
  EXPECT_EQ(forged.status.code(), StatusCode::kUnauthenticated);
  // The Azure provider writes RSA and EC on P-256, P-384 and P-521 only.
  BuiltMount k1 = Build(Params({KeyObject("k1")}), Sp("app", "good-app"), *round);
  EXPECT_EQ(k1.status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(k1.status.message().find("P-256K"), std::string::npos) << k1.status.ToString();
  BuiltMount missing = Build(Params({KeyObject("nope")}), Sp("app", "good-app"), *round);
  EXPECT_EQ(missing.status.code(), StatusCode::kPermissionDenied);
}

// objectVersionHistory of a key: the newest enabled versions, newest first,
// as <file>/0, <file>/1, ..., each its version's public key.
TEST_F(MountsTest, AKeysVersionHistoryIsItsNewestEnabledVersions) {
  std::vector<Json> jwks;
  std::vector<std::string> versions;
  for (int i = 0; i < 4; ++i) {
    jwks.push_back(PublicJwkOf("EC", 0, "P-256"));
    versions.push_back(cloud_->PutKey("k", jwks.back()));
  }
  cloud_->DisableKey("k", 2);
  VaultReader reader(options_);
  AzureObject history = KeyObject("k");
  history.version_history = 3;
  BuiltMount b = Build(Params({history}), Sp("app", "good-app"), *reader.NewRound());
  ASSERT_TRUE(b.status.ok()) << b.status.ToString();
  ASSERT_EQ(b.files.size(), 3u);
  EXPECT_EQ(b.files[0].path, "k/0");
  EXPECT_EQ(b.files[0].contents, *crypto::PublicKeyPemFromJwk(jwks[3]));
  EXPECT_EQ(b.files[1].path, "k/1");
  EXPECT_EQ(b.files[1].contents, *crypto::PublicKeyPemFromJwk(jwks[1]));  // 2 is disabled
  EXPECT_EQ(b.files[2].path, "k/2");
  EXPECT_EQ(b.files[2].contents, *crypto::PublicKeyPemFromJwk(jwks[0]));
  ASSERT_EQ(b.objects.size(), 3u);
  EXPECT_EQ(b.objects[0].id, "key/k/0");
  EXPECT_EQ(b.objects[0].version, versions[3]);
  EXPECT_EQ(b.objects[2].version, versions[0]);
  // From a pinned version back; a version that is not among the enabled
  // ones fails the mount; another identity reads nothing.
  history.version = versions[1];
  BuiltMount pinned = Build(Params({history}), Sp("app", "good-app"), *reader.NewRound());
  ASSERT_TRUE(pinned.status.ok()) << pinned.status.ToString();
  ASSERT_EQ(pinned.files.size(), 2u);
  EXPECT_EQ(pinned.objects[0].version, versions[1]);
  history.version = versions[2];
  EXPECT_EQ(Build(Params({history}), Sp("app", "good-app"), *reader.NewRound()).status.code(),
            StatusCode::kNotFound);
  history.version = "";
  EXPECT_EQ(Build(Params({history}), Sp("other", "good-other"), *reader.NewRound()).status.code(),
            StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace coffer::agent
