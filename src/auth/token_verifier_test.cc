#include "auth/token_verifier.h"

#include <gtest/gtest.h>

#include "common/encoding.h"
#include "common/json.h"
#include "crypto/primitives.h"

namespace coffer::auth {
namespace {

constexpr int64_t kNow = 1800000000;
const std::vector<std::string> kVaultAud = {"https://vault.localhost:8443"};

class TokenVerifierTest : public ::testing::Test {
 protected:
  TokenVerifierTest()
      : keys_(SigningKeySet::ForTest()),
        clock_(kNow),
        verifier_(*keys_, clock_, {"https://localhost:8443/t1/v2.0"}, "t1") {}

  Json Claims() const {
    return Json{{"aud", "https://vault.localhost:8443"},
                {"iss", "https://localhost:8443/t1/v2.0"},
                {"tid", "t1"},
                {"oid", "o1"},
                {"appid", "a1"},
                {"idtyp", "app"},
                {"nbf", kNow - 10},
                {"exp", kNow + 3600}};
  }

  static std::string Unsigned(const Json& header, const Json& claims) {
    return Base64UrlEncode(ToJson(header)) + "." + Base64UrlEncode(ToJson(claims));
  }

  std::unique_ptr<SigningKeySet> keys_;
  FakeClock clock_;
  TokenVerifier verifier_;
};

TEST_F(TokenVerifierTest, AcceptsAValidToken) {
  auto t = verifier_.Verify(keys_->Sign(Claims()), kVaultAud);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->object_id(), "o1");
  EXPECT_EQ(t->app_id(), "a1");
  EXPECT_EQ(t->identity_type(), "app");
}

TEST_F(TokenVerifierTest, RejectsEachBrokenClaim) {
  struct Case {
    const char* name;
    const char* claim;
    Json value;
    TokenRejection rejection;
  };
  using R = TokenRejection;
  for (const auto& c : {Case{"wrong audience", "aud", "https://localhost:8443", R::kWrongAudience},
                        Case{"wrong issuer", "iss", "https://evil/t1/v2.0", R::kInvalid},
                        Case{"wrong tenant", "tid", "t2", R::kInvalid},
                        Case{"expired", "exp", kNow - 61, R::kExpired},
                        Case{"not yet valid", "nbf", kNow + 61, R::kExpired},
                        Case{"nbf as string", "nbf", "1", R::kInvalid},
                        Case{"exp as string", "exp", "9999999999", R::kInvalid},
                        Case{"empty oid", "oid", "", R::kInvalid}}) {
    Json claims = Claims();
    claims[c.claim] = c.value;
    TokenRejection rejection = R::kWrongAudience;
    auto t = verifier_.Verify(keys_->Sign(claims), kVaultAud, &rejection);
    EXPECT_EQ(t.status().code(), StatusCode::kUnauthenticated) << c.name;
    EXPECT_EQ(rejection, c.rejection) << c.name;
  }
  Json no_exp = Claims();
  no_exp.erase("exp");
  EXPECT_FALSE(verifier_.Verify(keys_->Sign(no_exp), kVaultAud).ok());
}

TEST_F(TokenVerifierTest, ToleratesSmallClockSkew) {
  Json claims = Claims();
  claims["exp"] = kNow - 30;
  claims["nbf"] = kNow + 30;
  EXPECT_TRUE(verifier_.Verify(keys_->Sign(claims), kVaultAud).ok());
}

TEST_F(TokenVerifierTest, RejectsAlgorithmConfusionAndForgery) {
  std::string good = keys_->Sign(Claims());
  std::string sig = good.substr(good.rfind('.') + 1);
  Json none = {{"alg", "none"}, {"typ", "JWT"}};
  EXPECT_FALSE(verifier_.Verify(Unsigned(none, Claims()) + ".", kVaultAud).ok());
  EXPECT_FALSE(verifier_.Verify(Unsigned(none, Claims()) + "." + sig, kVaultAud).ok());
  Json hs = {{"alg", "HS256"}, {"kid", keys_->current_kid()}};
  std::string input = Unsigned(hs, Claims());
  EXPECT_FALSE(
      verifier_.Verify(input + "." + Base64UrlEncode(crypto::HmacSha256("k", input)), kVaultAud)
          .ok());
  // A valid signature over other claims.
  Json rs = {{"alg", "RS256"}, {"kid", keys_->current_kid()}};
  Json other = Claims();
  other["oid"] = "admin";
  EXPECT_FALSE(verifier_.Verify(Unsigned(rs, other) + "." + sig, kVaultAud).ok());
  // Unknown key, crit header, a different key set.
  Json unknown = {{"alg", "RS256"}, {"kid", "nope"}};
  EXPECT_FALSE(verifier_.Verify(Unsigned(unknown, Claims()) + "." + sig, kVaultAud).ok());
  Json crit = {{"alg", "RS256"}, {"kid", keys_->current_kid()}, {"crit", Json::array({"x"})}};
  EXPECT_FALSE(verifier_.Verify(Unsigned(crit, Claims()) + "." + sig, kVaultAud).ok());
  auto stranger = SigningKeySet::ForTest();
  EXPECT_FALSE(verifier_.Verify(stranger->Sign(Claims()), kVaultAud).ok());
}

TEST_F(TokenVerifierTest, RejectsMalformedText) {
  for (const char* bad : {"", "a", "a.b", "a.b.c.d", "..", "!!.!!.!!", "e30.e30.e30"}) {
    EXPECT_EQ(verifier_.Verify(bad, kVaultAud).status().code(), StatusCode::kUnauthenticated)
        << bad;
  }
  EXPECT_FALSE(verifier_.Verify(std::string(20000, 'a'), kVaultAud).ok());
}

TEST_F(TokenVerifierTest, PreviousKeyStillVerifiesAfterRotation) {
  std::string before = keys_->Sign(Claims());
  ASSERT_TRUE(keys_->Rotate().ok());
  EXPECT_TRUE(verifier_.Verify(before, kVaultAud).ok());
  EXPECT_TRUE(verifier_.Verify(keys_->Sign(Claims()), kVaultAud).ok());
  EXPECT_EQ(keys_->Jwks()["keys"].size(), 2u);
  ASSERT_TRUE(keys_->Rotate().ok());
  EXPECT_FALSE(verifier_.Verify(before, kVaultAud).ok());
}

}  // namespace
}  // namespace coffer::auth
