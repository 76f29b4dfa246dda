#pragma once

// Keys, profiles and chains for the certificate tests (certificate_test.cc,
// certificate_bundle_test.cc). Test-only.

#include <memory>
#include <string>
#include <string_view>

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "crypto/asym_key.h"
#include "crypto/certificate.h"
#include "crypto/openssl_ptr.h"

namespace coffer::crypto::testing {

// A fixed validity, so that results do not depend on the clock: 2023-11-14
// to ten years later, and a moment inside it for verification.
inline constexpr int64_t kNotBefore = 1700000000;
inline constexpr int64_t kNotAfter = kNotBefore + 10 * 365 * 86400;
inline constexpr int64_t kDuringValidity = kNotBefore + 86400;

// Keys are made once per test binary: RSA generation is slow under the
// sanitizers.
inline const AsymKey& RsaKey() {
  static const AsymKey* key = AsymKey::GenerateRsa(2048).value().release();
  return *key;
}
inline const AsymKey& EcKey(EcCurve curve) {
  static const AsymKey* keys[] = {
      AsymKey::GenerateEc(EcCurve::kP256).value().release(),
      AsymKey::GenerateEc(EcCurve::kP384).value().release(),
      AsymKey::GenerateEc(EcCurve::kP521).value().release(),
      AsymKey::GenerateEc(EcCurve::kP256K).value().release(),
  };
  return *keys[static_cast<int>(curve)];
}

inline CertificateProfile Profile(std::string subject, bool is_ca = false) {
  CertificateProfile profile;
  profile.subject = std::move(subject);
  profile.not_before = kNotBefore;
  profile.not_after = kNotAfter;
  profile.is_ca = is_ca;
  if (!is_ca) {
    profile.key_usage = {"digitalSignature"};
    profile.ekus = {"1.3.6.1.5.5.7.3.1"};
  }
  return profile;
}

// Issue, failing the test (and returning "") when it fails.
inline std::string Issue(const CertificateProfile& profile, const AsymKey& subject_key,
                         const AsymKey& issuer_key, std::string_view issuer_der = {}) {
  auto der = IssueCertificate(profile, subject_key.PublicKeyDer(), issuer_key, issuer_der);
  EXPECT_TRUE(der.ok()) << der.status().message();
  return der.ok() ? *der : "";
}

// A root CA, an intermediate CA and a leaf, each with its own P-256 key.
struct Chain {
  std::unique_ptr<AsymKey> root_key = AsymKey::GenerateEc(EcCurve::kP256).value();
  std::unique_ptr<AsymKey> intermediate_key = AsymKey::GenerateEc(EcCurve::kP256).value();
  std::unique_ptr<AsymKey> leaf_key = AsymKey::GenerateEc(EcCurve::kP256).value();
  std::string root = Issue(Profile("CN=Test Root, O=Contoso", true), *root_key, *root_key);
  std::string intermediate =
      Issue(Profile("CN=Test Intermediate, O=Contoso", true), *intermediate_key, *root_key, root);
  std::string leaf =
      Issue(Profile("CN=www.example.com, O=Contoso"), *leaf_key, *intermediate_key, intermediate);
};

inline X509Ptr ParseX509(std::string_view der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  ERR_clear_error();
  return cert;
}

inline EvpPkeyPtr PublicKey(const AsymKey& key) {
  std::string der = key.PublicKeyDer();
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  return EvpPkeyPtr(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
}

inline void ExpectBadParameter(const Status& status, std::string_view says = {}) {
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.message();
  EXPECT_EQ(status.reason(), "BadParameter") << status.message();
  if (!says.empty()) {
    EXPECT_NE(status.message().find(says), std::string_view::npos)
        << "'" << status.message() << "' does not say '" << says << "'";
  }
}

}  // namespace coffer::crypto::testing
