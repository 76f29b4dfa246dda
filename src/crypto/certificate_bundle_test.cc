// ReadPkcs12, ReadPemBundle, WritePkcs12 and WritePem, with files made by
// OpenSSL's API and command line, and read back by OpenSSL, Python and Node
// where those are installed.

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "common/testing/temp_dir.h"
#include "crypto/certificate.h"
#include "crypto/certificate_testing.h"
#include "crypto/openssl_ptr.h"

namespace coffer::crypto {
namespace {

using testing::Chain;
using testing::EcKey;
using testing::ExpectBadParameter;
using testing::ParseX509;
using testing::Profile;
using testing::RsaKey;

using Pkcs12Ptr = std::unique_ptr<PKCS12, OpenSslDeleter<PKCS12, PKCS12_free>>;

constexpr std::string_view kWrongPassword = "The PFX could not be opened with this password.";

EvpPkeyPtr PrivateKey(const AsymKey& key) {
  SecureBytes der = key.ToPrivateDer();
  const unsigned char* p = der.data();
  return EvpPkeyPtr(d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(der.size())));
}

std::string Drain(BIO* bio) {
  char* data = nullptr;
  long length = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(length));
}

std::string ToDer(PKCS12* p12) {
  unsigned char* der = nullptr;
  int length = i2d_PKCS12(p12, &der);
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(std::max(length, 0)));
  OPENSSL_free(der);
  return out;
}

// A PFX made by OpenSSL's PKCS12_create: `cert` may be null, and 0 picks
// OpenSSL's defaults (AES-256 and PBKDF2 in 3.0).
std::string CreatePfx(const char* pass, const AsymKey* key, const std::string& cert,
                      const std::vector<std::string>& others, int nid_key = 0, int nid_cert = 0,
                      int mac_iter = 0) {
  EvpPkeyPtr pkey = key != nullptr ? PrivateKey(*key) : nullptr;
  X509Ptr leaf = cert.empty() ? nullptr : ParseX509(cert);
  std::vector<X509Ptr> owned;
  STACK_OF(X509)* ca = sk_X509_new_null();
  for (const auto& der : others) {
    owned.push_back(ParseX509(der));
    sk_X509_push(ca, owned.back().get());
  }
  Pkcs12Ptr p12(
      PKCS12_create(pass, nullptr, pkey.get(), leaf.get(), ca, nid_key, nid_cert, 0, mac_iter, 0));
  sk_X509_free(ca);
  EXPECT_NE(p12, nullptr);
  ERR_clear_error();
  return p12 ? ToDer(p12.get()) : "";
}

// A PFX of unencrypted bags, with a MAC keyed by `mac_pass` (nullptr: the
// absent password) unless mac_iter is -1.
std::string PlainPfx(const std::vector<const AsymKey*>& keys, const std::vector<std::string>& certs,
                     const char* mac_pass, int mac_iter = 2048) {
  STACK_OF(PKCS12_SAFEBAG)* bags = nullptr;
  for (const auto& der : certs) {
    X509Ptr cert = ParseX509(der);
    PKCS12_add_cert(&bags, cert.get());
  }
  for (const AsymKey* key : keys) {
    EvpPkeyPtr pkey = PrivateKey(*key);
    PKCS12_add_key(&bags, pkey.get(), 0, 0, -1, nullptr);
  }
  STACK_OF(PKCS7)* safes = nullptr;
  PKCS12_add_safe(&safes, bags, -1, 0, nullptr);
  sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
  Pkcs12Ptr p12(PKCS12_add_safes(safes, 0));
  sk_PKCS7_pop_free(safes, PKCS7_free);
  if (mac_iter != -1) {
    EXPECT_EQ(PKCS12_set_mac(p12.get(), mac_pass, mac_pass == nullptr ? 0 : -1, nullptr, 0,
                             mac_iter, nullptr),
              1);
  }
  ERR_clear_error();
  return ToDer(p12.get());
}

