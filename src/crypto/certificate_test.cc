#include "crypto/certificate.h"

#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "crypto/certificate_testing.h"
#include "crypto/openssl_ptr.h"
#include "crypto/primitives.h"

namespace coffer::crypto {
namespace {

using testing::EcKey;
using testing::ExpectBadParameter;
using testing::kDuringValidity;
using testing::kNotAfter;
using testing::kNotBefore;
using testing::ParseX509;
using testing::Profile;
using testing::PublicKey;
using testing::RsaKey;

using X509StorePtr = std::unique_ptr<X509_STORE, OpenSslDeleter<X509_STORE, X509_STORE_free>>;
using X509StoreCtxPtr =
    std::unique_ptr<X509_STORE_CTX, OpenSslDeleter<X509_STORE_CTX, X509_STORE_CTX_free>>;

// A profile with every kind of name, key usages in other cases than Key
// Vault's, and a subject already in canonical form.
CertificateProfile FullProfile() {
  CertificateProfile profile =
      Profile("CN=www.example.com, OU=IT, O=Contoso, L=Redmond, S=WA, C=US");
  profile.sans.dns_names = {"www.example.com", "*.example.com"};
  profile.sans.emails = {"admin@example.com"};
  profile.sans.upns = {"alice@contoso.com"};
  profile.sans.uris = {"https://example.com/id", "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66"};
  profile.sans.ip_addresses = {"192.0.2.1", "2001:db8::1"};
  profile.key_usage = {"DIGITALSIGNATURE", "keyencipherment"};
  profile.ekus = {"1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"};
  return profile;
}

// VerifyChain runs OpenSSL's path validation of `leaf` up to `root`.
int VerifyChain(const std::string& root, const std::vector<std::string>& intermediates,
                const std::string& leaf) {
  X509StorePtr store(X509_STORE_new());
  X509Ptr root_cert = ParseX509(root);
  X509_STORE_add_cert(store.get(), root_cert.get());
  std::vector<X509Ptr> owned;
  STACK_OF(X509)* untrusted = sk_X509_new_null();
  for (const auto& der : intermediates) {
    owned.push_back(ParseX509(der));
    sk_X509_push(untrusted, owned.back().get());
  }
  X509Ptr leaf_cert = ParseX509(leaf);
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), leaf_cert.get(), untrusted);
  X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx.get()), kDuringValidity);
  int ok = X509_verify_cert(ctx.get());
  int error = X509_STORE_CTX_get_error(ctx.get());
  sk_X509_free(untrusted);
  ERR_clear_error();
  return ok == 1 ? X509_V_OK : (error == X509_V_OK ? -1 : error);
}

// --- Issuing -------------------------------------------------------------------------

