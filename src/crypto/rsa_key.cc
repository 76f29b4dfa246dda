#include "crypto/rsa_key.h"

#include <cstdlib>
#include <utility>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "crypto/openssl_ptr.h"

namespace coffer::crypto {
namespace {

std::string BignumParam(EVP_PKEY* pkey, const char* name) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1) {
    return {};
  }
  BignumPtr holder(bn);
  std::string out(static_cast<size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

}  // namespace

StatusOr<std::unique_ptr<RsaKey>> RsaKey::Generate(int bits) {
  EvpPkeyPtr pkey(EVP_RSA_gen(static_cast<unsigned int>(bits)));
  if (!pkey) {
    ERR_clear_error();
    return InternalError("RSA key generation failed");
  }
  return std::unique_ptr<RsaKey>(new RsaKey(std::move(pkey), true));
}

StatusOr<std::unique_ptr<RsaKey>> RsaKey::FromPrivatePem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EvpPkeyPtr pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!pkey) {
    ERR_clear_error();
    return InvalidArgumentError("not a PEM private key");
  }
  if (EVP_PKEY_get_base_id(pkey.get()) != EVP_PKEY_RSA) {
    return InvalidArgumentError("private key is not RSA");
  }
  return std::unique_ptr<RsaKey>(new RsaKey(std::move(pkey), true));
}

StatusOr<std::unique_ptr<RsaKey>> RsaKey::FromPublicComponents(std::string_view n,
                                                               std::string_view e) {
  if (n.empty() || e.empty() || n.size() > 1024 || e.size() > 8) {
    return InvalidArgumentError("RSA public key components out of range");
  }
  BignumPtr bn_n(BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()),
                           static_cast<int>(n.size()), nullptr));
  BignumPtr bn_e(BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()),
                           static_cast<int>(e.size()), nullptr));
  OsslParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bn_n || !bn_e || !bld ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    return InternalError("cannot build RSA parameters");
  }
  OsslParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  EVP_PKEY* made = nullptr;
  bool ok = ctx && EVP_PKEY_fromdata_init(ctx.get()) == 1 &&
            EVP_PKEY_fromdata(ctx.get(), &made, EVP_PKEY_PUBLIC_KEY, params.get()) == 1;
  EvpPkeyPtr pkey(made);
  if (!ok || !pkey) {
    ERR_clear_error();
    return InvalidArgumentError("invalid RSA public key");
  }
  return std::unique_ptr<RsaKey>(new RsaKey(std::move(pkey), false));
}

int RsaKey::bits() const {
  return EVP_PKEY_get_bits(pkey_.get());
}

std::string RsaKey::PrivatePem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  int written =
      PEM_write_bio_PrivateKey(bio.get(), pkey_.get(), nullptr, nullptr, 0, nullptr, nullptr);
  if (written != 1) {
    std::abort();
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

std::string RsaKey::Modulus() const {
  return BignumParam(pkey_.get(), OSSL_PKEY_PARAM_RSA_N);
}
std::string RsaKey::Exponent() const {
  return BignumParam(pkey_.get(), OSSL_PKEY_PARAM_RSA_E);
}

std::string RsaKey::SignRs256(std::string_view data) const {
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()),
                     data.size()) != 1) {
    std::abort();
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
    std::abort();
  }
  sig.resize(len);
  return sig;
}

std::unique_ptr<RsaKey> RsaKey::FromNative(EvpPkeyPtr pkey, bool has_private) {
  return std::unique_ptr<RsaKey>(new RsaKey(std::move(pkey), has_private));
}

namespace {

bool SetPss(EVP_PKEY_CTX* pctx) {
  return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) == 1 &&
         EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) == 1;
}

}  // namespace

bool RsaKey::VerifyPs256(std::string_view data, std::string_view signature) const {
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  bool ok = ctx &&
            EVP_DigestVerifyInit(ctx.get(), &pctx, EVP_sha256(), nullptr, pkey_.get()) == 1 &&
            SetPss(pctx) &&
            EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                             signature.size(), reinterpret_cast<const unsigned char*>(data.data()),
                             data.size()) == 1;
  ERR_clear_error();
  return ok;
}

std::string RsaKey::SignPs256(std::string_view data) const {
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), &pctx, EVP_sha256(), nullptr, pkey_.get()) != 1 ||
      !SetPss(pctx) ||
      EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()),
                     data.size()) != 1) {
    std::abort();
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
    std::abort();
  }
  sig.resize(len);
  return sig;
}

bool RsaKey::VerifyRs256(std::string_view data, std::string_view signature) const {
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  bool ok = ctx &&
            EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey_.get()) == 1 &&
            EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                             signature.size(), reinterpret_cast<const unsigned char*>(data.data()),
                             data.size()) == 1;
  ERR_clear_error();
  return ok;
}

}  // namespace coffer::crypto
