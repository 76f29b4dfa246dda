// Client secrets: how they are stored and checked, and the limits on failed
// checks.

#include "auth/directory.h"

#include <string>

#include <gtest/gtest.h>

#include "crypto/primitives.h"
#include "storage/memory/memory_store.h"

namespace coffer::auth {
namespace {

const std::string kKey(32, 'k');

DirectoryOptions Options(std::string key = kKey) {
  DirectoryOptions options;
  options.secret_hash_key = std::move(key);
  options.per_client_id = {2, 60};
  options.per_address = {4, 60};
  return options;
}

class DirectoryTest : public ::testing::Test {
 protected:
  DirectoryTest() : clock_(1800000000), directory_(store_, clock_, "t1", Options()) {}

  // AddPbkdf2Secret stores `secret` as a release before keyed hashes did:
  // PBKDF2 (with few iterations, for the test's speed).
  std::string AddPbkdf2Secret(const std::string& object_id, const std::string& secret) {
    storage::ClientSecretRecord rec;
    rec.key_id = crypto::RandomUuid();
    rec.principal_object_id = object_id;
    rec.salt = crypto::RandomBytes(16);
    rec.iterations = 1000;
    rec.hash = crypto::Pbkdf2Sha256(secret, rec.salt, rec.iterations, 32);
    rec.hint = secret.substr(0, 3);
    rec.created = clock_.NowSeconds();
    rec.expires = rec.created + 86400;
    EXPECT_TRUE(store_.AddClientSecret(rec).ok());
    return rec.key_id;
  }

  storage::MemoryStore store_;
  FakeClock clock_;
  Directory directory_;
};

TEST_F(DirectoryTest, NewSecretsAreStoredAsAKeyedHash) {
  auto sp = directory_.CreateServicePrincipal("app", 30);
  ASSERT_TRUE(sp.ok()) << sp.status().ToString();
  auto stored = store_.ListClientSecrets(sp->principal.object_id);
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 1u);
  const auto& rec = (*stored)[0];
  EXPECT_EQ(rec.key_id, sp->secret_key_id);
  EXPECT_EQ(rec.iterations, 0);
  EXPECT_EQ(rec.salt.size(), 16u);
  EXPECT_EQ(rec.hash, crypto::HmacSha256(kKey, rec.salt + sp->client_secret));
  EXPECT_EQ(rec.hash.find(sp->client_secret), std::string::npos);
  EXPECT_EQ(rec.hint, sp->client_secret.substr(0, 3));
  EXPECT_TRUE(directory_.AuthenticateClientSecret(sp->principal.app_id, sp->client_secret).ok());
  // Without the key the stored hash says nothing: another key refuses it.
  Directory other(store_, clock_, "t1", Options(std::string(32, 'o')));
  EXPECT_EQ(other.AuthenticateClientSecret(sp->principal.app_id, sp->client_secret).status().code(),
            StatusCode::kUnauthenticated);
}

TEST_F(DirectoryTest, NoSecretIsAddedWithoutAKey) {
  Directory keyless(store_, clock_, "t1", Options(""));
  auto sp = keyless.CreateServicePrincipal("app", 30);
  EXPECT_EQ(sp.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(DirectoryTest, Pbkdf2SecretsOfEarlierReleasesStillVerify) {
  auto sp = directory_.CreateServicePrincipal("app", 30);
  ASSERT_TRUE(sp.ok());
  std::string old_secret = "an-older-release-made-this-secret-0123456";
  std::string key_id = AddPbkdf2Secret(sp->principal.object_id, old_secret);
  auto found = directory_.AuthenticateClientSecret(sp->principal.app_id, old_secret);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(found->object_id, sp->principal.object_id);
  EXPECT_TRUE(directory_.AuthenticateClientSecret(sp->principal.app_id, sp->client_secret).ok());
  EXPECT_EQ(
      directory_.AuthenticateClientSecret(sp->principal.app_id, old_secret + "x").status().code(),
      StatusCode::kUnauthenticated);
  auto info = directory_.FindClientSecret(sp->principal.object_id, old_secret);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->key_id, key_id);
  info = directory_.FindClientSecret(sp->principal.object_id, sp->client_secret);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->key_id, sp->secret_key_id);
  EXPECT_EQ(directory_.FindClientSecret(sp->principal.object_id, "nope").status().code(),
            StatusCode::kUnauthenticated);
}

TEST_F(DirectoryTest, FailuresPerClientIdAreLimitedAndTheRightSecretStillWorks) {
  auto sp = directory_.CreateServicePrincipal("app", 30);
  ASSERT_TRUE(sp.ok());
  const std::string& app = sp->principal.app_id;
  EXPECT_EQ(directory_.AuthenticateClientSecret(app, "wrong1", "192.0.2.1").status().code(),
            StatusCode::kUnauthenticated);
  EXPECT_EQ(directory_.AuthenticateClientSecret(app, "wrong2", "192.0.2.2").status().code(),
            StatusCode::kUnauthenticated);
  int64_t retry_after = 0;
  auto limited = directory_.AuthenticateClientSecret(app, "wrong3", "192.0.2.3", &retry_after);
  EXPECT_EQ(limited.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(retry_after, 60);
  EXPECT_EQ(limited.status().message().find("wrong3"), std::string::npos);
  // The right secret is checked all the same (a keyed hash costs nothing).
  EXPECT_TRUE(directory_.AuthenticateClientSecret(app, sp->client_secret, "192.0.2.3").ok());
  // Failures while limited are not counted: the wait stays what was said.
  clock_.Advance(60);
  EXPECT_EQ(directory_.AuthenticateClientSecret(app, "wrong4", "192.0.2.4").status().code(),
            StatusCode::kUnauthenticated);
}

TEST_F(DirectoryTest, FailuresPerAddressAreLimitedAcrossClientIds) {
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(directory_.AuthenticateClientSecret("app-" + std::to_string(i), "x", "2001:db8::1")
                  .status()
                  .code(),
              StatusCode::kUnauthenticated);
  }
  // Another address in the same /64 is the same client.
  EXPECT_EQ(directory_.AuthenticateClientSecret("app-9", "x", "2001:db8::2").status().code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(directory_.AuthenticateClientSecret("app-9", "x", "2001:db8:0:1::1").status().code(),
            StatusCode::kUnauthenticated);
}

TEST_F(DirectoryTest, WhileLimitedPbkdf2SecretsAreNotTriedUnlessCached) {
  auto sp = directory_.CreateServicePrincipal("app", 30);
  ASSERT_TRUE(sp.ok());
  const std::string& app = sp->principal.app_id;
  std::string cached = "a-cached-older-secret-0123456789abcdefghij";
  std::string uncached = "an-uncached-older-secret-0123456789abcdefg";
  AddPbkdf2Secret(sp->principal.object_id, cached);
  AddPbkdf2Secret(sp->principal.object_id, uncached);
  ASSERT_TRUE(directory_.AuthenticateClientSecret(app, cached).ok());
  for (int i = 0; i < 2; ++i) {
    ASSERT_FALSE(directory_.AuthenticateClientSecret(app, "wrong").ok());
  }
  EXPECT_EQ(directory_.AuthenticateClientSecret(app, uncached).status().code(),
            StatusCode::kResourceExhausted);
  EXPECT_TRUE(directory_.AuthenticateClientSecret(app, cached).ok());
  EXPECT_TRUE(directory_.AuthenticateClientSecret(app, sp->client_secret).ok());
  clock_.Advance(60);
  EXPECT_TRUE(directory_.AuthenticateClientSecret(app, uncached).ok());
}

}  // namespace
}  // namespace coffer::auth
