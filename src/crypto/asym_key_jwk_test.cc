// AsymKey's import of JWKs and its known-answer vectors; the vectors'
// origin is written in asym_key_test_vectors.h.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/encoding.h"
#include "crypto/asym_key.h"
#include "crypto/asym_key_test_vectors.h"
#include "crypto/openssl_ptr.h"
#include "crypto/primitives.h"

namespace coffer::crypto {
namespace {

namespace tv = testing;

Json RsaJwk() {
  return Json{{"kty", "RSA"},      {"n", tv::kRsaJwkN}, {"e", tv::kRsaJwkE},
              {"d", tv::kRsaJwkD}, {"p", tv::kRsaJwkP}, {"q", tv::kRsaJwkQ}};
}

Json P521Jwk() {
  return Json{{"kty", "EC"},
              {"crv", "P-521"},
              {"x", tv::kP521JwkX},
              {"y", tv::kP521JwkY},
              {"d", tv::kP521JwkD}};
}

std::string B64(std::string_view s) {
  return Base64UrlEncode(s);
}
std::string Unb64(std::string_view s) {
  return Base64UrlDecode(s).value_or("");
}

// The error refuses `jwk` with BadParameter and repeats none of its values.
void ExpectRefused(const Json& jwk, std::string_view mentions = "") {
  auto key = AsymKey::FromJwk(jwk);
  ASSERT_FALSE(key.ok()) << jwk.dump().substr(0, 120);
  EXPECT_EQ(key.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(key.status().reason(), "BadParameter");
  std::string message(key.status().message());
  EXPECT_NE(message.find(mentions), std::string::npos) << message;
  if (jwk.is_object()) {
    for (const auto& [name, value] : jwk.items()) {
      if (value.is_string() && value.get_ref<const std::string&>().size() >= 8 && name != "kty" &&
          name != "crv") {
        EXPECT_EQ(message.find(value.get_ref<const std::string&>().substr(0, 8)), std::string::npos)
            << name << " in " << message;
      }
    }
  }
}

// The CRT value `name` of the key in `der`, base64url.
std::string CrtParam(const SecureBytes& der, const char* name) {
  const unsigned char* in = der.data();
  EvpPkeyPtr pkey(d2i_AutoPrivateKey(nullptr, &in, static_cast<long>(der.size())));
  BIGNUM* bn = nullptr;
  if (!pkey || EVP_PKEY_get_bn_param(pkey.get(), name, &bn) != 1) {
    return "";
  }
  BignumPtr holder(bn);
  std::string out(static_cast<size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  return B64(out);
}

TEST(AsymKeyJwk, ImportsRsaWithLeadingZerosAndDerivesTheCrtValues) {
  auto key = AsymKey::FromJwk(RsaJwk());
  ASSERT_TRUE(key.ok()) << key.status().message();
  EXPECT_EQ((*key)->key_size(), 2048);
  const Json& pub = (*key)->PublicJwk();
  EXPECT_EQ(pub, Json({{"kty", "RSA"}, {"n", tv::kRsaMinimalN}, {"e", "AQAB"}}));
  SecureBytes der = (*key)->ToPrivateDer();
  EXPECT_EQ(CrtParam(der, OSSL_PKEY_PARAM_RSA_EXPONENT1), tv::kRsaDp);
  EXPECT_EQ(CrtParam(der, OSSL_PKEY_PARAM_RSA_EXPONENT2), tv::kRsaDq);
  EXPECT_EQ(CrtParam(der, OSSL_PKEY_PARAM_RSA_COEFFICIENT1), tv::kRsaQi);
  // The same key with its CRT values given, padded base64url, and the
  // -HSM spelling: the same material.
  Json full = RsaJwk();
  full["dp"] = tv::kRsaDp;
  full["dq"] = std::string(tv::kRsaDq);
  full["qi"] = tv::kRsaQi;
  full["kty"] = "RSA-HSM";
  full["kid"] = "https://ignored/keys/k/0";
  full["key_ops"] = Json::array({"sign"});
  std::string n = full["n"];
  full["n"] = n + std::string((4 - n.size() % 4) % 4, '=');
  auto again = AsymKey::FromJwk(full);
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ((*again)->PublicJwk(), pub);
}

TEST(AsymKeyJwk, Rsa15ImplicitRejectionMatchesOpenSsl) {
  auto key = AsymKey::FromJwk(RsaJwk());
  ASSERT_TRUE(key.ok());
  auto first = (*key)->Decrypt("RSA1_5", Unb64(tv::kRejectedCiphertext1));
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(B64(first->view()), tv::kSyntheticMessage1);
  auto second = (*key)->Decrypt("RSA1_5", Unb64(tv::kRejectedCiphertext2));
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(B64(second->view()), tv::kSyntheticMessage2);
  EXPECT_NE(first->size(), second->size());
  auto valid = (*key)->Decrypt("RSA1_5", Unb64(tv::kValidCiphertext));
  ASSERT_TRUE(valid.ok());
  EXPECT_EQ(valid->view(), "implicit rejection keeps this");
}

TEST(AsymKeyJwk, ImportsP521WithLeadingZeroCoordinates) {
  auto key = AsymKey::FromJwk(P521Jwk());
  ASSERT_TRUE(key.ok()) << key.status().message();
  EXPECT_EQ((*key)->curve(), EcCurve::kP521);
  const Json& pub = (*key)->PublicJwk();
  // x came without its leading zero byte and goes out at full length.
  EXPECT_EQ(StringMember(pub, "x"), tv::kP521X);
  EXPECT_EQ(StringMember(pub, "y"), tv::kP521JwkY);
  EXPECT_EQ(Unb64(StringMember(pub, "x")).size(), 66u);
  EXPECT_EQ(Unb64(StringMember(pub, "x"))[0], '\0');
  EXPECT_EQ(pub.size(), 4u);
  std::string digest = RandomBytes(64);
  EXPECT_TRUE((*key)->Verify("ES512", digest, (*key)->Sign("ES512", digest).value()).value());
  Json full = P521Jwk();
  full["x"] = tv::kP521X;
  ASSERT_TRUE(AsymKey::FromJwk(full).ok());
}

TEST(AsymKeyJwk, RefusesPublicOnlyJwks) {
  Json rsa = RsaJwk();
  rsa.erase("d");
  ExpectRefused(rsa, "private");
  Json ec = P521Jwk();
  ec.erase("d");
  ExpectRefused(ec, "private");
  rsa = RsaJwk();
  rsa.erase("p");
  ExpectRefused(rsa, "'p'");
}

TEST(AsymKeyJwk, RefusesMismatchedRsaParts) {
  auto other = AsymKey::GenerateRsa(2048).value();
  SecureBytes der = other->ToPrivateDer();
  std::string other_p = CrtParam(der, OSSL_PKEY_PARAM_RSA_FACTOR1);
  std::string other_d = CrtParam(der, OSSL_PKEY_PARAM_RSA_D);
  Json jwk = RsaJwk();
  jwk["d"] = other_d;
  ExpectRefused(jwk, "inconsistent");
  jwk = RsaJwk();
  jwk["p"] = other_p;
  ExpectRefused(jwk, "inconsistent");
  jwk = RsaJwk();
  jwk["n"] = StringMember(other->PublicJwk(), "n");
  ExpectRefused(jwk, "inconsistent");
  jwk = RsaJwk();
  jwk["e"] = "AQAD";  // 65539: d no longer inverts it
  ExpectRefused(jwk, "inconsistent");
  jwk = RsaJwk();
  jwk["dp"] = tv::kRsaDq;
  ExpectRefused(jwk, "'dp'");
  jwk = RsaJwk();
  jwk["qi"] = tv::kRsaDp;
  ExpectRefused(jwk, "'qi'");
  jwk = RsaJwk();
  jwk["e"] = "Ag";  // even
  ExpectRefused(jwk, "'e'");
  jwk["e"] = "AQ";  // 1
  ExpectRefused(jwk, "'e'");
}

TEST(AsymKeyJwk, RefusesMismatchedEcParts) {
  auto other = AsymKey::GenerateEc(EcCurve::kP521).value();
  Json jwk = P521Jwk();
  jwk["x"] = StringMember(other->PublicJwk(), "x");
  jwk["y"] = StringMember(other->PublicJwk(), "y");
  ExpectRefused(jwk, "d*G");  // a valid point, not this d's
  jwk = P521Jwk();
  std::string y = Unb64(tv::kP521JwkY);
  y.back() ^= 1;
  jwk["y"] = B64(y);
  ExpectRefused(jwk, "curve");  // not on the curve
  jwk = P521Jwk();
  jwk["crv"] = "P-384";
  ExpectRefused(jwk, "P-384");  // coordinates too long for the curve
  jwk["crv"] = "P-192";
  ExpectRefused(jwk, "not supported");
  jwk.erase("crv");
  ExpectRefused(jwk, "'crv'");
}

TEST(AsymKeyJwk, RefusesOtherRsaSizes) {
  // A 1024-bit key made by OpenSSL, offered as a JWK.
  EvpPkeyPtr small(EVP_RSA_gen(1024));
  ASSERT_TRUE(small);
  Json jwk{{"kty", "RSA"}};
  for (const auto& [member, param] :
       {std::pair{"n", OSSL_PKEY_PARAM_RSA_N}, std::pair{"e", OSSL_PKEY_PARAM_RSA_E},
        std::pair{"d", OSSL_PKEY_PARAM_RSA_D}, std::pair{"p", OSSL_PKEY_PARAM_RSA_FACTOR1},
        std::pair{"q", OSSL_PKEY_PARAM_RSA_FACTOR2}}) {
    BIGNUM* bn = nullptr;
    ASSERT_EQ(EVP_PKEY_get_bn_param(small.get(), param, &bn), 1);
    BignumPtr holder(bn);
    std::string bytes(static_cast<size_t>(BN_num_bytes(bn)), '\0');
    BN_bn2bin(bn, reinterpret_cast<unsigned char*>(bytes.data()));
    jwk[member] = B64(bytes);
  }
  ExpectRefused(jwk, "1024 bits");
}

TEST(AsymKeyJwk, HostileInputGetsClearErrors) {
  ExpectRefused(Json(), "JSON object");
  ExpectRefused(Json::array({1, 2}), "JSON object");
  ExpectRefused(Json("RSA"), "JSON object");
  ExpectRefused(Json::object(), "'kty'");
  ExpectRefused(Json{{"kty", "oct"}, {"k", "AAAA"}}, "'oct'");
  ExpectRefused(Json{{"kty", 7}}, "'kty'");
  std::string huge(1 << 20, 'A');
  for (const char* member : {"n", "e", "d", "p", "q", "dp"}) {
    SCOPED_TRACE(member);
    Json jwk = RsaJwk();
    jwk[member] = huge;
    ExpectRefused(jwk, "too long");
    jwk[member] = "%%%%invalid%%%%";
    ExpectRefused(jwk, "base64url");
    jwk[member] = "";
    ExpectRefused(jwk, "base64url");
    jwk[member] = 12345;
    ExpectRefused(jwk, "not a string");
  }
  for (const char* member : {"x", "y", "d"}) {
    SCOPED_TRACE(member);
    Json jwk = P521Jwk();
    jwk[member] = huge;
    ExpectRefused(jwk, "too long");
    jwk[member] = "@@@@";
    ExpectRefused(jwk, "base64url");
    jwk[member] = Json::array();
    ExpectRefused(jwk, "not a string");
  }
  EXPECT_FALSE(AsymKey::FromPrivatePem("").ok());
  EXPECT_FALSE(AsymKey::FromPrivatePem(huge).ok());
  EXPECT_EQ(AsymKey::FromPrivatePem("-----BEGIN PRIVATE KEY-----\n!!\n-----END PRIVATE KEY-----\n")
                .status()
                .reason(),
            "BadParameter");
}

TEST(AsymKeyJwk, PublicKeyOfAJwkIsTheKeysOwnPublicKey) {
  auto p521 = AsymKey::FromJwk(P521Jwk()).value();
  auto rsa = AsymKey::FromJwk(RsaJwk()).value();
  auto p256k = AsymKey::GenerateEc(EcCurve::kP256K).value();
  for (const AsymKey* key : std::vector<const AsymKey*>{p521.get(), rsa.get(), p256k.get()}) {
    SCOPED_TRACE(key->PublicJwk().dump());
    EXPECT_EQ(PublicKeyPemFromJwk(key->PublicJwk()).value(), key->PublicKeyPem());
    EXPECT_EQ(PublicKeyDerFromJwk(key->PublicJwk()).value(), key->PublicKeyDer());
  }
  // A KeyBundle's key: kid, key_ops and an -HSM kty are ignored; so are
  // private members, and x may come without its leading zero byte.
  Json bundle_key = P521Jwk();
  bundle_key["kty"] = "EC-HSM";
  bundle_key["kid"] = "https://v.vault.localhost/keys/k/1";
  bundle_key["key_ops"] = Json::array({"sign", "verify"});
  EXPECT_EQ(PublicKeyPemFromJwk(bundle_key).value(), p521->PublicKeyPem());
  Json rsa_jwk = RsaJwk();  // n with a leading zero byte
  rsa_jwk.erase("d");
  EXPECT_EQ(PublicKeyDerFromJwk(rsa_jwk).value(), rsa->PublicKeyDer());
}

TEST(AsymKeyJwk, PublicKeyOfAJwkRefusesBadKeys) {
  Json off_curve = P521Jwk();
  std::string y = Unb64(tv::kP521JwkY);
  y.back() ^= 1;
  off_curve["y"] = B64(y);
  ExpectRefused(off_curve, "curve");
  EXPECT_EQ(PublicKeyPemFromJwk(off_curve).status().reason(), "BadParameter");
  for (Json bad : {Json(), Json::object(), Json{{"kty", "oct"}, {"k", "AAAA"}},
                   Json{{"kty", "RSA"}, {"n", tv::kRsaJwkN}},
                   Json{{"kty", "RSA"}, {"n", tv::kRsaJwkN}, {"e", "Ag"}},
                   Json{{"kty", "RSA"}, {"n", "AQAB"}, {"e", "AQAB"}},
                   Json{{"kty", "EC"}, {"crv", "P-256"}, {"x", tv::kP521X}, {"y", tv::kP521JwkY}},
                   Json{{"kty", "EC"}, {"crv", "P-256"}, {"x", "%%%"}, {"y", "AA"}},
                   Json{{"kty", "EC"}, {"x", "AA"}, {"y", "AA"}}, off_curve}) {
    SCOPED_TRACE(bad.dump().substr(0, 80));
    auto der = PublicKeyDerFromJwk(bad);
    EXPECT_EQ(der.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(der.status().reason(), "BadParameter");
  }
  EXPECT_EQ(
      PublicKeyDerFromJwk(Json{{"kty", "RSA"}, {"n", std::string(1 << 20, 'A')}, {"e", "AQAB"}})
          .status()
          .reason(),
      "BadParameter");
}

// `text` (base64url) as the minimal integer: leading zero bytes dropped.
std::string Minimal(std::string_view text) {
  std::string bytes = Unb64(text);
  bytes.erase(0, bytes.find_first_not_of('\0'));
  return B64(bytes);
}

TEST(AsymKeyJwk, PrivateJwkOfKnownKeysHasEveryMemberInItsCanonicalForm) {
  auto rsa = AsymKey::FromJwk(RsaJwk());
  ASSERT_TRUE(rsa.ok()) << rsa.status().message();
  EXPECT_EQ((*rsa)->PrivateJwk(), Json({{"kty", "RSA"},
                                        {"n", tv::kRsaMinimalN},
                                        {"e", "AQAB"},
                                        {"d", Minimal(tv::kRsaJwkD)},
                                        {"p", Minimal(tv::kRsaJwkP)},
                                        {"q", Minimal(tv::kRsaJwkQ)},
                                        {"dp", tv::kRsaDp},
                                        {"dq", tv::kRsaDq},
                                        {"qi", tv::kRsaQi}}));
  auto ec = AsymKey::FromJwk(P521Jwk());
  ASSERT_TRUE(ec.ok()) << ec.status().message();
  // Every EC member at the curve's full length, leading zeros kept.
  EXPECT_EQ((*ec)->PrivateJwk(), Json({{"kty", "EC"},
                                       {"crv", "P-521"},
                                       {"x", tv::kP521X},
                                       {"y", tv::kP521JwkY},
                                       {"d", tv::kP521JwkD}}));
}

TEST(AsymKeyJwk, PrivateJwkImportsBackToTheSameKeyForEveryTypeAndCurve) {
  std::vector<std::unique_ptr<AsymKey>> keys;
  keys.push_back(AsymKey::GenerateRsa(2048).value());
  for (EcCurve curve : {EcCurve::kP256, EcCurve::kP384, EcCurve::kP521, EcCurve::kP256K}) {
    keys.push_back(AsymKey::GenerateEc(curve).value());
  }
  for (const auto& key : keys) {
    SCOPED_TRACE(std::string(key->kty()) + " " + StringMember(key->PublicJwk(), "crv"));
    Json jwk = key->PrivateJwk();
    for (const auto& [name, value] : key->PublicJwk().items()) {
      EXPECT_EQ(jwk[name], value) << name;
    }
    if (key->curve()) {
      EXPECT_EQ(Unb64(StringMember(jwk, "d")).size(), Unb64(StringMember(jwk, "x")).size());
    }
    auto back = AsymKey::FromJwk(jwk);
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_EQ((*back)->PrivateJwk(), jwk);
    // The imported key signs what the original verifies.
    auto [alg, digest_size] = key->type() == AsymKeyType::kRsa  ? std::pair{"RS256", 32}
                              : key->curve() == EcCurve::kP256K ? std::pair{"ES256K", 32}
                              : key->curve() == EcCurve::kP256  ? std::pair{"ES256", 32}
                              : key->curve() == EcCurve::kP384  ? std::pair{"ES384", 48}
                                                                : std::pair{"ES512", 64};
    std::string digest = RandomBytes(digest_size);
    EXPECT_TRUE(key->Verify(alg, digest, (*back)->Sign(alg, digest).value()).value());
  }
}

}  // namespace
}  // namespace coffer::crypto