TEST(CertificateIssue, SelfSignedRsaReadsBackAsAsked) {
  CertificateProfile profile = FullProfile();
  auto der = IssueCertificate(profile, RsaKey().PublicKeyDer(), RsaKey(), "", "0a1B2c");
  ASSERT_TRUE(der.ok()) << der.status().message();
  auto details = ReadCertificateDer(*der);
  ASSERT_TRUE(details.ok()) << details.status().message();

  EXPECT_EQ(details->der, *der);
  EXPECT_EQ(details->sha1_thumbprint, Sha1(*der));
  EXPECT_EQ(details->sha1_thumbprint.size(), 20u);
  EXPECT_EQ(details->subject, profile.subject);
  EXPECT_EQ(details->issuer, profile.subject);
  EXPECT_EQ(details->serial_hex, "0A1B2C");
  EXPECT_EQ(details->not_before, kNotBefore);
  EXPECT_EQ(details->not_after, kNotAfter);
  EXPECT_EQ(details->sans.dns_names, profile.sans.dns_names);
  EXPECT_EQ(details->sans.emails, profile.sans.emails);
  EXPECT_EQ(details->sans.upns, profile.sans.upns);
  EXPECT_EQ(details->sans.uris, profile.sans.uris);
  EXPECT_EQ(details->sans.ip_addresses, profile.sans.ip_addresses);
  EXPECT_EQ(details->key_usage, (std::vector<std::string>{"digitalSignature", "keyEncipherment"}));
  EXPECT_EQ(details->ekus, profile.ekus);
  EXPECT_FALSE(details->is_ca);
  EXPECT_FALSE(details->path_length.has_value());
  EXPECT_EQ(details->public_key_der, RsaKey().PublicKeyDer());

  // What OpenSSL sees in it.
  X509Ptr cert = ParseX509(*der);
  ASSERT_NE(cert, nullptr);
  EvpPkeyPtr key = PublicKey(RsaKey());
  EXPECT_EQ(X509_verify(cert.get(), key.get()), 1);
  EXPECT_EQ(X509_get_version(cert.get()), X509_VERSION_3);
  EXPECT_EQ(X509_get_signature_nid(cert.get()), NID_sha256WithRSAEncryption);
  // RFC 4514: the string's last RDN (C) is the first in DER.
  const X509_NAME* subject = X509_get_subject_name(cert.get());
  EXPECT_EQ(OBJ_obj2nid(X509_NAME_ENTRY_get_object(X509_NAME_get_entry(subject, 0))),
            NID_countryName);
  EXPECT_EQ(OBJ_obj2nid(X509_NAME_ENTRY_get_object(
                X509_NAME_get_entry(subject, X509_NAME_entry_count(subject) - 1))),
            NID_commonName);
  EXPECT_EQ(X509_EXTENSION_get_critical(
                X509_get_ext(cert.get(), X509_get_ext_by_NID(cert.get(), NID_key_usage, -1))),
            1);
  EXPECT_EQ(X509_EXTENSION_get_critical(X509_get_ext(
                cert.get(), X509_get_ext_by_NID(cert.get(), NID_basic_constraints, -1))),
            1);
  EXPECT_EQ(X509_EXTENSION_get_critical(X509_get_ext(
                cert.get(), X509_get_ext_by_NID(cert.get(), NID_subject_alt_name, -1))),
            0);
  const ASN1_OCTET_STRING* skid = X509_get0_subject_key_id(cert.get());
  const ASN1_OCTET_STRING* akid = X509_get0_authority_key_id(cert.get());
  ASSERT_NE(skid, nullptr);
  ASSERT_NE(akid, nullptr);
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(skid, akid), 0);
  EXPECT_EQ(ASN1_STRING_length(skid), 20);
}

TEST(CertificateIssue, SelfSignedEcSignsWithTheCurvesHash) {
  struct Case {
    EcCurve curve;
    int signature_nid;
  };
  for (const Case& c :
       {Case{EcCurve::kP256, NID_ecdsa_with_SHA256}, Case{EcCurve::kP384, NID_ecdsa_with_SHA384},
        Case{EcCurve::kP521, NID_ecdsa_with_SHA512},
        Case{EcCurve::kP256K, NID_ecdsa_with_SHA256}}) {
    SCOPED_TRACE(EcCurveName(c.curve));
    const AsymKey& key = EcKey(c.curve);
    CertificateProfile profile = FullProfile();
    auto der = IssueCertificate(profile, key.PublicKeyDer(), key, "");
    ASSERT_TRUE(der.ok()) << der.status().message();
    X509Ptr cert = ParseX509(*der);
    ASSERT_NE(cert, nullptr);
    EXPECT_EQ(X509_get_signature_nid(cert.get()), c.signature_nid);
    EvpPkeyPtr public_key = PublicKey(key);
    EXPECT_EQ(X509_verify(cert.get(), public_key.get()), 1);
    // Another key's signature does not verify: the check above can fail.
    EvpPkeyPtr other = PublicKey(RsaKey());
    EXPECT_NE(X509_verify(cert.get(), other.get()), 1);
    ERR_clear_error();
    auto details = ReadCertificateDer(*der);
    ASSERT_TRUE(details.ok()) << details.status().message();
    EXPECT_EQ(details->subject, profile.subject);
    EXPECT_EQ(details->sans.upns, profile.sans.upns);
    EXPECT_EQ(details->public_key_der, key.PublicKeyDer());
  }
}