std::string Pem(const char* label, std::string_view der) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio(bio.get(), label, "", reinterpret_cast<const unsigned char*>(der.data()),
                static_cast<long>(der.size()));
  return Drain(bio.get());
}

std::string KeyPem(const AsymKey& key) {
  return Pem("PRIVATE KEY", key.ToPrivateDer().view());
}

void ExpectChain(const StatusOr<KeyAndChain>& read, const AsymKey& key,
                 const std::vector<std::string>& chain) {
  ASSERT_TRUE(read.ok()) << read.status().message();
  ASSERT_NE(read->key, nullptr);
  EXPECT_EQ(read->key->PublicKeyDer(), key.PublicKeyDer());
  EXPECT_EQ(read->chain_der.size(), chain.size());
  EXPECT_TRUE(read->chain_der == chain) << "the chain is not in the expected order";
}

// --- PKCS#12 ---------------------------------------------------------------------------

TEST(CertificatePkcs12, WhatWeWriteReadsBackLeafFirst) {
  Chain chain;
  std::vector<std::string> certs = {chain.leaf, chain.intermediate, chain.root};
  auto pfx = WritePkcs12(*chain.leaf_key, certs);
  ASSERT_TRUE(pfx.ok()) << pfx.status().message();
  ExpectChain(ReadPkcs12(pfx->view(), ""), *chain.leaf_key, certs);

  // An RSA key, self-signed.
  std::string self = testing::Issue(Profile("CN=rsa"), RsaKey(), RsaKey());
  pfx = WritePkcs12(RsaKey(), {self});
  ASSERT_TRUE(pfx.ok()) << pfx.status().message();
  ExpectChain(ReadPkcs12(pfx->view(), ""), RsaKey(), {self});
}

TEST(CertificatePkcs12, OrdersTheChainWhateverTheInputOrder) {
  Chain chain;
  std::string unrelated = testing::Issue(Profile("CN=unrelated"), RsaKey(), RsaKey());
  // No certificate marked as the key's, the issuers first, an unrelated one
  // in the middle and the leaf twice.
  std::string pfx = CreatePfx("pw", chain.leaf_key.get(), "",
                              {chain.root, unrelated, chain.intermediate, chain.leaf, chain.leaf});
  ExpectChain(ReadPkcs12(pfx, "pw"), *chain.leaf_key,
              {chain.leaf, chain.intermediate, chain.root, unrelated});
  // Without the intermediate, the chain stops at the leaf.
  pfx = CreatePfx("pw", chain.leaf_key.get(), "", {chain.root, chain.leaf});
  ExpectChain(ReadPkcs12(pfx, "pw"), *chain.leaf_key, {chain.leaf, chain.root});
}

TEST(CertificatePkcs12, OpensWithItsPasswordOnly) {
  Chain chain;
  std::string pfx =
      CreatePfx("s3cret-pw", chain.leaf_key.get(), chain.leaf, {chain.intermediate, chain.root});
  ExpectChain(ReadPkcs12(pfx, "s3cret-pw"), *chain.leaf_key,
              {chain.leaf, chain.intermediate, chain.root});
  for (const char* wrong : {"wrong-guess", "", "s3cret-pw ", "S3CRET-PW"}) {
    SCOPED_TRACE(wrong);
    Status status = ReadPkcs12(pfx, wrong).status();
    ExpectBadParameter(status);
    EXPECT_EQ(status.message(), kWrongPassword);
  }
  // Without a MAC, the wrong password fails to decrypt instead.
  pfx =
      CreatePfx("s3cret-pw", chain.leaf_key.get(), chain.leaf, {},
                NID_pbe_WithSHA1And3_Key_TripleDES_CBC, NID_pbe_WithSHA1And3_Key_TripleDES_CBC, -1);
  EXPECT_TRUE(ReadPkcs12(pfx, "s3cret-pw").ok());
  EXPECT_EQ(ReadPkcs12(pfx, "wrong-guess").status().message(), kWrongPassword);
  ExpectBadParameter(ReadPkcs12(pfx, std::string(1025, 'a')).status(), "1 KiB");
}

