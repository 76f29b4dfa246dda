#include "crypto/asym_key.h"

#include <array>
#include <cstring>
#include <utility>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "common/encoding.h"
#include "crypto/asym_key_internal.h"
#include "crypto/openssl_ptr.h"

namespace coffer::crypto {
namespace asym_internal {

constexpr std::array<CurveInfo, 4> kCurves = {{
    {EcCurve::kP256, "P-256", "prime256v1", 256, 32},
    {EcCurve::kP384, "P-384", "secp384r1", 384, 48},
    {EcCurve::kP521, "P-521", "secp521r1", 521, 66},
    {EcCurve::kP256K, "P-256K", "secp256k1", 256, 32},
}};

Status BadParameter(std::string message) {
  return InvalidArgumentError(std::move(message), "BadParameter");
}

const CurveInfo& CurveInfoOf(EcCurve curve) {
  for (const auto& info : kCurves) {
    if (info.curve == curve) {
      return info;
    }
  }
  return kCurves[0];
}

bool IsAllowedRsaSize(int bits) {
  return bits == 2048 || bits == 3072 || bits == 4096;
}

std::string BnToPadded(const BIGNUM* bn, size_t length) {
  std::string out(length, '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(length));
  return out;
}

}  // namespace asym_internal

namespace {

using asym_internal::BadParameter;
using asym_internal::BnToPadded;
using asym_internal::CurveInfo;
using asym_internal::CurveInfoOf;
using asym_internal::IsAllowedRsaSize;
using asym_internal::kCurves;
using asym_internal::SecretBignumPtr;

using Pkcs8Ptr = std::unique_ptr<PKCS8_PRIV_KEY_INFO,
                                 OpenSslDeleter<PKCS8_PRIV_KEY_INFO, PKCS8_PRIV_KEY_INFO_free>>;

std::string BnToBytes(const BIGNUM* bn) {
  std::string out(static_cast<size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

// Encoding a valid key fails only when memory runs out.
std::string SubjectPublicKeyInfoDer(EVP_PKEY* pkey) {
  int len = i2d_PUBKEY(pkey, nullptr);
  if (len <= 0) {
    std::abort();
  }
  std::string out(static_cast<size_t>(len), '\0');
  unsigned char* p = reinterpret_cast<unsigned char*>(out.data());
  i2d_PUBKEY(pkey, &p);
  return out;
}

std::string SubjectPublicKeyInfoPem(EVP_PKEY* pkey) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), pkey) != 1) {
    std::abort();
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

SecretBignumPtr GetBn(EVP_PKEY* pkey, const char* name) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1) {
    ERR_clear_error();
    return nullptr;
  }
  return SecretBignumPtr(bn);
}

}  // namespace

StatusOr<EcCurve> ParseEcCurve(std::string_view crv) {
  for (const auto& info : kCurves) {
    if (crv == info.jwk_name) {
      return info.curve;
    }
  }
  if (crv == "SECP256K1") {
    return EcCurve::kP256K;
  }
  return BadParameter("The curve '" + std::string(crv.substr(0, 32)) +
                      "' is not supported; use P-256, P-384, P-521 or P-256K.");
}

std::string_view EcCurveName(EcCurve curve) {
  return CurveInfoOf(curve).jwk_name;
}

AsymKey::AsymKey(EvpPkeyPtr pkey, AsymKeyType type, int bits, std::optional<EcCurve> curve)
    : pkey_(std::move(pkey)), type_(type), bits_(bits), curve_(curve) {}

AsymKey::~AsymKey() = default;

void AsymKey::CtxFree::operator()(evp_pkey_ctx_st* ctx) const {
  EVP_PKEY_CTX_free(ctx);
}

std::string_view AsymKey::kty() const {
  return type_ == AsymKeyType::kRsa ? "RSA" : "EC";
}

