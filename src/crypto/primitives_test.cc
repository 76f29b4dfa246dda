#include "crypto/primitives.h"

#include <gtest/gtest.h>

#include "common/encoding.h"

namespace coffer::crypto {
namespace {

TEST(Sha256, KnownAnswer) {
  EXPECT_EQ(HexEncode(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(HmacSha256, Rfc4231Case2) {
  EXPECT_EQ(HexEncode(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Pbkdf2, Rfc7914Vector) {
  EXPECT_EQ(HexEncode(Pbkdf2Sha256("passwd", "salt", 1, 16)), "55ac046e56e3089fec1691c22544b605");
}

TEST(AesGcm, RoundTripsWithMatchingAad) {
  std::string key = RandomBytes(kAes256KeySize);
  std::string sealed = AesGcmSeal(key, "hunter2", "vault|name|v1");
  EXPECT_EQ(sealed.find("hunter2"), std::string::npos);
  auto opened = AesGcmOpen(key, sealed, "vault|name|v1");
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(*opened, "hunter2");
}

TEST(AesGcm, WrongAadKeyOrTamperingFails) {
  std::string key = RandomBytes(kAes256KeySize);
  std::string sealed = AesGcmSeal(key, "hunter2", "vault|a|v1");
  EXPECT_EQ(AesGcmOpen(key, sealed, "vault|b|v1").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(AesGcmOpen(RandomBytes(32), sealed, "vault|a|v1").status().code(),
            StatusCode::kDataLoss);
  for (size_t i = 0; i < sealed.size(); ++i) {
    std::string bad = sealed;
    bad[i] = static_cast<char>(bad[i] ^ 1);
    EXPECT_FALSE(AesGcmOpen(key, bad, "vault|a|v1").ok()) << "byte " << i;
  }
  EXPECT_EQ(AesGcmOpen(key, "short", "").status().code(), StatusCode::kInvalidArgument);
}

TEST(AesGcm, NoncesDiffer) {
  std::string key = RandomBytes(kAes256KeySize);
  EXPECT_NE(AesGcmSeal(key, "x", ""), AesGcmSeal(key, "x", ""));
}

TEST(RandomUuid, HasVersion4Shape) {
  std::string u = RandomUuid();
  ASSERT_EQ(u.size(), 36u);
  EXPECT_EQ(u[14], '4');
  EXPECT_EQ(u[8], '-');
}

TEST(ConstantTimeEquals, ComparesContentAndLength) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));
}

}  // namespace
}  // namespace coffer::crypto
