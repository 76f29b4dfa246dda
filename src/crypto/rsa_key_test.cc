#include "crypto/rsa_key.h"

#include <ctime>
#include <type_traits>
#include <utility>

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include "common/encoding.h"
#include "crypto/ed25519.h"
#include "crypto/openssl_ptr.h"
#include "crypto/primitives.h"
#include "crypto/x509.h"

namespace coffer::crypto {
namespace {

TEST(RsaKey, SignsAndVerifiesThroughPemAndPublicComponents) {
  auto key = RsaKey::Generate(2048);
  ASSERT_TRUE(key.ok());
  std::string sig = (*key)->SignRs256("payload");
  auto reloaded = RsaKey::FromPrivatePem((*key)->PrivatePem());
  ASSERT_TRUE(reloaded.ok());
  EXPECT_TRUE((*reloaded)->VerifyRs256("payload", sig));
  auto pub = RsaKey::FromPublicComponents((*key)->Modulus(), (*key)->Exponent());
  ASSERT_TRUE(pub.ok());
  EXPECT_FALSE((*pub)->has_private());
  EXPECT_TRUE((*pub)->VerifyRs256("payload", sig));
  EXPECT_FALSE((*pub)->VerifyRs256("payloaD", sig));
  EXPECT_FALSE((*pub)->VerifyRs256("payload", sig.substr(1)));
}

// The handle crypto/x509.cc uses is OpenSSL's type, borrowed, and ownership
// comes in only through the holder: no void* and no casts.
static_assert(std::is_same_v<decltype(std::declval<const RsaKey&>().native()), EVP_PKEY*>);

TEST(RsaKey, NativeHandleIsBorrowedAndFromNativeTakesOwnership) {
  auto key = RsaKey::Generate(2048);
  ASSERT_TRUE(key.ok());
  EVP_PKEY* borrowed = (*key)->native();
  ASSERT_NE(borrowed, nullptr);
  ASSERT_EQ(EVP_PKEY_up_ref(borrowed), 1);
  auto second = RsaKey::FromNative(EvpPkeyPtr(borrowed), true);
  EXPECT_EQ(second->native(), borrowed);
  std::string sig = second->SignRs256("payload");
  // Destroying one owner drops its reference only; the other key still works
  // (and under ASan, a reference never dropped is reported as a leak).
  second.reset();
  EXPECT_TRUE((*key)->VerifyRs256("payload", sig));
  EXPECT_EQ((*key)->bits(), 2048);
}

TEST(RsaKey, RejectsGarbagePem) {
  EXPECT_EQ(RsaKey::FromPrivatePem("not a key").status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(RsaKey::FromPublicComponents("", "\x01").ok());
}

TEST(X509, ServerCertificateCarriesRequestedNamesAndExpiry) {
  auto ca_key = TlsKey::GenerateP256();
  auto srv_key = TlsKey::GenerateP256();
  ASSERT_TRUE(ca_key.ok() && srv_key.ok());
  EXPECT_TRUE((*srv_key)->is_ec());
  auto ca = CreateCaCertificate(**ca_key, "Coffer test CA", 30);
  ASSERT_TRUE(ca.ok());
  auto cert = CreateServerCertificate(**srv_key, *ca, **ca_key, {"localhost", "*.vault.localhost"},
                                      {"127.0.0.1"}, 30);
  ASSERT_TRUE(cert.ok());
  auto names = CertificateDnsNames(*cert);
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(names[1], "*.vault.localhost");
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  EXPECT_NEAR(static_cast<double>(CertificateNotAfter(*cert)),
              static_cast<double>(now + 30 * 86400), 120.0);
  EXPECT_EQ(CertificateNotAfter("junk"), 0);
  EXPECT_FALSE(CreateServerCertificate(**srv_key, "junk", **ca_key, {"a"}, {}, 1).ok());
}

TEST(TlsKey, LoadsEcAndRsaKeysOfEarlierReleasesAndNothingElse) {
  auto ec = TlsKey::GenerateP256();
  ASSERT_TRUE(ec.ok());
  auto again = TlsKey::FromPrivatePem((*ec)->PrivatePem());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE((*again)->is_ec());
  auto rsa = RsaKey::Generate(2048);
  ASSERT_TRUE(rsa.ok());
  auto from_rsa = TlsKey::FromPrivatePem((*rsa)->PrivatePem());
  ASSERT_TRUE(from_rsa.ok());
  EXPECT_FALSE((*from_rsa)->is_ec());
  // An RSA CA of an earlier release issues for a new EC server key.
  auto ca = CreateCaCertificate(**from_rsa, "Coffer test CA", 30);
  ASSERT_TRUE(ca.ok());
  EXPECT_TRUE(CreateServerCertificate(**ec, *ca, **from_rsa, {"localhost"}, {}, 30).ok());
  auto ed = Ed25519Key::Generate();
  ASSERT_TRUE(ed.ok());
  EXPECT_EQ(TlsKey::FromPrivatePem((*ed)->PrivatePem()).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(TlsKey::FromPrivatePem("junk").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace coffer::crypto

namespace coffer::crypto {
namespace {

TEST(RsaKey, Ps256IsDistinctFromRs256) {
  auto key = RsaKey::Generate(2048);
  ASSERT_TRUE(key.ok());
  std::string pss = (*key)->SignPs256("payload");
  EXPECT_TRUE((*key)->VerifyPs256("payload", pss));
  EXPECT_FALSE((*key)->VerifyPs256("payloaD", pss));
  EXPECT_FALSE((*key)->VerifyRs256("payload", pss));
  EXPECT_FALSE((*key)->VerifyPs256("payload", (*key)->SignRs256("payload")));
}

TEST(X509, ParsesSelfSignedCertificatesInEveryEncoding) {
  auto key = RsaKey::Generate(2048);
  ASSERT_TRUE(key.ok());
  auto pem = CreateSelfSignedCertificate(**key, "app", 30);
  ASSERT_TRUE(pem.ok());
  auto parsed = ParseCertificate(*pem);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->sha1_thumbprint, Sha1(parsed->der));
  EXPECT_EQ(parsed->sha256_thumbprint.size(), 32u);
  EXPECT_GT(parsed->not_after, parsed->not_before);
  EXPECT_TRUE(parsed->public_key->VerifyPs256("x", (*key)->SignPs256("x")));
  EXPECT_TRUE(ParseCertificate(parsed->der).ok());
  EXPECT_TRUE(ParseCertificate(Base64Encode(parsed->der)).ok());
  EXPECT_EQ(ParseCertificate("not a certificate").status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(ParseCertificate(parsed->der.substr(0, 100)).ok());
}

}  // namespace
}  // namespace coffer::crypto