TEST(CertificatePkcs12, NoPasswordMeansEitherTheAbsentOrTheEmptyOne) {
  Chain chain;
  for (const char* mac_pass : {static_cast<const char*>(nullptr), ""}) {
    SCOPED_TRACE(mac_pass == nullptr ? "absent" : "empty");
    std::string pfx = PlainPfx({chain.leaf_key.get()}, {chain.leaf}, mac_pass);
    ExpectChain(ReadPkcs12(pfx, ""), *chain.leaf_key, {chain.leaf});
    EXPECT_EQ(ReadPkcs12(pfx, "x").status().message(), kWrongPassword);
  }
  // No MAC and the key encrypted under "".
  std::string pfx = CreatePfx("", chain.leaf_key.get(), chain.leaf, {},
                              NID_pbe_WithSHA1And3_Key_TripleDES_CBC, -1, -1);
  ExpectChain(ReadPkcs12(pfx, ""), *chain.leaf_key, {chain.leaf});
  // No MAC, nothing encrypted: any password opens it.
  pfx = PlainPfx({chain.leaf_key.get()}, {chain.leaf}, nullptr, -1);
  ExpectChain(ReadPkcs12(pfx, "anything"), *chain.leaf_key, {chain.leaf});
}

TEST(CertificatePkcs12, RefusesWhatIsNotOneKeyWithItsCertificate) {
  Chain chain;
  const AsymKey& other = EcKey(EcCurve::kP256);
  ExpectBadParameter(
      ReadPkcs12(PlainPfx({chain.leaf_key.get(), &other}, {chain.leaf}, ""), "").status(),
      "more than one private key");
  ExpectBadParameter(ReadPkcs12(PlainPfx({}, {chain.leaf}, ""), "").status(), "no private key");
  ExpectBadParameter(ReadPkcs12(PlainPfx({chain.leaf_key.get()}, {}, ""), "").status(),
                     "holds no certificate");
  ExpectBadParameter(ReadPkcs12(PlainPfx({&other}, {chain.leaf, chain.root}, ""), "").status(),
                     "No certificate in the PFX carries its private key");
  std::vector<std::string> many(21, chain.leaf);
  ExpectBadParameter(ReadPkcs12(PlainPfx({chain.leaf_key.get()}, many, ""), "").status(),
                     "more than 20 certificates");
}

TEST(CertificatePkcs12, RefusesCostlyKeyDerivation) {
  Chain chain;
  std::string pfx = PlainPfx({chain.leaf_key.get()}, {chain.leaf}, "", 600001);
  ExpectBadParameter(ReadPkcs12(pfx, "").status(), "600001");
}

TEST(CertificatePkcs12, SurvivesHostileBytes) {
  Chain chain;
  auto written = WritePkcs12(*chain.leaf_key, {chain.leaf, chain.intermediate, chain.root});
  ASSERT_TRUE(written.ok());
  std::string pfx(written->view());
  ExpectBadParameter(ReadPkcs12("", "").status(), "empty");
  ExpectBadParameter(ReadPkcs12("not a pfx", "").status(), "not a PFX");
  ExpectBadParameter(ReadPkcs12(pfx + "x", "").status(), "after its end");
  ExpectBadParameter(ReadPkcs12(std::string(1024 * 1024 + 1, '\x30'), "").status(), "1 MiB");
  for (size_t length = 0; length < pfx.size(); ++length) {
    ExpectBadParameter(ReadPkcs12(pfx.substr(0, length), "").status());
  }
  std::mt19937 random(99);
  for (int i = 0; i < 2000; ++i) {
    std::string noise(random() % 4096, '\0');
    for (char& c : noise) {
      c = static_cast<char>(random());
    }
    EXPECT_FALSE(ReadPkcs12(noise, "").ok());
    std::string flipped = pfx;
    flipped[random() % flipped.size()] ^= static_cast<char>(1 + random() % 255);
    (void)ReadPkcs12(flipped, "");
    EXPECT_EQ(ERR_peek_error(), 0u);
  }
}

