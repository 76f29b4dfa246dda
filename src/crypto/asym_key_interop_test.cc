// AsymKey against the `openssl` command line (Debian's openssl package, a
// dependency of the build): signatures and ciphertexts made by one side are
// checked by the other, so the wire forms (DigestInfo, PSS salt, OAEP hash,
// raw r||s) are the standard ones and not merely self-consistent.

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/testing/temp_dir.h"
#include "crypto/asym_key.h"
#include "crypto/openssl_ptr.h"
#include "crypto/primitives.h"

namespace coffer::crypto {
namespace {

using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, OpenSslDeleter<ECDSA_SIG, ECDSA_SIG_free>>;

void Write(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// RawToDer turns a JWS r||s signature into the DER SEQUENCE OpenSSL takes.
std::string RawToDer(std::string_view raw) {
  size_t half = raw.size() / 2;
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  EcdsaSigPtr sig(ECDSA_SIG_new());
  ECDSA_SIG_set0(sig.get(), BN_bin2bn(p, static_cast<int>(half), nullptr),
                 BN_bin2bn(p + half, static_cast<int>(half), nullptr));
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(sig.get(), &der);
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

// DerToRaw is the reverse, each half padded to `half` bytes.
std::string DerToRaw(std::string_view der, int half) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  if (!sig) {
    return "";
  }
  std::string out(2 * static_cast<size_t>(half), '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), o, half);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), o + half, half);
  return out;
}

class OpenSslCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("openssl version >/dev/null 2>&1") != 0) {
      GTEST_SKIP() << "the openssl command is not installed";
    }
    auto dir = test::TempDir::Create("coffer-asym-key-");
    ASSERT_TRUE(dir.ok());
    dir_ = std::move(dir).value();
  }

  // Writes `key`'s private DER and public PEM, returning their paths.
  std::pair<std::string, std::string> WriteKey(const AsymKey& key) {
    std::string priv = dir_.Join("key.der");
    std::string pub = dir_.Join("pub.pem");
    Write(priv, key.ToPrivateDer().view());
    Write(pub, key.PublicKeyPem());
    return {priv, pub};
  }

  // Runs `openssl pkeyutl <args>` with in/out files in the test directory.
  bool Pkeyutl(const std::string& args) {
    std::string command =
        "cd '" + dir_.path() + "' && openssl pkeyutl " + args + " >/dev/null 2>&1";
    return std::system(command.c_str()) == 0;
  }

  std::string Path(const char* name) { return dir_.Join(name); }

