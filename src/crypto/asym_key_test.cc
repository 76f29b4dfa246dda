#include "crypto/asym_key.h"

#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/encoding.h"
#include "crypto/primitives.h"

namespace coffer::crypto {
namespace {

std::unique_ptr<AsymKey> MustGenerate(std::string_view kty, int size, std::string_view crv) {
  auto key = AsymKey::Generate(kty, size, crv);
  EXPECT_TRUE(key.ok()) << key.status().message();
  return key.ok() ? std::move(key).value() : nullptr;
}

void ExpectBadParameter(const Status& status) {
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.message();
  EXPECT_EQ(status.reason(), "BadParameter") << status.message();
}

size_t DecodedSize(const Json& jwk, const char* member) {
  auto bytes = Base64UrlDecode(StringMember(jwk, member));
  return bytes ? bytes->size() : 0;
}

// One RSA-2048 key for the tests that need any RSA key (generation is the
// slow part under the sanitizers).
const AsymKey& Rsa2048() {
  static const AsymKey* key = MustGenerate("RSA", 0, "").release();
  return *key;
}

TEST(AsymKey, GeneratesEveryRsaSizeWithExponent65537) {
  for (int bits : {2048, 3072, 4096}) {
    auto key = MustGenerate("RSA", bits, "");
    ASSERT_NE(key, nullptr);
    EXPECT_EQ(key->type(), AsymKeyType::kRsa);
    EXPECT_EQ(key->kty(), "RSA");
    EXPECT_EQ(key->key_size(), bits);
    EXPECT_FALSE(key->curve().has_value());
    const Json& jwk = key->PublicJwk();
    EXPECT_EQ(jwk.size(), 3u) << jwk.dump();
    EXPECT_EQ(StringMember(jwk, "kty"), "RSA");
    EXPECT_EQ(StringMember(jwk, "e"), "AQAB");
    // Minimal big-endian: exactly the modulus length, no 0x00 sign byte.
    EXPECT_EQ(DecodedSize(jwk, "n"), static_cast<size_t>(bits / 8));
  }
  EXPECT_EQ(Rsa2048().key_size(), 2048);  // key_size 0 means 2048
}

TEST(AsymKey, GeneratesEveryCurveWithFixedLengthCoordinates) {
  struct Case {
    const char* crv;
    EcCurve curve;
    size_t coordinate;
  };
  for (const Case& c : {Case{"P-256", EcCurve::kP256, 32}, Case{"P-384", EcCurve::kP384, 48},
                        Case{"P-521", EcCurve::kP521, 66}, Case{"P-256K", EcCurve::kP256K, 32}}) {
    SCOPED_TRACE(c.crv);
    auto key = MustGenerate("EC", 0, c.crv);
    ASSERT_NE(key, nullptr);
    EXPECT_EQ(key->kty(), "EC");
    EXPECT_EQ(key->key_size(), 0);
    EXPECT_EQ(key->curve(), c.curve);
    const Json& jwk = key->PublicJwk();
    EXPECT_EQ(jwk.size(), 4u) << jwk.dump();
    EXPECT_EQ(StringMember(jwk, "crv"), c.crv);
    EXPECT_EQ(DecodedSize(jwk, "x"), c.coordinate);
    EXPECT_EQ(DecodedSize(jwk, "y"), c.coordinate);
  }
  auto fallback = MustGenerate("EC", 0, "");
  EXPECT_EQ(fallback->curve(), EcCurve::kP256);
  EXPECT_EQ(ParseEcCurve("SECP256K1").value(), EcCurve::kP256K);
  EXPECT_EQ(EcCurveName(EcCurve::kP256K), "P-256K");
}

TEST(AsymKey, RefusesUnsupportedTypesSizesAndCurves) {
  ExpectBadParameter(AsymKey::GenerateRsa(1024).status());
  ExpectBadParameter(AsymKey::GenerateRsa(2047).status());
  ExpectBadParameter(AsymKey::GenerateRsa(8192).status());
  ExpectBadParameter(AsymKey::Generate("RSA", 1024, "").status());
  ExpectBadParameter(AsymKey::Generate("RSA", 2048, "P-256").status());
  ExpectBadParameter(AsymKey::Generate("EC", 256, "P-256").status());
  ExpectBadParameter(AsymKey::Generate("EC", 0, "P-192").status());
  ExpectBadParameter(AsymKey::Generate("EC", 0, "p-256").status());
  ExpectBadParameter(AsymKey::Generate("oct", 256, "").status());
  ExpectBadParameter(AsymKey::Generate("RSA-HSM", 2048, "").status());
  ExpectBadParameter(AsymKey::Generate("", 0, "").status());
}

TEST(AsymKey, EveryEncryptionAlgorithmRoundTripsUpToItsLimit) {
  const AsymKey& key = Rsa2048();
  struct Case {
    const char* alg;
    size_t max;
  };
  for (const Case& c :
       {Case{"RSA-OAEP", 256 - 42}, Case{"RSA-OAEP-256", 256 - 66}, Case{"RSA1_5", 256 - 11}}) {
    SCOPED_TRACE(c.alg);
    for (size_t len : {size_t{0}, size_t{1}, size_t{32}, c.max}) {
      std::string plaintext = RandomBytes(len);
      auto ciphertext = key.Encrypt(c.alg, plaintext);
      ASSERT_TRUE(ciphertext.ok()) << ciphertext.status().message();
      EXPECT_EQ(ciphertext->size(), 256u);
      auto decrypted = key.Decrypt(c.alg, *ciphertext);
      ASSERT_TRUE(decrypted.ok()) << decrypted.status().message();
      EXPECT_EQ(decrypted->view(), plaintext);
    }
    auto too_long = key.Encrypt(c.alg, std::string(c.max + 1, 'x'));
    ExpectBadParameter(too_long.status());
    EXPECT_NE(too_long.status().message().find(std::to_string(c.max)), std::string::npos);
  }
}

TEST(AsymKey, EverySignatureAlgorithmRoundTrips) {
  struct Case {
    const char* alg;
    const char* kty;
    const char* crv;
    size_t digest;
    size_t signature;
  };
  const Case cases[] = {
      {"RS256", "RSA", "", 32, 256},     {"RS384", "RSA", "", 48, 256},
      {"RS512", "RSA", "", 64, 256},     {"PS256", "RSA", "", 32, 256},
      {"PS384", "RSA", "", 48, 256},     {"PS512", "RSA", "", 64, 256},
      {"ES256", "EC", "P-256", 32, 64},  {"ES384", "EC", "P-384", 48, 96},
      {"ES512", "EC", "P-521", 64, 132}, {"ES256K", "EC", "P-256K", 32, 64},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.alg);
    std::unique_ptr<AsymKey> ec;
    if (std::string_view(c.kty) == "EC") {
      ec = MustGenerate("EC", 0, c.crv);
    }
    const AsymKey& key = ec ? *ec : Rsa2048();
    std::string digest = RandomBytes(c.digest);
    auto signature = key.Sign(c.alg, digest);
    ASSERT_TRUE(signature.ok()) << signature.status().message();
    EXPECT_EQ(signature->size(), c.signature);
    EXPECT_TRUE(key.Verify(c.alg, digest, *signature).value());
    std::string other = digest;
    other[0] ^= 1;
    EXPECT_FALSE(key.Verify(c.alg, other, *signature).value());
    std::string tampered = *signature;
    tampered[tampered.size() / 2] ^= 0x40;
    EXPECT_FALSE(key.Verify(c.alg, digest, tampered).value());
    // Wrong lengths and shapes are `false`, not errors.
    EXPECT_FALSE(key.Verify(c.alg, digest, "").value());
    EXPECT_FALSE(key.Verify(c.alg, digest, signature->substr(1)).value());
    EXPECT_FALSE(key.Verify(c.alg, digest, *signature + '\0').value());
    EXPECT_FALSE(key.Verify(c.alg, digest, std::string(c.signature, '\xff')).value());
    EXPECT_FALSE(key.Verify(c.alg, digest, std::string(c.signature, '\0')).value());
    EXPECT_FALSE(key.Verify(c.alg, digest, std::string(1 << 20, 's')).value());
  }
}

TEST(AsymKey, PssSignaturesUseTheHashLengthAsSalt) {
  // With salt length = hash length, a PSS signature of a 2048-bit key
  // verifies only when the verifier expects that salt length; we check the
  // fact through OpenSSL's strict verification in asym_key_interop_test.cc
  // (rsa_pss_saltlen:digest). Here: two signatures of one digest differ (the
  // salt is random, so PSS is in use, not PKCS#1 v1.5).
  std::string digest = RandomBytes(32);
  EXPECT_NE(Rsa2048().Sign("PS256", digest).value(), Rsa2048().Sign("PS256", digest).value());
  EXPECT_EQ(Rsa2048().Sign("RS256", digest).value(), Rsa2048().Sign("RS256", digest).value());
}

TEST(AsymKey, DigestLengthMustMatchTheAlgorithm) {
  auto p256 = MustGenerate("EC", 0, "P-256");
  auto p521 = MustGenerate("EC", 0, "P-521");
  struct Case {
    const AsymKey* key;
    const char* alg;
    size_t length;
  };
  for (const Case& c :
       {Case{&Rsa2048(), "RS256", 31}, Case{&Rsa2048(), "RS256", 33}, Case{&Rsa2048(), "RS256", 0},
        Case{&Rsa2048(), "RS384", 32}, Case{&Rsa2048(), "PS512", 48}, Case{p256.get(), "ES256", 48},
        Case{p256.get(), "ES256", 20}, Case{p521.get(), "ES512", 66},
        Case{&Rsa2048(), "RS256", 1 << 20}}) {
    SCOPED_TRACE(std::string(c.alg) + " " + std::to_string(c.length));
    std::string digest(c.length, 'd');
    auto signed_ = c.key->Sign(c.alg, digest);
    ExpectBadParameter(signed_.status());
    EXPECT_NE(signed_.status().message().find("digest"), std::string::npos);
    ExpectBadParameter(c.key->Verify(c.alg, digest, std::string(64, 's')).status());
  }
}

TEST(AsymKey, AlgorithmMustFitTheKey) {
  auto p256 = MustGenerate("EC", 0, "P-256");
  auto p256k = MustGenerate("EC", 0, "P-256K");
  std::string d32 = RandomBytes(32);
  ExpectBadParameter(Rsa2048().Sign("ES256", d32).status());
  ExpectBadParameter(p256->Sign("RS256", d32).status());
  ExpectBadParameter(p256->Sign("PS256", d32).status());
  ExpectBadParameter(p256->Sign("ES256K", d32).status());
  ExpectBadParameter(p256k->Sign("ES256", d32).status());
  ExpectBadParameter(p256->Sign("ES384", RandomBytes(48)).status());
  ExpectBadParameter(p256->Verify("ES256K", d32, std::string(64, 's')).status());
  ExpectBadParameter(p256->Encrypt("RSA-OAEP", "x").status());
  ExpectBadParameter(p256->Decrypt("RSA-OAEP", std::string(64, 'x')).status());
  // Purpose and spelling.
  ExpectBadParameter(Rsa2048().Sign("RSA-OAEP", d32).status());
  ExpectBadParameter(Rsa2048().Encrypt("RS256", "x").status());
  ExpectBadParameter(Rsa2048().Decrypt("PS256", std::string(256, 'x')).status());
  ExpectBadParameter(Rsa2048().Sign("rs256", d32).status());
  ExpectBadParameter(Rsa2048().Encrypt("A256GCM", "x").status());
  ExpectBadParameter(Rsa2048().Encrypt("RSNULL", "x").status());
  ExpectBadParameter(Rsa2048().Encrypt("", "x").status());
  ExpectBadParameter(Rsa2048().Encrypt(std::string(1 << 20, 'A'), "x").status());
}

TEST(AsymKey, EveryDecryptionFailureReadsTheSame) {
  const AsymKey& key = Rsa2048();
  for (const char* alg : {"RSA-OAEP", "RSA-OAEP-256", "RSA1_5"}) {
    SCOPED_TRACE(alg);
    std::string ciphertext = key.Encrypt(alg, "a data key").value();
    std::vector<std::string> broken = {
        "",
        ciphertext.substr(1),
        ciphertext + '\0',
        std::string(1 << 20, 'c'),
        std::string(256, '\xff'),  // not below the modulus
    };
    if (std::string_view(alg) != "RSA1_5") {
      // OAEP: every bit position of the ciphertext, a zero block, and a
      // ciphertext under the other hash.
      for (size_t i = 0; i < ciphertext.size(); i += 17) {
        std::string tampered = ciphertext;
        tampered[i] ^= static_cast<char>(1 << (i % 8));
        broken.push_back(tampered);
      }
      broken.push_back(std::string(256, '\0'));
      broken.push_back(
          key.Encrypt(std::string_view(alg) == "RSA-OAEP" ? "RSA-OAEP-256" : "RSA-OAEP",
                      "a data key")
              .value());
      broken.push_back(key.Encrypt("RSA1_5", "a data key").value());
    }
    for (const std::string& c : broken) {
      auto result = key.Decrypt(alg, c);
      ASSERT_FALSE(result.ok()) << "length " << c.size();
      ExpectBadParameter(result.status());
      EXPECT_EQ(result.status().message(), kDecryptionFailedMessage);
    }
  }
}

TEST(AsymKey, Rsa15TamperedCiphertextDecryptsToAStableSyntheticMessage) {
  // Implicit rejection: no error, and the same answer for the same input,
  // so repeating a query tells nothing either.
  const AsymKey& key = Rsa2048();
  std::string ciphertext = key.Encrypt("RSA1_5", "a data key").value();
  const std::string modulus = Base64UrlDecode(StringMember(key.PublicJwk(), "n")).value();
  for (size_t i = 0; i < ciphertext.size(); i += 31) {
    std::string tampered = ciphertext;
    tampered[i] ^= 0x10;
    if (tampered >= modulus) {
      // Not below the modulus: a public fact, refused like any bad length.
      EXPECT_EQ(key.Decrypt("RSA1_5", tampered).status().message(), kDecryptionFailedMessage);
      continue;
    }
    auto first = key.Decrypt("RSA1_5", tampered);
    ASSERT_TRUE(first.ok()) << first.status().message();
    EXPECT_NE(first->view(), "a data key");
    EXPECT_LE(first->size(), 256u - 11);
    EXPECT_EQ(key.Decrypt("RSA1_5", tampered).value().view(), first->view());
  }
  // OAEP ciphertexts have random padding for RSA1_5: rejected, implicitly.
  std::string oaep = key.Encrypt("RSA-OAEP", "a data key").value();
  EXPECT_TRUE(key.Decrypt("RSA1_5", oaep).ok());
}

TEST(AsymKey, PrivateDerRoundTripsAndRefusesGarbage) {
  auto p384 = MustGenerate("EC", 0, "P-384");
  for (const AsymKey* key : std::vector<const AsymKey*>{&Rsa2048(), p384.get()}) {
    SecureBytes der = key->ToPrivateDer();
    ASSERT_FALSE(der.empty());
    auto opened = AsymKey::FromPrivateDer(der.view());
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    EXPECT_EQ((*opened)->PublicJwk(), key->PublicJwk());
    EXPECT_EQ((*opened)->kty(), key->kty());
    EXPECT_EQ((*opened)->curve(), key->curve());
    std::string digest = RandomBytes(key->type() == AsymKeyType::kRsa ? 32 : 48);
    const char* alg = key->type() == AsymKeyType::kRsa ? "PS256" : "ES384";
    EXPECT_TRUE(key->Verify(alg, digest, (*opened)->Sign(alg, digest).value()).value());
    std::string truncated(der.view().substr(0, der.size() / 2));
    EXPECT_EQ(AsymKey::FromPrivateDer(truncated).status().code(), StatusCode::kDataLoss);
  }
  EXPECT_EQ(AsymKey::FromPrivateDer("").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(AsymKey::FromPrivateDer("not der").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(AsymKey::FromPrivateDer(std::string(1 << 20, '\x30')).status().code(),
            StatusCode::kDataLoss);
}

TEST(AsymKey, PublicKeyPemAndDerDescribeTheSameKey) {
  const AsymKey& key = Rsa2048();
  std::string pem = key.PublicKeyPem();
  EXPECT_EQ(pem.rfind("-----BEGIN PUBLIC KEY-----\n", 0), 0u);
  std::string der = key.PublicKeyDer();
  EXPECT_GT(der.size(), 256u);
  EXPECT_NE(der.find(Base64UrlDecode(StringMember(key.PublicJwk(), "n")).value()),
            std::string::npos);
}

TEST(AsymKey, OneKeySignsAndDecryptsFromManyThreads) {
  const AsymKey& key = Rsa2048();
  auto ec = MustGenerate("EC", 0, "P-256");
  std::string ciphertext = key.Encrypt("RSA-OAEP-256", "shared").value();
  std::vector<std::thread> threads;
  std::vector<int> good(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 8; ++i) {
        std::string digest = Sha256(std::to_string(t * 100 + i));
        bool ok = key.Verify("RS256", digest, key.Sign("RS256", digest).value()).value() &&
                  ec->Verify("ES256", digest, ec->Sign("ES256", digest).value()).value() &&
                  key.Decrypt("RSA-OAEP-256", ciphertext).value().view() == "shared";
        good[t] += ok ? 1 : 0;
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(good, std::vector<int>(4, 8));
}

TEST(SecureBytes, MovesHandOverAndTruncateKeepsThePrefix) {
  SecureBytes a(std::string_view("secret bytes"));
  const unsigned char* data = a.data();
  SecureBytes b(std::move(a));
  EXPECT_EQ(b.data(), data);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): the contract
  b.Truncate(6);
  EXPECT_EQ(b.view(), "secret");
  b.Truncate(10);
  EXPECT_EQ(b.view(), "secret");
  SecureBytes c(4);
  EXPECT_EQ(c.view(), std::string(4, '\0'));
  c = std::move(b);
  EXPECT_EQ(c.view(), "secret");
}

}  // namespace
}  // namespace coffer::crypto
