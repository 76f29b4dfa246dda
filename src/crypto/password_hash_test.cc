#include "crypto/password_hash.h"

#include <string>

#include <gtest/gtest.h>

namespace coffer::crypto {
namespace {

TEST(PasswordHash, TheRightPasswordMatchesAndNoOtherDoes) {
  auto hash = HashPassword("correct horse battery staple", LeastCost());
  ASSERT_TRUE(hash.ok()) << hash.status().ToString();
  EXPECT_EQ(hash->rfind("$argon2id$v=19$m=8,t=1,p=1$", 0), 0u) << *hash;
  EXPECT_EQ(VerifyPassword(*hash, "correct horse battery staple").value(), true);
  for (const char* wrong : {"correct horse battery stapl", "Correct horse battery staple",
                            "correct horse battery staple ", "x"}) {
    EXPECT_EQ(VerifyPassword(*hash, wrong).value(), false) << wrong;
  }
  EXPECT_EQ(VerifyPassword(*hash, std::string(kMaxPasswordBytes + 1, 'c')).value(), false);
  EXPECT_EQ(hash->find("correct"), std::string::npos) << "the hash holds no part of the password";
}

TEST(PasswordHash, EachHashHasItsOwnSalt) {
  auto a = HashPassword("same password", LeastCost());
  auto b = HashPassword("same password", LeastCost());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_TRUE(VerifyPassword(*a, "same password").value());
  EXPECT_TRUE(VerifyPassword(*b, "same password").value());
}

TEST(PasswordHash, PasswordsOfEveryByteUpToTheLimitAreHashed) {
  std::string every;
  for (int c = 1; c < 256; ++c) {
    every.push_back(static_cast<char>(c));
  }
  every.push_back('\0');  // a NUL inside is part of the password, not its end
  auto hash = HashPassword(every, LeastCost());
  ASSERT_TRUE(hash.ok());
  EXPECT_TRUE(VerifyPassword(*hash, every).value());
  EXPECT_FALSE(VerifyPassword(*hash, every.substr(0, every.size() - 1)).value());
  EXPECT_EQ(HashPassword("", LeastCost()).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(HashPassword(std::string(kMaxPasswordBytes + 1, 'p'), LeastCost()).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(PasswordHash, WhatIsNotAnArgon2idHashMatchesNothing) {
  for (std::string_view bad :
       {std::string_view(""), std::string_view("password"),
        std::string_view("$argon2i$v=19$m=8,t=1,p=1$c29tZXNhbHQ$aGFzaA"),
        std::string_view("$2b$12$abcdefghijklmnopqrstuu"), std::string_view("$argon2id$\0x", 12)}) {
    auto r = VerifyPassword(bad, "password");
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  // The right prefix with a broken body: no match, no crash.
  for (const char* broken :
       {"$argon2id$", "$argon2id$v=19$m=8,t=1,p=1$", "$argon2id$v=19$m=8,t=1,p=1$!!$!!",
        "$argon2id$v=19$m=99999999999,t=1,p=1$c29tZXNhbHQ$aGFzaA"}) {
    EXPECT_EQ(VerifyPassword(broken, "password").value(), false) << broken;
  }
  EXPECT_EQ(VerifyPassword(std::string(200, 'a').insert(0, "$argon2id$"), "p").status().code(),
            StatusCode::kInvalidArgument)
      << "longer than any hash libsodium makes";
}

TEST(PasswordHash, AHashOfAnotherCostIsMadeAgain) {
  auto least = HashPassword("pw", LeastCost());
  ASSERT_TRUE(least.ok());
  EXPECT_TRUE(NeedsRehash(*least));
  EXPECT_FALSE(NeedsRehash(*least, LeastCost()));
  EXPECT_TRUE(NeedsRehash("not a hash"));
  auto interactive = HashPassword("pw");
  ASSERT_TRUE(interactive.ok());
  EXPECT_FALSE(NeedsRehash(*interactive));
  EXPECT_EQ(interactive->rfind("$argon2id$v=19$m=65536,t=2,p=1$", 0), 0u) << *interactive;
}

}  // namespace
}  // namespace coffer::crypto
