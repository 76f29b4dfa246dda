#include "auth/signing_keys.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "common/encoding.h"
#include "common/files.h"
#include "common/testing/temp_dir.h"
#include "crypto/primitives.h"
#include "storage/memory/memory_store.h"

namespace coffer::auth {
namespace {

// Two "servers" share one store, as on PostgreSQL: each has its own set.
class SigningKeysTest : public ::testing::Test {
 protected:
  SigningKeysTest() : clock_(1800000000), master_(std::string(32, 'm')) {
    auto dir = test::TempDir::Create("coffer-signing-");
    EXPECT_TRUE(dir.ok());
    dir_ = std::move(dir).value();
  }

  StatusOr<std::unique_ptr<SigningKeySet>> OpenSet(const std::string& master,
                                                   const std::string& legacy_dir = "") {
    return SigningKeySet::Open(store_, SigningKeySet::SealingKeyFor(master),
                               legacy_dir.empty() ? dir_.Join("none") : legacy_dir, clock_);
  }

  std::unique_ptr<SigningKeySet> MustOpen() {
    auto set = OpenSet(master_);
    EXPECT_TRUE(set.ok()) << set.status().ToString();
    return set.ok() ? std::move(set).value() : nullptr;
  }

  std::string Stored() { return store_.GetMeta(SigningKeySet::kMetaKey).value().value(); }

  static std::vector<std::string> Kids(const SigningKeySet& set) {
    std::vector<std::string> kids;
    const Json jwks = set.Jwks();
    for (const auto& k : jwks["keys"]) {
      kids.push_back(k["kid"].get<std::string>());
    }
    return kids;
  }

  storage::MemoryStore store_;
  FakeClock clock_;
  std::string master_;
  test::TempDir dir_;
};

TEST_F(SigningKeysTest, TheStoredSetIsSealedAndServersOnOneStoreShareIt) {
  auto a = MustOpen();
  auto b = MustOpen();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(a->current_kid(), b->current_kid());
  std::string stored = Stored();
  EXPECT_EQ(stored.rfind("csk1.", 0), 0u);
  EXPECT_EQ(stored.find("PRIVATE KEY"), std::string::npos);
  EXPECT_EQ(stored.find("BEGIN"), std::string::npos);
}

TEST_F(SigningKeysTest, AnInstallationsKeyFilesAreAdoptedOnceAndNeverWritten) {
  auto key = crypto::RsaKey::Generate(2048);
  ASSERT_TRUE(key.ok());
  const std::string pem = (*key)->PrivatePem();
  const std::string kid = Base64UrlEncode(crypto::Sha256((*key)->Modulus()).substr(0, 15));
  ASSERT_TRUE(EnsurePrivateDirectory(dir_.Join("keys")).ok());
  ASSERT_TRUE(WriteFileAtomic(dir_.Join("keys/signing-current.pem"), pem, 0600).ok());
  auto a = OpenSet(master_, dir_.Join("keys"));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ((*a)->current_kid(), kid);
  ASSERT_TRUE((*a)->Rotate().ok());
  EXPECT_EQ(ReadFile(dir_.Join("keys/signing-current.pem")).value(), pem);
  EXPECT_FALSE(std::filesystem::exists(dir_.Join("keys/signing-previous.pem")));
  // The store's set wins over another server's files.
  auto other = crypto::RsaKey::Generate(2048);
  ASSERT_TRUE(EnsurePrivateDirectory(dir_.Join("other")).ok());
  ASSERT_TRUE(
      WriteFileAtomic(dir_.Join("other/signing-current.pem"), (*other)->PrivatePem(), 0600).ok());
  auto b = OpenSet(master_, dir_.Join("other"));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*b)->current_kid(), (*a)->current_kid());
  EXPECT_NE((*b)->Find(kid), nullptr);
}

TEST_F(SigningKeysTest, ACorruptKeyFileIsAClearErrorAndStoresNothing) {
  ASSERT_TRUE(EnsurePrivateDirectory(dir_.Join("keys")).ok());
  ASSERT_TRUE(WriteFileAtomic(dir_.Join("keys/signing-current.pem"), "not a key", 0600).ok());
  auto a = OpenSet(master_, dir_.Join("keys"));
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(a.status().message().find("signing-current.pem"), std::string::npos);
  EXPECT_FALSE(store_.GetMeta(SigningKeySet::kMetaKey).value().has_value());
}