TEST(CertificateIssue, RandomSerialsArePositiveSixteenBytesAndDiffer) {
  const AsymKey& key = EcKey(EcCurve::kP256);
  auto first = ReadCertificateDer(testing::Issue(Profile("CN=a"), key, key));
  auto second = ReadCertificateDer(testing::Issue(Profile("CN=a"), key, key));
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->serial_hex.size(), 32u);
  EXPECT_NE(first->serial_hex, second->serial_hex);
  EXPECT_TRUE(first->serial_hex[0] >= '4' && first->serial_hex[0] <= '7') << first->serial_hex;
}

TEST(CertificateIssue, RefusesBadSerials) {
  const AsymKey& key = EcKey(EcCurve::kP256);
  std::string public_key = key.PublicKeyDer();
  for (const char* serial : {"0", "00", "xyz", "-1",
                             "80"
                             "00000000000000000000000000000000000000",
                             "0102030405060708090a0b0c0d0e0f101112131415"}) {
    SCOPED_TRACE(serial);
    ExpectBadParameter(IssueCertificate(Profile("CN=a"), public_key, key, "", serial).status(),
                       "serial");
  }
  // 20 bytes with the top bit clear is the longest allowed.
  auto longest = IssueCertificate(Profile("CN=a"), public_key, key, "",
                                  "7f02030405060708090a0b0c0d0e0f1011121314");
  ASSERT_TRUE(longest.ok()) << longest.status().message();
  EXPECT_EQ(ReadCertificateDer(*longest)->serial_hex, "7F02030405060708090A0B0C0D0E0F1011121314");
}

TEST(CertificateIssue, ACaIssuesALeafThatVerifies) {
  const AsymKey& ca_key = RsaKey();
  const AsymKey& leaf_key = EcKey(EcCurve::kP384);
  CertificateProfile ca_profile = Profile("CN=Contoso Root CA, O=Contoso", true);
  ca_profile.path_length = 0;
  std::string ca = testing::Issue(ca_profile, ca_key, ca_key);
  auto ca_details = ReadCertificateDer(ca);
  ASSERT_TRUE(ca_details.ok()) << ca_details.status().message();
  EXPECT_TRUE(ca_details->is_ca);
  EXPECT_EQ(ca_details->path_length, 0);
  EXPECT_EQ(ca_details->key_usage, (std::vector<std::string>{"keyCertSign", "cRLSign"}));

  CertificateProfile leaf_profile = FullProfile();
  std::string leaf = testing::Issue(leaf_profile, leaf_key, ca_key, ca);
  auto leaf_details = ReadCertificateDer(leaf);
  ASSERT_TRUE(leaf_details.ok()) << leaf_details.status().message();
  EXPECT_EQ(leaf_details->issuer, "CN=Contoso Root CA, O=Contoso");
  EXPECT_EQ(leaf_details->subject, leaf_profile.subject);
  EXPECT_EQ(leaf_details->public_key_der, leaf_key.PublicKeyDer());
  EXPECT_EQ(VerifyChain(ca, {}, leaf), X509_V_OK);

  X509Ptr ca_cert = ParseX509(ca);
  X509Ptr leaf_cert = ParseX509(leaf);
  EXPECT_EQ(X509_get_signature_nid(leaf_cert.get()), NID_sha256WithRSAEncryption);
  EXPECT_EQ(
      X509_NAME_cmp(X509_get_issuer_name(leaf_cert.get()), X509_get_subject_name(ca_cert.get())),
      0);
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(leaf_cert.get()),
                                  X509_get0_subject_key_id(ca_cert.get())),
            0);
  EXPECT_NE(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(leaf_cert.get()),
                                  X509_get0_subject_key_id(leaf_cert.get())),
            0);

  // The same leaf does not verify under another CA with the same name.
  const AsymKey& other_key = EcKey(EcCurve::kP256);
  std::string impostor = testing::Issue(ca_profile, other_key, other_key);
  EXPECT_NE(VerifyChain(impostor, {}, leaf), X509_V_OK);
}

