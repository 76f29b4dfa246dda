// CheckProfile and NormalizeSubject: what a certificate policy may say, and
// how Key Vault writes a subject.

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "crypto/certificate.h"
#include "crypto/certificate_testing.h"

namespace coffer::crypto {
namespace {

using testing::EcKey;
using testing::ExpectBadParameter;
using testing::Profile;

TEST(CertificateProfile, NormalizesSubjectsToKeyVaultsForm) {
  struct Case {
    const char* in;
    const char* out;
  };
  for (const Case& c : {
           Case{"CN=www.example.com", "CN=www.example.com"},
           Case{"cn=a,o=Contoso ,  ou = IT", "CN=a, O=Contoso, OU=IT"},
           Case{"CN=a; O=b", "CN=a, O=b"},
           Case{"CN=a, ST=WA, S=Oregon, L=x, C=us", "CN=a, S=WA, S=Oregon, L=x, C=us"},
           Case{"E=a@example.com, emailAddress=b@example.com", "E=a@example.com, E=b@example.com"},
           Case{"CN=a, DC=example, DC=com", "CN=a, DC=example, DC=com"},
           Case{"O=\"Contoso, Inc\"", "O=\"Contoso, Inc\""},
           Case{"O=Contoso\\, Inc", "O=\"Contoso, Inc\""},
           Case{"O=\"say \"\"hi\"\"\"", "O=\"say \"\"hi\"\"\""},
           Case{"O=a\\\"b", "O=\"a\"\"b\""},
           Case{"O=back\\\\slash", "O=\"back\\\\slash\""},
           Case{"O=\\20padded\\20", "O=\" padded \""},
           Case{"O=caf\\C3\\A9", "O=caf\xc3\xa9"},
           Case{"CN=Zürich", "CN=Zürich"},
           Case{"OID.2.5.4.3=via oid", "CN=via oid"},
           Case{"2.5.4.10=bare oid", "O=bare oid"},
           Case{"OID.1.3.6.1.4.1.311.60.2.1.3=US", "OID.1.3.6.1.4.1.311.60.2.1.3=US"},
           Case{"SERIALNUMBER=1234, T=Boss, G=Ann, SN=Lee, I=AL, STREET=1 Main St",
                "SERIALNUMBER=1234, T=Boss, G=Ann, SN=Lee, I=AL, STREET=1 Main St"},
           Case{"CN=a=b", "CN=\"a=b\""},
       }) {
    SCOPED_TRACE(c.in);
    auto normalized = NormalizeSubject(c.in);
    ASSERT_TRUE(normalized.ok()) << normalized.status().message();
    EXPECT_EQ(*normalized, c.out);
    // The canonical form is a fixed point, and what a certificate reads back.
    EXPECT_EQ(NormalizeSubject(*normalized).value(), *normalized);
    const AsymKey& key = EcKey(EcCurve::kP256);
    auto details = ReadCertificateDer(testing::Issue(Profile(c.in), key, key));
    ASSERT_TRUE(details.ok()) << details.status().message();
    EXPECT_EQ(details->subject, *normalized);
  }
}

TEST(CertificateProfile, AMultiValuedRdnReadsBackAsNormalized) {
  auto normalized = NormalizeSubject("CN=a + OU=b, O=c");
  ASSERT_TRUE(normalized.ok()) << normalized.status().message();
  EXPECT_NE(normalized->find(" + "), std::string::npos) << *normalized;
  EXPECT_EQ(normalized->substr(normalized->size() - 5), ", O=c");
  const AsymKey& key = EcKey(EcCurve::kP256);
  auto details = ReadCertificateDer(testing::Issue(Profile("CN=a + OU=b, O=c"), key, key));
  ASSERT_TRUE(details.ok());
  EXPECT_EQ(details->subject, *normalized);
}

TEST(CertificateProfile, RefusesBadSubjectsSayingWhy) {
  struct Case {
    std::string subject;
    const char* says;
  };
  for (const Case& c : {
           Case{"", "empty"},
           Case{"   ", "empty"},
           Case{"CN", "without '='"},
           Case{"=x", "without an attribute type"},
           Case{"XX=y", "'XX' is not supported"},
           Case{"OID.1=x", "'OID.1' is not supported"},
           Case{"CN=", "CN' is empty"},
           Case{"CN=  ", "CN' is empty"},
           Case{"CN=a,", "ends with a separator"},
           Case{"CN=a, O=", "O' is empty"},
           Case{"CN=\"open", "not closed"},
           Case{"CN=\"a\"b", "after its closing quote"},
           Case{"CN=a\"b", "quote the whole value"},
           Case{"CN=a\\q", "escapes nothing"},
           Case{"CN=#0403", "hex-encoded"},
           Case{"C=USA", "two-letter"},
           Case{"C=1A", "two-letter"},
           Case{"E=caf\xc3\xa9@example.com", "ASCII"},
           Case{"SERIALNUMBER=a_b", "letters, digits"},
           Case{"CN=" + std::string(65, 'a'), "longer than 64"},
           Case{"CN=" + std::string(64, 'a'), ""},  // the longest allowed
           Case{"L=" + std::string(129, 'a'), "longer than 128"},
           Case{"CN=a\x01"
                "b",
                "control characters"},
           Case{"CN=a\\00b", "control characters"},
           Case{"CN=\xff\xfe", "not UTF-8"},
           Case{"CN=\xc0\xaf", "not UTF-8"},      // overlong '/'
           Case{"CN=\xed\xa0\x80", "not UTF-8"},  // a surrogate
           Case{"CN=" + std::string(1022, 'a'), "1 KiB"},
           Case{std::string(300, ',') + "CN=a", "is not supported"},
       }) {
    SCOPED_TRACE(c.subject.substr(0, 40));
    Status status = NormalizeSubject(c.subject).status();
    if (*c.says == '\0') {
      EXPECT_TRUE(status.ok()) << status.message();
      continue;
    }
    ExpectBadParameter(status, c.says);
    CertificateProfile profile = Profile(c.subject);
    profile.sans.dns_names = {"a.example.com"};  // so that "" alone is allowed
    if (!c.subject.empty()) {
      ExpectBadParameter(CheckProfile(profile), c.says);
    }
  }
}

TEST(CertificateProfile, ChecksEverySanKind) {
  struct Case {
    std::vector<std::string> SubjectAltNames::*list;
    std::vector<std::string> good;
    std::vector<std::string> bad;
  };
  std::string label63(63, 'a');
  for (const Case& c : {
           Case{&SubjectAltNames::dns_names,
                {"localhost", "a.b", "*.example.com", "xn--bcher-kva.example", "a-1.b2.c",
                 label63 + ".com"},
                {"", "-a.com", "a-.com", "a..com", ".a.com", "a.com.", "*.com", "*", "a.*.com",
                 "a_b.com", "a b.com", label63 + "a.com", "ex\xc3\xa4mple.com", "*.*.a.com"}},
           Case{&SubjectAltNames::emails,
                {"a@example.com", "first.last+tag@sub.example.org"},
                {"", "noat", "@example.com", "a@", "a b@example.com", "a@b@example.com",
                 "a@-example.com", std::string(65, 'a') + "@x.com", "caf\xc3\xa9@x.com"}},
           Case{&SubjectAltNames::upns,
                {"alice@contoso.com", "j\xc3\xb6rg@contoso.local"},
                {"", "alice", "@contoso.com", "al ice@contoso.com", "alice@", "a\x01@x.com",
                 "alice@con toso.com"}},
           Case{&SubjectAltNames::uris,
                {"https://example.com/a?b=c#d", "urn:example:a", "spiffe://trust/ns/x"},
                {"", "example.com", "http:", ":nothing", "1http://x", "http://a b", "ht_tp://x",
                 "http://example.com/\x7f"}},
           Case{&SubjectAltNames::ip_addresses,
                {"10.0.0.1", "::1", "2001:db8::8a2e:370:7334", "::ffff:192.0.2.1"},
                {"", "1.2.3", "01.2.3.4", "1.2.3.4x", "256.1.1.1", "::g", "1.2.3.4/24",
                 "fe80::1%eth0", " 1.2.3.4"}},
       }) {
    for (const std::string& good : c.good) {
      SCOPED_TRACE(good);
      CertificateProfile profile = Profile("CN=x");
      (profile.sans.*c.list).push_back(good);
      EXPECT_TRUE(CheckProfile(profile).ok()) << CheckProfile(profile).message();
    }
    for (const std::string& bad : c.bad) {
      SCOPED_TRACE(bad);
      CertificateProfile profile = Profile("CN=x");
      (profile.sans.*c.list).push_back(bad);
      ExpectBadParameter(CheckProfile(profile), "is not a valid");
    }
  }
}

TEST(CertificateProfile, LimitsSansPerKindAndLength) {
  CertificateProfile profile = Profile("CN=x");
  for (int i = 0; i < 100; ++i) {
    profile.sans.dns_names.push_back("host" + std::to_string(i) + ".example.com");
  }
  EXPECT_TRUE(CheckProfile(profile).ok());
  profile.sans.dns_names.push_back("one-too-many.example.com");
  ExpectBadParameter(CheckProfile(profile), "at most 100");

  profile = Profile("CN=x");
  profile.sans.uris = {"https://example.com/" + std::string(240, 'a')};
  ExpectBadParameter(CheckProfile(profile), "longer than 255");
  profile.sans.uris = {"https://example.com/" + std::string(235, 'a')};
  EXPECT_TRUE(CheckProfile(profile).ok());

  profile = Profile("CN=x");
  profile.ekus.assign(101, "1.2.3");
  ExpectBadParameter(CheckProfile(profile), "more than 100");
}

TEST(CertificateProfile, ChecksKeyUsageEkusValidityAndPathLength) {
  CertificateProfile profile = Profile("CN=x");
  profile.key_usage = {"DigitalSignature", "CRLSIGN", "decipheronly", "digitalSignature"};
  EXPECT_TRUE(CheckProfile(profile).ok());
  profile.key_usage = {"digitalSignature", "signature"};
  ExpectBadParameter(CheckProfile(profile), "'signature' is not one of");

  for (const char* oid : {"", "1", "3.1", "1.40", "0.40.1", "1.2.03", "a.b", "1..2", "1.2.", ".1.2",
                          "1.2.3 ", "-1.2"}) {
    SCOPED_TRACE(oid);
    profile = Profile("CN=x");
    profile.ekus = {oid};
    ExpectBadParameter(CheckProfile(profile), "is not a dotted OID");
  }
  for (const char* oid : {"2.999.1", "1.39.0", "0.0", "1.3.6.1.4.1.311.10.3.12",
                          "1.2.840.113549.1.1.1.123456789012345678901234567890"}) {
    SCOPED_TRACE(oid);
    profile = Profile("CN=x");
    profile.ekus = {oid};
    EXPECT_TRUE(CheckProfile(profile).ok()) << CheckProfile(profile).message();
  }

  profile = Profile("CN=x");
  profile.not_after = profile.not_before;
  ExpectBadParameter(CheckProfile(profile), "ends before it starts");
  profile.not_before = -1;
  ExpectBadParameter(CheckProfile(profile), "between 1970");
  profile.not_before = 0;
  profile.not_after = 253402300800;  // 10000-01-01
  ExpectBadParameter(CheckProfile(profile), "between 1970");
  profile.not_after = 253402300799;
  EXPECT_TRUE(CheckProfile(profile).ok());

  profile = Profile("CN=x");
  profile.path_length = 1;
  ExpectBadParameter(CheckProfile(profile), "only for a CA");
  profile.is_ca = true;
  profile.path_length = -1;
  ExpectBadParameter(CheckProfile(profile), "negative");
}

TEST(CertificateProfile, ValidityBeyond2049IsGeneralizedTime) {
  CertificateProfile profile = Profile("CN=x");
  profile.not_before = 0;
  profile.not_after = 253402300799;
  const AsymKey& key = EcKey(EcCurve::kP256);
  auto details = ReadCertificateDer(testing::Issue(profile, key, key));
  ASSERT_TRUE(details.ok()) << details.status().message();
  EXPECT_EQ(details->not_before, 0);
  EXPECT_EQ(details->not_after, 253402300799);
}

}  // namespace
}  // namespace coffer::crypto