TEST_F(SigningKeysTest, AnotherMasterKeyIsRefusedWithAClearError) {
  ASSERT_NE(MustOpen(), nullptr);
  auto foreign = OpenSet(std::string(32, 'x'));
  ASSERT_FALSE(foreign.ok());
  EXPECT_EQ(foreign.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(foreign.status().message().find("master key"), std::string::npos)
      << foreign.status().message();
}

TEST_F(SigningKeysTest, TamperedOrGarbledStoredSetsAreRefusedAndTheHeldSetIsKept) {
  auto a = MustOpen();
  ASSERT_NE(a, nullptr);
  const std::string kid = a->current_kid();
  const std::string good = Stored();
  std::string flipped = good;
  flipped[good.size() / 2] = flipped[good.size() / 2] == 'A' ? 'B' : 'A';
  const std::vector<std::string> bad = {
      flipped,
      good.substr(0, good.size() - 4),
      "csk1.",
      "csk1.!!!not base64!!!",
      "csk2." + good.substr(5),
      "",
      "-----BEGIN PRIVATE KEY-----",
      // Sealed right, but not a set: the JSON is checked too.
      "csk1." + Base64UrlEncode(crypto::AesGcmSeal(SigningKeySet::SealingKeyFor(master_),
                                                   "{\"current\":7}", "coffer-signing-keys-v1")),
      "csk1." + Base64UrlEncode(crypto::AesGcmSeal(SigningKeySet::SealingKeyFor(master_),
                                                   "{\"current\":\"not a pem\",\"previous\":[]}",
                                                   "coffer-signing-keys-v1")),
  };
  for (const std::string& value : bad) {
    SCOPED_TRACE(value.substr(0, 40));
    ASSERT_TRUE(store_.PutMeta(SigningKeySet::kMetaKey, value).ok());
    auto opened = OpenSet(master_);
    ASSERT_FALSE(opened.ok());
    EXPECT_EQ(opened.status().code(), StatusCode::kDataLoss);
    if (value.size() > 21) {
      EXPECT_EQ(opened.status().message().find(value.substr(5, 16)), std::string::npos);
    }
    Status reloaded = a->Reload();
    EXPECT_EQ(reloaded.code(), StatusCode::kDataLoss);
    EXPECT_EQ(a->current_kid(), kid);
    EXPECT_NE(a->Find(kid), nullptr);
  }
  ASSERT_TRUE(store_.PutMeta(SigningKeySet::kMetaKey, good).ok());
  EXPECT_TRUE(a->Reload().ok());
}

TEST_F(SigningKeysTest, ARotationElsewhereIsSeenOnReloadAndRetiredKeysAreReported) {
  auto a = MustOpen();
  auto b = MustOpen();
  int retired = 0;
  b->OnRetired([&] { ++retired; });
  const std::string first = a->current_kid();
  ASSERT_TRUE(a->Rotate().ok());
  const std::string second = a->current_kid();
  EXPECT_EQ(b->current_kid(), first);
  ASSERT_TRUE(b->Reload().ok());
  EXPECT_EQ(b->current_kid(), second);
  EXPECT_NE(b->Find(first), nullptr) << "the previous key still verifies";
  EXPECT_EQ(retired, 0);
  ASSERT_TRUE(a->Rotate().ok());
  ASSERT_TRUE(b->Reload().ok());
  EXPECT_EQ(b->Find(first), nullptr);
  EXPECT_EQ(retired, 1);
  EXPECT_EQ(Kids(*b), Kids(*a));
}

TEST_F(SigningKeysTest, ARotationThroughAStaleServerKeepsTheOtherServersNewKey) {
  auto a = MustOpen();
  auto b = MustOpen();
  ASSERT_TRUE(a->Rotate().ok());
  const std::string a_current = a->current_kid();
  ASSERT_TRUE(b->Rotate().ok());  // b had not heard of a's rotation
  EXPECT_NE(b->Find(a_current), nullptr);
  ASSERT_TRUE(a->Reload().ok());
  EXPECT_EQ(Kids(*a), Kids(*b));
}

TEST_F(SigningKeysTest, AnUnknownKidReloadsAtMostOncePerInterval) {
  auto a = MustOpen();
  auto b = MustOpen();
  ASSERT_TRUE(a->Rotate().ok());
  // A token of a's new key reaches b: it reloads and finds the key at once.
  EXPECT_NE(b->FindOrReload(a->current_kid()), nullptr);
  // Made-up kids: the first uses the reload of this interval...
  clock_.AdvanceMicros(SigningKeySet::kReloadIntervalMicros);
  EXPECT_EQ(b->FindOrReload("made-up-1"), nullptr);
  // ...so a rotation now is not read for any kid until the interval passed.
  ASSERT_TRUE(a->Rotate().ok());
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(b->FindOrReload("made-up-" + std::to_string(i)), nullptr);
  }
  EXPECT_EQ(b->FindOrReload(a->current_kid()), nullptr);
  clock_.AdvanceMicros(SigningKeySet::kReloadIntervalMicros - 1);
  EXPECT_EQ(b->FindOrReload(a->current_kid()), nullptr);
  clock_.AdvanceMicros(1);
  EXPECT_NE(b->FindOrReload(a->current_kid()), nullptr);
}

TEST(SigningKeysForTest, RotatesInMemory) {
  auto set = SigningKeySet::ForTest();
  const std::string first = set->current_kid();
  ASSERT_TRUE(set->Rotate().ok());
  EXPECT_NE(set->current_kid(), first);
  EXPECT_NE(set->Find(first), nullptr);
  EXPECT_EQ(set->FindOrReload("unknown"), nullptr);
}

}  // namespace
}  // namespace coffer::auth