TEST(CertificateIssue, AnIntermediateChainVerifies) {
  testing::Chain chain;
  EXPECT_EQ(VerifyChain(chain.root, {chain.intermediate}, chain.leaf), X509_V_OK);
  EXPECT_NE(VerifyChain(chain.root, {}, chain.leaf), X509_V_OK);
}

TEST(CertificateIssue, RefusesIssuersThatDoNotFit) {
  const AsymKey& ca_key = RsaKey();
  const AsymKey& other = EcKey(EcCurve::kP256);
  std::string ca = testing::Issue(Profile("CN=CA", true), ca_key, ca_key);
  std::string not_ca = testing::Issue(Profile("CN=Not a CA"), other, other);
  std::string subject_key = EcKey(EcCurve::kP384).PublicKeyDer();
  // Self-signed with a subject key that is not the signer's.
  ExpectBadParameter(IssueCertificate(Profile("CN=x"), subject_key, ca_key, "").status(),
                     "self-signed");
  // The issuer key is not the CA certificate's.
  ExpectBadParameter(IssueCertificate(Profile("CN=x"), subject_key, other, ca).status(),
                     "not the issuer certificate's key");
  // The issuer certificate is no CA.
  ExpectBadParameter(IssueCertificate(Profile("CN=x"), subject_key, other, not_ca).status(),
                     "not a CA");
  ExpectBadParameter(IssueCertificate(Profile("CN=x"), subject_key, ca_key, "garbage").status(),
                     "issuer certificate");
  // Subject keys the vault would not hold.
  ExpectBadParameter(IssueCertificate(Profile("CN=x"), "not a key", ca_key, ca).status(),
                     "SubjectPublicKeyInfo");
  ExpectBadParameter(IssueCertificate(Profile("CN=x"), subject_key + "x", ca_key, ca).status(),
                     "after its end");
  // A profile CheckProfile refuses.
  CertificateProfile bad = Profile("CN=x");
  bad.not_after = bad.not_before;
  ExpectBadParameter(IssueCertificate(bad, subject_key, ca_key, ca).status(), "validity");
}

TEST(CertificateIssue, AnEmptySubjectNeedsASanAndMakesItCritical) {
  const AsymKey& key = EcKey(EcCurve::kP256);
  CertificateProfile profile = Profile("");
  ExpectBadParameter(CheckProfile(profile), "subject or a subject alternative name");
  profile.sans.dns_names = {"only-a-san.example.com"};
  std::string der = testing::Issue(profile, key, key);
  auto details = ReadCertificateDer(der);
  ASSERT_TRUE(details.ok()) << details.status().message();
  EXPECT_EQ(details->subject, "");
  EXPECT_EQ(details->sans.dns_names, profile.sans.dns_names);
  X509Ptr cert = ParseX509(der);
  EXPECT_EQ(X509_EXTENSION_get_critical(X509_get_ext(
                cert.get(), X509_get_ext_by_NID(cert.get(), NID_subject_alt_name, -1))),
            1);
}

// --- Requests -------------------------------------------------------------------------