// --- PEM -------------------------------------------------------------------------------

TEST(CertificatePem, WritesTheKeyThenTheChainLeafFirst) {
  Chain chain;
  std::vector<std::string> certs = {chain.leaf, chain.intermediate, chain.root};
  auto pem = WritePem(*chain.leaf_key, certs);
  ASSERT_TRUE(pem.ok()) << pem.status().message();
  std::string text(pem->view());
  EXPECT_EQ(text.rfind("-----BEGIN PRIVATE KEY-----\n", 0), 0u);
  EXPECT_EQ(text.substr(text.size() - 26), "-----END CERTIFICATE-----\n");
  EXPECT_EQ(text, KeyPem(*chain.leaf_key) + CertificatePem(chain.leaf).value() +
                      CertificatePem(chain.intermediate).value() +
                      CertificatePem(chain.root).value());
  ExpectChain(ReadPemBundle(text), *chain.leaf_key, certs);
}

TEST(CertificatePem, ReadsBlocksInAnyOrder) {
  Chain chain;
  std::string root = CertificatePem(chain.root).value();
  std::string intermediate = CertificatePem(chain.intermediate).value();
  std::string leaf = CertificatePem(chain.leaf).value();
  std::string key = KeyPem(*chain.leaf_key);
  std::vector<std::string> expected = {chain.leaf, chain.intermediate, chain.root};
  ExpectChain(ReadPemBundle(root + intermediate + leaf + key), *chain.leaf_key, expected);
  ExpectChain(ReadPemBundle(intermediate + key + root + leaf), *chain.leaf_key, expected);
  // With the text `openssl pkcs12 -nodes` writes around the blocks.
  std::string attributes = "Bag Attributes\n    localKeyID: 01 02 03\nsubject=CN = x\n\n";
  ExpectChain(ReadPemBundle(attributes + leaf + attributes + key + "trailing text"),
              *chain.leaf_key, {chain.leaf});
  // CRLF line ends.
  std::string crlf;
  for (char c : key + leaf) {
    crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  }
  ExpectChain(ReadPemBundle(crlf), *chain.leaf_key, {chain.leaf});
}

TEST(CertificatePem, WritesCertificatesWithoutTheKey) {
  Chain chain;
  std::vector<std::string> certs = {chain.leaf, chain.intermediate, chain.root};
  auto pem = WriteCertificatesPem(certs);
  ASSERT_TRUE(pem.ok()) << pem.status().message();
  std::string text(pem->view());
  EXPECT_EQ(text.find("PRIVATE KEY"), std::string::npos);
  EXPECT_EQ(ReadPemCertificates(text).value(), certs);
  EXPECT_EQ(WriteCertificatesPem({}).status().code(), StatusCode::kInvalidArgument);
}