StatusOr<std::unique_ptr<AsymKey>> AsymKey::Wrap(EvpPkeyPtr pkey) {
  int id = EVP_PKEY_get_base_id(pkey.get());
  if (id == EVP_PKEY_RSA) {
    int bits = EVP_PKEY_get_bits(pkey.get());
    if (!IsAllowedRsaSize(bits)) {
      return BadParameter("The RSA key is " + std::to_string(bits) +
                          " bits; the supported sizes are 2048, 3072 and 4096.");
    }
    auto n = GetBn(pkey.get(), OSSL_PKEY_PARAM_RSA_N);
    auto e = GetBn(pkey.get(), OSSL_PKEY_PARAM_RSA_E);
    auto d = GetBn(pkey.get(), OSSL_PKEY_PARAM_RSA_D);
    if (!n || !e || !d) {
      return BadParameter("The RSA key has no private half.");
    }
    std::unique_ptr<AsymKey> key(new AsymKey(std::move(pkey), AsymKeyType::kRsa, bits, {}));
    key->public_jwk_ = Json::object({{"kty", "RSA"},
                                     {"n", Base64UrlEncode(BnToBytes(n.get()))},
                                     {"e", Base64UrlEncode(BnToBytes(e.get()))}});
    // SECURITY: implicit rejection keys its synthetic messages with a hash
    // of d at the modulus length (the draft's and OpenSSL's derivation).
    size_t k = static_cast<size_t>(BN_num_bytes(n.get()));
    SecureBytes d_bytes(k);
    key->rejection_key_ = SecureBytes(static_cast<size_t>(SHA256_DIGEST_LENGTH));
    if (BN_bn2binpad(d.get(), d_bytes.data(), static_cast<int>(k)) < 0 ||
        SHA256(d_bytes.data(), d_bytes.size(), key->rejection_key_.data()) == nullptr) {
      return InternalError("cannot derive the RSA rejection key");
    }
    return key;
  }
  if (id == EVP_PKEY_EC) {
    char group[64] = {0};
    size_t group_len = 0;
    if (EVP_PKEY_get_utf8_string_param(pkey.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &group_len) != 1) {
      ERR_clear_error();
      return BadParameter("The EC key does not name its curve.");
    }
    const CurveInfo* info = nullptr;
    for (const auto& c : kCurves) {
      if (std::strcmp(group, c.openssl_name) == 0) {
        info = &c;
      }
    }
    if (info == nullptr) {
      return BadParameter(
          "The EC key's curve is not supported; use P-256, P-384, P-521 or P-256K.");
    }
    auto x = GetBn(pkey.get(), OSSL_PKEY_PARAM_EC_PUB_X);
    auto y = GetBn(pkey.get(), OSSL_PKEY_PARAM_EC_PUB_Y);
    auto d = GetBn(pkey.get(), OSSL_PKEY_PARAM_PRIV_KEY);
    if (!x || !y || !d) {
      return BadParameter("The EC key has no private half.");
    }
    std::unique_ptr<AsymKey> key(
        new AsymKey(std::move(pkey), AsymKeyType::kEc, info->bits, info->curve));
    key->ecdsa_sign_template_.reset(EVP_PKEY_CTX_new_from_pkey(nullptr, key->pkey_.get(), nullptr));
    key->ecdsa_verify_template_.reset(
        EVP_PKEY_CTX_new_from_pkey(nullptr, key->pkey_.get(), nullptr));
    if (!key->ecdsa_sign_template_ || !key->ecdsa_verify_template_ ||
        EVP_PKEY_sign_init(key->ecdsa_sign_template_.get()) != 1 ||
        EVP_PKEY_verify_init(key->ecdsa_verify_template_.get()) != 1) {
      ERR_clear_error();
      return InternalError("cannot prepare ECDSA contexts");
    }
    key->public_jwk_ =
        Json::object({{"kty", "EC"},
                      {"crv", info->jwk_name},
                      {"x", Base64UrlEncode(BnToPadded(x.get(), info->coordinate_bytes))},
                      {"y", Base64UrlEncode(BnToPadded(y.get(), info->coordinate_bytes))}});
    return key;
  }
  return BadParameter("Only RSA and EC keys are supported.");
}

StatusOr<std::unique_ptr<AsymKey>> AsymKey::GenerateRsa(int bits) {
  if (!IsAllowedRsaSize(bits)) {
    return BadParameter("The RSA key size " + std::to_string(bits) +
                        " is not supported; use 2048, 3072 or 4096.");
  }
  // EVP_RSA_gen uses the public exponent 65537.
  EvpPkeyPtr pkey(EVP_RSA_gen(static_cast<unsigned int>(bits)));
  if (!pkey) {
    ERR_clear_error();
    return InternalError("RSA key generation failed");
  }
  return Wrap(std::move(pkey));
}

StatusOr<std::unique_ptr<AsymKey>> AsymKey::GenerateEc(EcCurve curve) {
  EvpPkeyPtr pkey(EVP_EC_gen(CurveInfoOf(curve).openssl_name));
  if (!pkey) {
    ERR_clear_error();
    return InternalError("EC key generation failed");
  }
  return Wrap(std::move(pkey));
}

