#include "keyvault/names.h"

#include <gtest/gtest.h>

namespace coffer::keyvault {
namespace {

TEST(Names, ObjectNames) {
  EXPECT_TRUE(ValidateObjectName("db-Pass-1").ok());
  EXPECT_TRUE(ValidateObjectName(std::string(127, 'a')).ok());
  for (const std::string& bad : {std::string(), std::string(128, 'a'), std::string("a_b"),
                                 std::string("a.b"), std::string("a/b"), std::string("ä")}) {
    auto s = ValidateObjectName(bad);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(s.reason(), "BadParameter");
  }
}

TEST(Names, MessagesDoNotEchoControlCharacters) {
  auto s = ValidateObjectName("a\nb\x01");
  EXPECT_EQ(std::string(s.message()).find('\n'), std::string::npos);
}

TEST(Names, Versions) {
  EXPECT_TRUE(ValidateVersion("0123456789abcdef0123456789ABCDEF").ok());
  EXPECT_FALSE(ValidateVersion("0123456789abcdef0123456789abcde").ok());
  EXPECT_FALSE(ValidateVersion("0123456789abcdef0123456789abcdeg").ok());
}

TEST(Names, VaultNames) {
  for (const char* ok : {"dev", "my-vault-1", "Abc", "a1b"}) {
    EXPECT_TRUE(ValidateVaultName(ok).ok()) << ok;
  }
  for (const char* bad : {"ab", "1ab", "-ab", "ab-", "a--b", "a_b", "abcdefghijklmnopqrstuvwxy"}) {
    EXPECT_EQ(ValidateVaultName(bad).reason(), "VaultNameNotValid") << bad;
  }
}

}  // namespace
}  // namespace coffer::keyvault