TEST(CertificatePem, ReadsCertificatesAloneInTheirOrder) {
  Chain chain;
  std::string text =
      CertificatePem(chain.leaf).value() + "between\n" + CertificatePem(chain.root).value();
  auto certs = ReadPemCertificates(text);
  ASSERT_TRUE(certs.ok()) << certs.status().message();
  EXPECT_EQ(*certs, (std::vector<std::string>{chain.leaf, chain.root}));
  for (const std::string& bad :
       {std::string("no pem here"), KeyPem(*chain.leaf_key) + CertificatePem(chain.leaf).value(),
        CertificatePem(chain.leaf).value().substr(0, 80),
        std::string("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")}) {
    auto refused = ReadPemCertificates(bad);
    EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(CertificatePem, ReadsTraditionalKeysAndSkipsEcParameters) {
  for (const AsymKey* key : {&RsaKey(), &EcKey(EcCurve::kP384)}) {
    SCOPED_TRACE(key->kty());
    std::string cert = testing::Issue(Profile("CN=t"), *key, *key);
    EvpPkeyPtr pkey = PrivateKey(*key);
    BioPtr bio(BIO_new(BIO_s_mem()));
    ASSERT_EQ(PEM_write_bio_PrivateKey_traditional(bio.get(), pkey.get(), nullptr, nullptr, 0,
                                                   nullptr, nullptr),
              1);
    std::string traditional = Drain(bio.get());
    EXPECT_NE(
        traditional.find(key->kty() == "RSA" ? "BEGIN RSA PRIVATE KEY" : "BEGIN EC PRIVATE KEY"),
        std::string::npos);
    std::string parameters =
        "-----BEGIN EC PARAMETERS-----\nBgUrgQQAIg==\n-----END EC PARAMETERS-----\n";
    ExpectChain(ReadPemBundle(parameters + traditional + CertificatePem(cert).value()), *key,
                {cert});
  }
}

TEST(CertificatePem, RefusesWhatIsNotOneKeyWithItsChainSayingWhy) {
  Chain chain;
  std::string leaf = CertificatePem(chain.leaf).value();
  std::string key = KeyPem(*chain.leaf_key);
  std::string other_key = KeyPem(EcKey(EcCurve::kP256));
  ExpectBadParameter(ReadPemBundle(key + leaf + other_key).status(), "more than one private key");
  ExpectBadParameter(ReadPemBundle(leaf).status(), "no private key");
  ExpectBadParameter(ReadPemBundle(key).status(), "holds no certificate");
  ExpectBadParameter(ReadPemBundle(other_key + leaf).status(),
                     "No certificate in the PEM carries its private key");
  ExpectBadParameter(ReadPemBundle("").status(), "no PEM block");
  ExpectBadParameter(ReadPemBundle("garbage\x01\x02").status(), "no PEM block");
  ExpectBadParameter(ReadPemBundle(std::string(1024 * 1024 + 1, 'a')).status(), "1 MiB");
  // Truncated: inside a block, and a block without its END line before the next.
  ExpectBadParameter(ReadPemBundle((key + leaf).substr(0, key.size() + leaf.size() / 2)).status(),
                     "has no END line");
  ExpectBadParameter(ReadPemBundle(key.substr(0, key.size() / 2) + leaf).status(),
                     "has no END line");
  ExpectBadParameter(ReadPemBundle("-----BEGIN CERTIFICATE\n").status(), "malformed");
  // Damaged base64, and base64 of something that is not a certificate.
  std::string damaged = key + leaf;
  damaged[key.size() + 40] = '!';
  ExpectBadParameter(ReadPemBundle(damaged).status(), "does not decode");
  ExpectBadParameter(ReadPemBundle(key + Pem("CERTIFICATE", "not DER")).status(),
                     "PEM block 2 (CERTIFICATE) is not a DER X.509 certificate");
  ExpectBadParameter(ReadPemBundle(Pem("PRIVATE KEY", "not DER") + leaf).status(),
                     "private key of PEM block 1 (PRIVATE KEY) does not decode");
  // Blocks of other types.
  ExpectBadParameter(
      ReadPemBundle(key + leaf + Pem("PUBLIC KEY", chain.leaf_key->PublicKeyDer())).status(),
      "block of type 'PUBLIC KEY'");
  std::string many;
  for (int i = 0; i < 21; ++i) {
    many += leaf;
  }
  ExpectBadParameter(ReadPemBundle(key + many).status(), "more than 20 certificates");
}

TEST(CertificatePem, RefusesEncryptedKeys) {
  Chain chain;
  std::string leaf = CertificatePem(chain.leaf).value();
  EvpPkeyPtr pkey = PrivateKey(*chain.leaf_key);
  BioPtr pkcs8(BIO_new(BIO_s_mem()));
  char password[] = "pw";
  ASSERT_EQ(PEM_write_bio_PKCS8PrivateKey(pkcs8.get(), pkey.get(), EVP_aes_256_cbc(), password, 2,
                                          nullptr, nullptr),
            1);
  BioPtr traditional(BIO_new(BIO_s_mem()));
  ASSERT_EQ(PEM_write_bio_PrivateKey_traditional(traditional.get(), pkey.get(), EVP_aes_128_cbc(),
                                                 reinterpret_cast<unsigned char*>(password), 2,
                                                 nullptr, nullptr),
            1);
  for (BIO* bio : {pkcs8.get(), traditional.get()}) {
    std::string encrypted = Drain(bio);
    SCOPED_TRACE(encrypted.substr(0, 40));
    ExpectBadParameter(ReadPemBundle(encrypted + leaf).status(), "private key is encrypted");
  }
}

TEST(CertificatePem, SurvivesHostileText) {
  Chain chain;
  std::string pem(WritePem(*chain.leaf_key, {chain.leaf, chain.intermediate}).value().view());
  // A cut after the leaf's END line leaves a whole bundle; any cut before
  // it is refused.
  size_t whole = KeyPem(*chain.leaf_key).size() + CertificatePem(chain.leaf).value().size() - 1;
  for (size_t length = 0; length < pem.size(); ++length) {
    auto read = ReadPemBundle(pem.substr(0, length));
    if (length < whole) {
      ExpectBadParameter(read.status());
    } else if (read.ok()) {
      EXPECT_EQ(read->chain_der.front(), chain.leaf);
    }
  }
  std::mt19937 random(7);
  for (int i = 0; i < 300; ++i) {
    std::string flipped = pem;
    flipped[random() % flipped.size()] = static_cast<char>(random());
    (void)ReadPemBundle(flipped);
    EXPECT_EQ(ERR_peek_error(), 0u);
  }
}

// --- Writing ---------------------------------------------------------------------------

TEST(CertificateWrite, RefusesChainsThatDoNotFitTheKey) {
  Chain chain;
  for (auto write : {WritePkcs12, WritePem}) {
    ExpectBadParameter(write(*chain.leaf_key, {}).status(), "empty");
    ExpectBadParameter(write(*chain.leaf_key, {chain.root, chain.leaf}).status(),
                       "first certificate is not the key's");
    ExpectBadParameter(write(*chain.leaf_key, {chain.leaf, "junk"}).status(),
                       "Certificate 2 of the chain");
    ExpectBadParameter(write(*chain.leaf_key, std::vector<std::string>(21, chain.leaf)).status(),
                       "more than 20");
  }
}

// --- Other readers and writers ---------------------------------------------------------

bool Installed(const char* probe) {
  return std::system((std::string(probe) + " >/dev/null 2>&1").c_str()) == 0;
}

class CertificateInterop : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = test::TempDir::Create("coffer-certificate-");
    ASSERT_TRUE(dir.ok());
    dir_ = std::move(dir).value();
  }

  std::string Path(const char* name) { return dir_.Join(name); }
  void Write(const char* name, std::string_view bytes) {
    std::ofstream out(Path(name), std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  std::string Read(const char* name) {
    std::ifstream in(Path(name), std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  bool Run(const std::string& command) {
    return std::system(("cd '" + dir_.path() + "' && " + command + " >/dev/null 2>&1").c_str()) ==
           0;
  }

  test::TempDir dir_;
};

// The tests with the `openssl` command (Debian's openssl package, a
// dependency of the build), skipped without it.
class CertificateOpenSsl : public CertificateInterop {
 protected:
  void SetUp() override {
    if (!Installed("openssl version")) {
      GTEST_SKIP() << "the openssl command is not installed";
    }
    CertificateInterop::SetUp();
  }

  Chain chain;
  std::vector<std::string> certs = {chain.leaf, chain.intermediate, chain.root};
};

TEST_F(CertificateOpenSsl, ReadsPfxFilesTheCommandWrites) {
  Write("bundle.pem", WritePem(*chain.leaf_key, certs).value().view());
  // OpenSSL 3's defaults: PBES2 with AES-256-CBC, a SHA-256 MAC.
  ASSERT_TRUE(Run("openssl pkcs12 -export -in bundle.pem -passout pass:pw -out modern.pfx"));
  ExpectChain(ReadPkcs12(Read("modern.pfx"), "pw"), *chain.leaf_key, certs);
  ASSERT_TRUE(Run("openssl pkcs12 -export -in bundle.pem -passout pass: -out empty.pfx"));
  ExpectChain(ReadPkcs12(Read("empty.pfx"), ""), *chain.leaf_key, certs);

  if (!Run("openssl pkcs12 -export -legacy -in bundle.pem -passout pass:pw -out legacy.pfx")) {
    GTEST_SKIP() << "the openssl command cannot write -legacy files (no legacy provider)";
  }
  std::string legacy = Read("legacy.pfx");
  // pbeWithSHA1And40BitRC2-CBC (1.2.840.113549.1.12.1.6): the RC2 this is about.
  EXPECT_NE(legacy.find("\x2a\x86\x48\x86\xf7\x0d\x01\x0c\x01\x06"), std::string::npos);
  ExpectChain(ReadPkcs12(legacy, "pw"), *chain.leaf_key, certs);
  EXPECT_EQ(ReadPkcs12(legacy, "pW").status().message(), kWrongPassword);
}

TEST_F(CertificateOpenSsl, TheCommandReadsOurPfx) {
  Write("ours.pfx", WritePkcs12(*chain.leaf_key, certs).value().view());
  ASSERT_TRUE(Run("openssl pkcs12 -in ours.pfx -info -passin pass: -nodes -out dump.pem"));
  // What it wrote (with its "Bag Attributes" text) reads back as the same.
  ExpectChain(ReadPemBundle(Read("dump.pem")), *chain.leaf_key, certs);
  // Without the legacy provider too: nothing in it is RC2.
  ASSERT_TRUE(
      Run("openssl pkcs12 -in ours.pfx -passin pass: -nodes -provider default -out "
          "dump2.pem"));
  EXPECT_FALSE(Run("openssl pkcs12 -in ours.pfx -passin pass:x -nodes -out wrong.pem"));
}

TEST_F(CertificateOpenSsl, TheCommandReadsOurKeylessPfx) {
  auto pfx = WriteCertificatesPkcs12(certs);
  ASSERT_TRUE(pfx.ok()) << pfx.status().message();
  Write("certs.pfx", pfx->view());
  ASSERT_TRUE(Run("openssl pkcs12 -in certs.pfx -passin pass: -nokeys -out certs.pem"));
  EXPECT_EQ(ReadPemCertificates(Read("certs.pem")).value(), certs);
  ASSERT_TRUE(Run("openssl pkcs12 -in certs.pfx -passin pass: -nodes -out all.pem"));
  EXPECT_EQ(Read("all.pem").find("PRIVATE KEY"), std::string::npos);
  // Not a key with its chain: the reader of secrets says so.
  EXPECT_EQ(ReadPkcs12(pfx->view(), "").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(CertificateInterop, PythonAndNodeReadOurPfx) {
  Chain chain;
  Write("ours.pfx",
        WritePkcs12(*chain.leaf_key, {chain.leaf, chain.intermediate, chain.root}).value().view());
  bool any = false;
  if (Installed("python3 -c 'import cryptography.hazmat.primitives.serialization.pkcs12'")) {
    any = true;
    Write("read.py",
          "from cryptography.hazmat.primitives.serialization import pkcs12\n"
          "key, cert, extra = pkcs12.load_key_and_certificates(open('ours.pfx', 'rb').read(), "
          "None)\n"
          "assert key is not None and cert is not None and len(extra) == 2\n");
    EXPECT_TRUE(Run("python3 read.py"));
  }
  if (Installed("node --version")) {
    any = true;
    Write("read.js",
          "const fs = require('fs');\n"
          "require('tls').createSecureContext({pfx: fs.readFileSync('ours.pfx')});\n");
    EXPECT_TRUE(Run("node read.js"));
  }
  if (!any) {
    GTEST_SKIP() << "neither Python's cryptography nor Node is installed";
  }
}

}  // namespace
}  // namespace coffer::crypto