StatusOr<std::unique_ptr<AsymKey>> AsymKey::Generate(std::string_view kty, int key_size,
                                                     std::string_view crv) {
  if (kty == "RSA") {
    if (!crv.empty()) {
      return BadParameter("An RSA key takes no 'crv'.");
    }
    return GenerateRsa(key_size == 0 ? 2048 : key_size);
  }
  if (kty == "EC") {
    if (key_size != 0) {
      return BadParameter("An EC key takes 'crv', not 'key_size'.");
    }
    ASSIGN_OR_RETURN(EcCurve curve, ParseEcCurve(crv.empty() ? "P-256" : crv));
    return GenerateEc(curve);
  }
  return BadParameter("The key type '" + std::string(kty.substr(0, 32)) +
                      "' is not supported here; use RSA or EC.");
}

StatusOr<std::unique_ptr<AsymKey>> AsymKey::FromJwk(const Json& jwk) {
  if (!jwk.is_object()) {
    return BadParameter("The key is not a JSON object.");
  }
  std::string kty = StringMember(jwk, "kty");
  if (kty == "RSA" || kty == "RSA-HSM") {
    ASSIGN_OR_RETURN(EvpPkeyPtr pkey, asym_internal::RsaFromJwk(jwk));
    return Wrap(std::move(pkey));
  }
  if (kty == "EC" || kty == "EC-HSM") {
    ASSIGN_OR_RETURN(EvpPkeyPtr pkey, asym_internal::EcFromJwk(jwk));
    return Wrap(std::move(pkey));
  }
  if (kty.empty()) {
    return BadParameter("The JWK has no 'kty'.");
  }
  return BadParameter("The key type '" + kty.substr(0, 32) +
                      "' cannot be imported; use RSA or EC.");
}

StatusOr<std::unique_ptr<AsymKey>> AsymKey::FromPrivatePem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  // A null password callback with an empty password: an encrypted PEM fails
  // instead of prompting on the terminal.
  char empty[] = "";
  EvpPkeyPtr pkey(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, empty) : nullptr);
  ERR_clear_error();
  if (!pkey) {
    return BadParameter("The text is not an unencrypted PEM private key.");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<AsymKey> key, Wrap(std::move(pkey)));
  if (!asym_internal::PassesKeyCheck(key->pkey_.get())) {
    return BadParameter("The PEM private key is not a valid key: its parts do not agree.");
  }
  return key;
}

SecureBytes AsymKey::ToPrivateDer() const {
  Pkcs8Ptr p8(EVP_PKEY2PKCS8(pkey_.get()));
  int len = p8 ? i2d_PKCS8_PRIV_KEY_INFO(p8.get(), nullptr) : -1;
  if (len <= 0) {
    // Only an allocation failure gets here; the key was valid when made.
    std::abort();
  }
  SecureBytes der(static_cast<size_t>(len));
  unsigned char* out = der.data();
  if (i2d_PKCS8_PRIV_KEY_INFO(p8.get(), &out) != len) {
    std::abort();
  }
  return der;
}

StatusOr<std::unique_ptr<AsymKey>> AsymKey::FromPrivateDer(std::string_view der) {
  const unsigned char* in = reinterpret_cast<const unsigned char*>(der.data());
  EvpPkeyPtr pkey(der.empty() ? nullptr
                              : d2i_AutoPrivateKey(nullptr, &in, static_cast<long>(der.size())));
  ERR_clear_error();
  if (!pkey) {
    return DataLossError("the stored key material is not a private key");
  }
  auto key = Wrap(std::move(pkey));
  if (!key.ok()) {
    return DataLossError("the stored key material is not a supported key");
  }
  return key;
}

std::string AsymKey::PublicKeyDer() const {
  return SubjectPublicKeyInfoDer(pkey_.get());
}

std::string AsymKey::PublicKeyPem() const {
  return SubjectPublicKeyInfoPem(pkey_.get());
}

StatusOr<std::string> PublicKeyDerFromJwk(const Json& jwk) {
  ASSIGN_OR_RETURN(EvpPkeyPtr pkey, asym_internal::PublicFromJwk(jwk));
  return SubjectPublicKeyInfoDer(pkey.get());
}

StatusOr<std::string> PublicKeyPemFromJwk(const Json& jwk) {
  ASSIGN_OR_RETURN(EvpPkeyPtr pkey, asym_internal::PublicFromJwk(jwk));
  return SubjectPublicKeyInfoPem(pkey.get());
}

}  // namespace coffer::crypto