TEST(CertificateCsr, RoundTripsTheProfileAndKey) {
  for (const AsymKey* key : {&RsaKey(), &EcKey(EcCurve::kP521)}) {
    SCOPED_TRACE(key->kty());
    CertificateProfile profile = FullProfile();
    profile.not_before = profile.not_after = 0;  // a request carries no validity
    auto csr = CreateCsr(profile, *key);
    ASSERT_TRUE(csr.ok()) << csr.status().message();
    auto read = ReadCsr(*csr);
    ASSERT_TRUE(read.ok()) << read.status().message();
    EXPECT_EQ(read->public_key_der, key->PublicKeyDer());
    EXPECT_EQ(read->profile.subject, profile.subject);
    EXPECT_EQ(read->profile.sans.dns_names, profile.sans.dns_names);
    EXPECT_EQ(read->profile.sans.emails, profile.sans.emails);
    EXPECT_EQ(read->profile.sans.upns, profile.sans.upns);
    EXPECT_EQ(read->profile.sans.uris, profile.sans.uris);
    EXPECT_EQ(read->profile.sans.ip_addresses, profile.sans.ip_addresses);
    EXPECT_EQ(read->profile.key_usage,
              (std::vector<std::string>{"digitalSignature", "keyEncipherment"}));
    EXPECT_EQ(read->profile.ekus, profile.ekus);
    EXPECT_FALSE(read->profile.is_ca);

    // A flipped byte in the signature (the last bytes of the DER) is refused.
    std::string tampered = *csr;
    tampered[tampered.size() - 3] ^= 0x01;
    ExpectBadParameter(ReadCsr(tampered).status(), "signature does not verify");
    // So is one in the signed part.
    tampered = *csr;
    tampered[tampered.find("www.example.com")] = 'v';
    ExpectBadParameter(ReadCsr(tampered).status(), "signature does not verify");
  }
}

TEST(CertificateCsr, ACaRequestAsksForBasicConstraints) {
  CertificateProfile profile = Profile("CN=Sub CA", true);
  profile.path_length = 2;
  auto csr = CreateCsr(profile, EcKey(EcCurve::kP256));
  ASSERT_TRUE(csr.ok()) << csr.status().message();
  auto read = ReadCsr(*csr);
  ASSERT_TRUE(read.ok()) << read.status().message();
  EXPECT_TRUE(read->profile.is_ca);
  EXPECT_EQ(read->profile.path_length, 2);
  EXPECT_EQ(read->profile.key_usage, (std::vector<std::string>{"keyCertSign", "cRLSign"}));
}

TEST(CertificateCsr, RefusesBadProfilesAndMalformedRequests) {
  CertificateProfile profile = Profile("CN=x");
  profile.ekus = {"not an oid"};
  ExpectBadParameter(CreateCsr(profile, RsaKey()).status(), "extended key usage");
  ExpectBadParameter(ReadCsr("").status());
  ExpectBadParameter(ReadCsr(std::string(64 * 1024 + 1, '0')).status(), "64 KiB");
  auto csr = CreateCsr(Profile("CN=x"), EcKey(EcCurve::kP256));
  ASSERT_TRUE(csr.ok());
  ExpectBadParameter(ReadCsr(*csr + std::string(1, '\0')).status(), "after its end");
  for (size_t length = 0; length < csr->size(); ++length) {
    ExpectBadParameter(ReadCsr(csr->substr(0, length)).status());
  }
}

// --- Reading hostile certificates ----------------------------------------------------