  test::TempDir dir_;
};

TEST_F(OpenSslCli, SignaturesMadeByOpenSslVerifyHere) {
  auto rsa = AsymKey::GenerateRsa(2048).value();
  auto [priv, pub] = WriteKey(*rsa);
  std::string digest = Sha256("signed by the command line");
  Write(Path("digest.bin"), digest);
  struct Case {
    const char* alg;
    const char* options;
  };
  for (const Case& c : {Case{"RS256", "-pkeyopt digest:sha256"},
                        Case{"PS256",
                             "-pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:digest "
                             "-pkeyopt digest:sha256"},
                        // The command line's own default salt (the maximum) verifies too.
                        Case{"PS256", "-pkeyopt rsa_padding_mode:pss -pkeyopt digest:sha256"}}) {
    SCOPED_TRACE(std::string(c.alg) + " " + c.options);
    ASSERT_TRUE(Pkeyutl("-sign -keyform DER -inkey key.der -in digest.bin -out sig.bin " +
                        std::string(c.options)));
    std::string sig = Read(Path("sig.bin"));
    EXPECT_TRUE(rsa->Verify(c.alg, digest, sig).value());
    EXPECT_FALSE(rsa->Verify(c.alg, Sha256("something else"), sig).value());
  }
  for (EcCurve curve : {EcCurve::kP256, EcCurve::kP256K}) {
    auto ec = AsymKey::GenerateEc(curve).value();
    WriteKey(*ec);
    ASSERT_TRUE(Pkeyutl("-sign -keyform DER -inkey key.der -in digest.bin -out sig.der"));
    std::string raw = DerToRaw(Read(Path("sig.der")), 32);
    const char* alg = curve == EcCurve::kP256 ? "ES256" : "ES256K";
    EXPECT_TRUE(ec->Verify(alg, digest, raw).value()) << alg;
    EXPECT_FALSE(ec->Verify(alg, Sha256("something else"), raw).value()) << alg;
  }
}

TEST_F(OpenSslCli, SignaturesMadeHereVerifyWithOpenSsl) {
  auto rsa = AsymKey::GenerateRsa(2048).value();
  WriteKey(*rsa);
  std::string digest = Sha256("signed by coffer");
  Write(Path("digest.bin"), digest);
  Write(Path("wrong.bin"), Sha256("not what was signed"));
  struct Case {
    const char* alg;
    std::string digest;
    const char* options;
  };
  std::string d384(48, 'x'), d512(64, 'y');
  for (const Case& c : {Case{"RS256", digest, "-pkeyopt digest:sha256"},
                        Case{"RS512", d512, "-pkeyopt digest:sha512"},
                        // Strict salt length: this passes only if ours is the hash length.
                        Case{"PS256", digest,
                             "-pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:digest "
                             "-pkeyopt digest:sha256"},
                        Case{"PS384", d384,
                             "-pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:digest "
                             "-pkeyopt digest:sha384"}}) {
    SCOPED_TRACE(c.alg);
    Write(Path("digest.bin"), c.digest);
    Write(Path("sig.bin"), rsa->Sign(c.alg, c.digest).value());
    std::string verify = "-verify -pubin -inkey pub.pem -sigfile sig.bin " + std::string(c.options);
    EXPECT_TRUE(Pkeyutl(verify + " -in digest.bin"));
    EXPECT_FALSE(Pkeyutl(verify + " -in wrong.bin"));
  }
  Write(Path("digest.bin"), digest);
  for (EcCurve curve : {EcCurve::kP256, EcCurve::kP384, EcCurve::kP521, EcCurve::kP256K}) {
    auto ec = AsymKey::GenerateEc(curve).value();
    WriteKey(*ec);
    const char* alg = curve == EcCurve::kP256   ? "ES256"
                      : curve == EcCurve::kP384 ? "ES384"
                      : curve == EcCurve::kP521 ? "ES512"
                                                : "ES256K";
    SCOPED_TRACE(alg);
    std::string d = curve == EcCurve::kP384 ? d384 : curve == EcCurve::kP521 ? d512 : digest;
    Write(Path("ec-digest.bin"), d);
    Write(Path("sig.der"), RawToDer(ec->Sign(alg, d).value()));
    EXPECT_TRUE(Pkeyutl("-verify -pubin -inkey pub.pem -sigfile sig.der -in ec-digest.bin"));
    EXPECT_FALSE(Pkeyutl("-verify -pubin -inkey pub.pem -sigfile sig.der -in wrong.bin"));
  }
}

constexpr const char* kPadding[][2] = {
    {"RSA-OAEP",
     "-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha1 "
     "-pkeyopt rsa_mgf1_md:sha1"},
    {"RSA-OAEP-256",
     "-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 "
     "-pkeyopt rsa_mgf1_md:sha256"},
    {"RSA1_5", "-pkeyopt rsa_padding_mode:pkcs1"},
};

TEST_F(OpenSslCli, CiphertextsMadeByOpenSslDecryptHere) {
  auto rsa = AsymKey::GenerateRsa(3072).value();
  WriteKey(*rsa);
  std::string plaintext = RandomBytes(32);
  Write(Path("plain.bin"), plaintext);
  for (const auto& [alg, options] : kPadding) {
    SCOPED_TRACE(alg);
    ASSERT_TRUE(Pkeyutl("-encrypt -pubin -inkey pub.pem -in plain.bin -out ct.bin " +
                        std::string(options)));
    auto decrypted = rsa->Decrypt(alg, Read(Path("ct.bin")));
    ASSERT_TRUE(decrypted.ok()) << decrypted.status().message();
    EXPECT_EQ(decrypted->view(), plaintext);
  }
}

TEST_F(OpenSslCli, CiphertextsMadeHereDecryptWithOpenSsl) {
  auto rsa = AsymKey::GenerateRsa(2048).value();
  WriteKey(*rsa);
  std::string plaintext = RandomBytes(32);
  for (const auto& [alg, options] : kPadding) {
    SCOPED_TRACE(alg);
    Write(Path("ct.bin"), rsa->Encrypt(alg, plaintext).value());
    ASSERT_TRUE(Pkeyutl("-decrypt -keyform DER -inkey key.der -in ct.bin -out plain.bin " +
                        std::string(options)));
    EXPECT_EQ(Read(Path("plain.bin")), plaintext);
  }
}

TEST_F(OpenSslCli, PemKeysMadeByOpenSslImport) {
  ASSERT_EQ(std::system(("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out '" +
                         Path("ec.pem") + "' >/dev/null 2>&1")
                            .c_str()),
            0);
  auto ec = AsymKey::FromPrivatePem(Read(Path("ec.pem")));
  ASSERT_TRUE(ec.ok()) << ec.status().message();
  EXPECT_EQ((*ec)->curve(), EcCurve::kP384);
  ASSERT_EQ(std::system(("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out '" +
                         Path("small.pem") + "' >/dev/null 2>&1")
                            .c_str()),
            0);
  auto small = AsymKey::FromPrivatePem(Read(Path("small.pem")));
  EXPECT_EQ(small.status().reason(), "BadParameter");
  EXPECT_NE(small.status().message().find("1024"), std::string::npos);
}

TEST_F(OpenSslCli, PemKeysWhosePartsDisagreeAreRefused) {
  // An EC private key whose public point is another key's: OpenSSL writes
  // it as PEM without complaint, the import must not take it.
  auto mine = AsymKey::GenerateEc(EcCurve::kP256).value();
  auto other = AsymKey::GenerateEc(EcCurve::kP256).value();
  SecureBytes mine_der = mine->ToPrivateDer();
  const unsigned char* der = mine_der.data();
  EvpPkeyPtr mine_pkey(d2i_AutoPrivateKey(nullptr, &der, static_cast<long>(mine_der.size())));
  ASSERT_TRUE(mine_pkey);
  BIGNUM* d = nullptr;
  ASSERT_EQ(EVP_PKEY_get_bn_param(mine_pkey.get(), OSSL_PKEY_PARAM_PRIV_KEY, &d), 1);
  BignumPtr d_holder(d);
  std::string other_spki = other->PublicKeyDer();
  const unsigned char* spki = reinterpret_cast<const unsigned char*>(other_spki.data());
  EvpPkeyPtr other_pub(d2i_PUBKEY(nullptr, &spki, static_cast<long>(other_spki.size())));
  unsigned char point[65];
  size_t point_len = 0;
  ASSERT_EQ(EVP_PKEY_get_octet_string_param(other_pub.get(), OSSL_PKEY_PARAM_PUB_KEY, point,
                                            sizeof(point), &point_len),
            1);
  OsslParamBldPtr bld(OSSL_PARAM_BLD_new());
  OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
  OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point, point_len);
  OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_PRIV_KEY, d);
  OsslParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* made = nullptr;
  ASSERT_EQ(EVP_PKEY_fromdata_init(ctx.get()), 1);
  ASSERT_EQ(EVP_PKEY_fromdata(ctx.get(), &made, EVP_PKEY_KEYPAIR, params.get()), 1);
  EvpPkeyPtr mixed(made);
  BioPtr bio(BIO_new(BIO_s_mem()));
  ASSERT_EQ(PEM_write_bio_PrivateKey(bio.get(), mixed.get(), nullptr, nullptr, 0, nullptr, nullptr),
            1);
  char* pem = nullptr;
  long pem_len = BIO_get_mem_data(bio.get(), &pem);
  auto imported = AsymKey::FromPrivatePem(std::string_view(pem, static_cast<size_t>(pem_len)));
  EXPECT_EQ(imported.status().reason(), "BadParameter");
  EXPECT_NE(imported.status().message().find("do not agree"), std::string::npos);
}

}  // namespace
}  // namespace coffer::crypto
