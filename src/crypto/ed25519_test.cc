#include "crypto/ed25519.h"

#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "common/encoding.h"
#include "common/files.h"
#include "common/testing/temp_dir.h"

namespace coffer::crypto {
namespace {

// RFC 8032 §7.1, TEST 2: a one-byte message.
constexpr char kRfcPrivatePem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIEzNCJso/5banbbDRuwRTg9bijGfNaumJNqM9u1PuKb7\n"
    "-----END PRIVATE KEY-----\n";

std::string Hex(std::string_view h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) {
    out += static_cast<char>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16));
  }
  return out;
}

TEST(Ed25519, Rfc8032KnownAnswer) {
  auto key = Ed25519Key::FromPrivatePem(kRfcPrivatePem);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(HexEncode((*key)->PublicRaw()),
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
  std::string sig = (*key)->Sign(Hex("72"));
  EXPECT_EQ(HexEncode(sig),
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
            "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00");
  EXPECT_TRUE((*key)->Verify(Hex("72"), sig));
}

TEST(Ed25519, SignVerifyAndRejectTampering) {
  auto key = Ed25519Key::Generate();
  ASSERT_TRUE(key.ok());
  std::string sig = (*key)->Sign("coffer-audit-checkpoint-v1|7|abc|1");
  ASSERT_EQ(sig.size(), kEd25519SignatureSize);
  EXPECT_TRUE((*key)->Verify("coffer-audit-checkpoint-v1|7|abc|1", sig));
  EXPECT_FALSE((*key)->Verify("coffer-audit-checkpoint-v1|8|abc|1", sig));
  std::string bad = sig;
  bad[10] = static_cast<char>(bad[10] ^ 1);
  EXPECT_FALSE((*key)->Verify("coffer-audit-checkpoint-v1|7|abc|1", bad));
  EXPECT_FALSE((*key)->Verify("coffer-audit-checkpoint-v1|7|abc|1", sig.substr(1)));
  auto other = Ed25519Key::Generate();
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE((*other)->Verify("coffer-audit-checkpoint-v1|7|abc|1", sig));
}

TEST(Ed25519, PemRoundTrips) {
  auto key = Ed25519Key::Generate();
  ASSERT_TRUE(key.ok());
  auto priv = Ed25519Key::FromPrivatePem((*key)->PrivatePem());
  ASSERT_TRUE(priv.ok());
  EXPECT_TRUE((*priv)->has_private());
  EXPECT_EQ((*priv)->PublicRaw(), (*key)->PublicRaw());
  auto pub = Ed25519Key::FromPublicPem((*key)->PublicPem());
  ASSERT_TRUE(pub.ok());
  EXPECT_FALSE((*pub)->has_private());
  EXPECT_TRUE((*pub)->Verify("m", (*key)->Sign("m")));
  auto raw = Ed25519Key::FromPublicRaw((*key)->PublicRaw());
  ASSERT_TRUE(raw.ok());
  EXPECT_TRUE((*raw)->Verify("m", (*key)->Sign("m")));
}

TEST(Ed25519, RejectsOtherKeysAndGarbage) {
  EXPECT_EQ(Ed25519Key::FromPrivatePem("nonsense").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Ed25519Key::FromPublicPem("nonsense").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Ed25519Key::FromPublicRaw("short").status().code(), StatusCode::kInvalidArgument);
  // A P-256 key in PKCS#8 form is a private key, just not ours.
  constexpr char kEcPem[] =
      "-----BEGIN PRIVATE KEY-----\n"
      "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgYi6WLHnoJhSGykXD\n"
      "DbIle2mwn9ftW8oRMyhOKVWsfx+hRANCAAQU1S7WZRxXoTIV0iUx3U29droLy8HB\n"
      "xiZZgoEbp0QmQRblRgRy+KI15cKNS0av143Wfqg5q7Sa4kDqQqU8UcfN\n"
      "-----END PRIVATE KEY-----\n";
  EXPECT_EQ(Ed25519Key::FromPrivatePem(kEcPem).status().code(), StatusCode::kInvalidArgument);
}

TEST(Ed25519, FilesHaveTheirModesAndLoadBack) {
  auto tmp = test::TempDir::Create("coffer-ed25519-test-");
  ASSERT_TRUE(tmp.ok()) << tmp.status().ToString();
  std::string dir = tmp->Join("keys");
  ASSERT_TRUE(EnsurePrivateDirectory(dir).ok());
  auto key = Ed25519Key::Generate();
  ASSERT_TRUE(key.ok());
  ASSERT_TRUE(SaveEd25519PrivateKey(**key, dir + "/k.key").ok());
  ASSERT_TRUE(SaveEd25519PublicKey(**key, dir + "/k.pub").ok());
  EXPECT_EQ(FileMode(dir + "/k.key"), 0600);
  EXPECT_EQ(FileMode(dir + "/k.pub"), 0644);

  auto priv = LoadEd25519PrivateKey(dir + "/k.key");
  ASSERT_TRUE(priv.ok()) << priv.status().ToString();
  auto pub = LoadEd25519PublicKey(dir + "/k.pub");
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();
  EXPECT_TRUE((*pub)->Verify("m", (*priv)->Sign("m")));
  auto pub_from_private = LoadEd25519PublicKey(dir + "/k.key");
  ASSERT_TRUE(pub_from_private.ok());
  EXPECT_FALSE((*pub_from_private)->has_private());

  EXPECT_EQ(LoadEd25519PrivateKey(dir + "/absent.key").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(LoadEd25519PublicKey(dir + "/absent.pub").status().code(), StatusCode::kNotFound);
  std::filesystem::permissions(dir + "/k.key", std::filesystem::perms(0644));
  EXPECT_EQ(LoadEd25519PrivateKey(dir + "/k.key").status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace coffer::crypto