TEST(CertificateRead, WritesControlCharactersInNamesEscaped) {
  // A CN with a NUL inside, as in the certificates that fooled browsers.
  const AsymKey& key = EcKey(EcCurve::kP256);
  X509Ptr cert = ParseX509(testing::Issue(Profile("CN=x"), key, key));
  X509NamePtr name(X509_NAME_new());
  static const unsigned char kEvil[] = {'a', '.', 'c', 'o', 'm', 0, '.', 'b'};
  ASSERT_EQ(X509_NAME_add_entry_by_NID(name.get(), NID_commonName, V_ASN1_UTF8STRING, kEvil,
                                       sizeof(kEvil), -1, 0),
            1);
  ASSERT_EQ(X509_set_subject_name(cert.get(), name.get()), 1);
  // Signing re-encodes the changed part (X509_set_subject_name alone does
  // not, on a certificate that was parsed).
  SecureBytes private_der = key.ToPrivateDer();
  const unsigned char* in = private_der.data();
  EvpPkeyPtr pkey(d2i_AutoPrivateKey(nullptr, &in, static_cast<long>(private_der.size())));
  ASSERT_GT(X509_sign(cert.get(), pkey.get(), EVP_sha256()), 0);
  unsigned char* der = nullptr;
  int length = i2d_X509(cert.get(), &der);
  std::string bytes(reinterpret_cast<char*>(der), static_cast<size_t>(length));
  OPENSSL_free(der);
  auto details = ReadCertificateDer(bytes);
  ASSERT_TRUE(details.ok()) << details.status().message();
  EXPECT_EQ(details->subject, "CN=\"a.com\\00.b\"");
  ExpectBadParameter(NormalizeSubject(details->subject).status(), "control characters");
}

TEST(CertificateRead, RefusesWhatIsNotOneDerCertificate) {
  const AsymKey& key = EcKey(EcCurve::kP256);
  std::string der = testing::Issue(FullProfile(), key, key);
  ExpectBadParameter(ReadCertificateDer("").status(), "empty");
  ExpectBadParameter(ReadCertificateDer("garbage").status(), "not a DER X.509");
  ExpectBadParameter(ReadCertificateDer(der + der).status(), "after its end");
  ExpectBadParameter(ReadCertificateDer(std::string(64 * 1024 + 1, '\x30')).status(), "64 KiB");
  auto pem = CertificatePem(der);
  ASSERT_TRUE(pem.ok());
  ExpectBadParameter(ReadCertificateDer(*pem).status(), "not a DER X.509");
  // A long-form length where DER has a short or shorter one.
  ASSERT_EQ(static_cast<unsigned char>(der[1]), 0x82);
  std::string ber = der;
  ber.replace(1, 1, "\x83\x00", 2);
  ExpectBadParameter(ReadCertificateDer(ber).status());
  for (size_t length = 0; length < der.size(); ++length) {
    ExpectBadParameter(ReadCertificateDer(der.substr(0, length)).status());
  }
}

TEST(CertificateRead, SurvivesRandomAndFlippedBytes) {
  const AsymKey& key = EcKey(EcCurve::kP256);
  std::string der = testing::Issue(FullProfile(), key, key);
  std::mt19937 random(1234);
  for (int i = 0; i < 2000; ++i) {
    std::string noise(random() % 2048, '\0');
    for (char& c : noise) {
      c = static_cast<char>(random());
    }
    EXPECT_FALSE(ReadCertificateDer(noise).ok());
    EXPECT_FALSE(ReadCsr(noise).ok());
    // A flipped byte: any answer, but no crash and no OpenSSL error left over.
    std::string flipped = der;
    flipped[random() % flipped.size()] ^= static_cast<char>(1 + random() % 255);
    (void)ReadCertificateDer(flipped);
    EXPECT_EQ(ERR_peek_error(), 0u);
  }
}

TEST(CertificateRead, CertificatePemIsOneBlockOfTheSameBytes) {
  const AsymKey& key = EcKey(EcCurve::kP256);
  std::string der = testing::Issue(Profile("CN=x"), key, key);
  auto pem = CertificatePem(der);
  ASSERT_TRUE(pem.ok());
  EXPECT_EQ(pem->rfind("-----BEGIN CERTIFICATE-----\n", 0), 0u);
  EXPECT_EQ(pem->substr(pem->size() - 26), "-----END CERTIFICATE-----\n");
  BioPtr bio(BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ASSERT_NE(cert, nullptr);
  unsigned char* out = nullptr;
  int length = i2d_X509(cert.get(), &out);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(out), static_cast<size_t>(length)), der);
  OPENSSL_free(out);
  ExpectBadParameter(CertificatePem("nope").status());
}

}  // namespace
}  // namespace coffer::crypto
