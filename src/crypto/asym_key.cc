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
#include "crypto/openssl_ptr.h"
#include "crypto/primitives.h"

namespace coffer::crypto {
namespace {

constexpr char kBadParameter[] = "BadParameter";
// Enough for a 4096-bit integer with generous leading zeros, in base64url.
constexpr size_t kMaxJwkFieldChars = 2048;

Status Bad(std::string message) {
  return InvalidArgumentError(std::move(message), kBadParameter);
}

// A BIGNUM that may hold secret material: cleared when freed.
using SecretBignumPtr = std::unique_ptr<BIGNUM, OpenSslDeleter<BIGNUM, BN_clear_free>>;
using BnCtxPtr = std::unique_ptr<BN_CTX, OpenSslDeleter<BN_CTX, BN_CTX_free>>;
using Pkcs8Ptr = std::unique_ptr<PKCS8_PRIV_KEY_INFO,
                                 OpenSslDeleter<PKCS8_PRIV_KEY_INFO, PKCS8_PRIV_KEY_INFO_free>>;

struct CurveInfo {
  EcCurve curve;
  const char* jwk_name;
  const char* openssl_name;
  int bits;
  size_t coordinate_bytes;
};

constexpr std::array<CurveInfo, 4> kCurves = {{
    {EcCurve::kP256, "P-256", "prime256v1", 256, 32},
    {EcCurve::kP384, "P-384", "secp384r1", 384, 48},
    {EcCurve::kP521, "P-521", "secp521r1", 521, 66},
    {EcCurve::kP256K, "P-256K", "secp256k1", 256, 32},
}};

const CurveInfo& InfoOf(EcCurve curve) {
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

std::string BnToBytes(const BIGNUM* bn) {
  std::string out(static_cast<size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

std::string BnToPadded(const BIGNUM* bn, size_t length) {
  std::string out(length, '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(length));
  return out;
}

SecretBignumPtr GetBn(EVP_PKEY* pkey, const char* name) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1) {
    ERR_clear_error();
    return nullptr;
  }
  return SecretBignumPtr(bn);
}

// JwkInteger decodes the base64url member `name` of `jwk` to a BIGNUM.
// Returns null with `status` set when it is malformed, or absent and
// `required`; null with `status` untouched when an optional one is absent.
SecretBignumPtr JwkInteger(const Json& jwk, const char* name, bool required, Status& status) {
  auto it = jwk.find(name);
  if (it == jwk.end() || it->is_null()) {
    if (required) {
      status = Bad(std::string("The JWK has no '") + name + "'.");
    }
    return nullptr;
  }
  if (!it->is_string()) {
    status = Bad(std::string("JWK member '") + name + "' is not a string.");
    return nullptr;
  }
  const std::string& text = it->get_ref<const std::string&>();
  if (text.size() > kMaxJwkFieldChars) {
    status = Bad(std::string("JWK member '") + name + "' is too long.");
    return nullptr;
  }
  std::optional<std::string> bytes = Base64UrlDecode(text);
  if (!bytes || bytes->empty()) {
    status = Bad(std::string("JWK member '") + name + "' is not base64url.");
    return nullptr;
  }
  SecretBignumPtr bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes->data()),
                               static_cast<int>(bytes->size()), nullptr));
  SecureWipe(*bytes);
  if (!bn) {
    status = InternalError("cannot allocate a big number");
  }
  return bn;
}

// FromParams builds a key pair; `refusal` is the error when OpenSSL refuses
// the parameters (EC: a point not on the curve).
StatusOr<EvpPkeyPtr> FromParams(const char* type, OSSL_PARAM_BLD* bld, const char* refusal) {
  OsslParamPtr params(OSSL_PARAM_BLD_to_param(bld));
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* made = nullptr;
  bool ok = params && ctx && EVP_PKEY_fromdata_init(ctx.get()) == 1 &&
            EVP_PKEY_fromdata(ctx.get(), &made, EVP_PKEY_KEYPAIR, params.get()) == 1;
  EvpPkeyPtr pkey(made);
  if (params) {
    // SECURITY: the parameter array holds copies of the private integers.
    for (OSSL_PARAM* p = params.get(); p->key != nullptr; ++p) {
      if (p->data != nullptr) {
        OPENSSL_cleanse(p->data, p->data_size);
      }
    }
  }
  if (!ok || !pkey) {
    ERR_clear_error();
    return Bad(refusal);
  }
  return pkey;
}

// FullCheck runs OpenSSL's key check: for RSA the primality of the factors
// and the key's arithmetic, for EC the point on the curve and Q = d*G.
bool FullCheck(EVP_PKEY* pkey) {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
  bool ok = ctx && EVP_PKEY_check(ctx.get()) == 1;
  ERR_clear_error();
  return ok;
}

StatusOr<EvpPkeyPtr> RsaFromJwk(const Json& jwk) {
  Status status;
  if (jwk.find("d") == jwk.end()) {
    return Bad("The JWK has no private key ('d'); a key is imported with its private half.");
  }
  auto n = JwkInteger(jwk, "n", true, status);
  auto e = n ? JwkInteger(jwk, "e", true, status) : nullptr;
  auto d = e ? JwkInteger(jwk, "d", true, status) : nullptr;
  auto p = d ? JwkInteger(jwk, "p", true, status) : nullptr;
  auto q = p ? JwkInteger(jwk, "q", true, status) : nullptr;
  if (!q) {
    return status;
  }
  SecretBignumPtr given[3];
  const char* crt_names[3] = {"dp", "dq", "qi"};
  for (int i = 0; i < 3; ++i) {
    given[i] = JwkInteger(jwk, crt_names[i], false, status);
    RETURN_IF_ERROR(status);
  }
  int bits = BN_num_bits(n.get());
  if (!IsAllowedRsaSize(bits)) {
    return Bad("The RSA key is " + std::to_string(bits) +
               " bits; the supported sizes are 2048, 3072 and 4096.");
  }
  if (!BN_is_odd(e.get()) || BN_is_one(e.get()) || BN_num_bits(e.get()) > 64) {
    return Bad("The RSA public exponent 'e' must be odd, at least 3 and at most 64 bits.");
  }
  BnCtxPtr ctx(BN_CTX_new());
  SecretBignumPtr pq(BN_new()), pm1(BN_new()), qm1(BN_new()), de(BN_new()), r(BN_new());
  SecretBignumPtr crt[3] = {SecretBignumPtr(BN_new()), SecretBignumPtr(BN_new()), nullptr};
  if (!ctx || !pq || !pm1 || !qm1 || !de || !r || !crt[0] || !crt[1] ||
      BN_mul(pq.get(), p.get(), q.get(), ctx.get()) != 1 || !BN_copy(pm1.get(), p.get()) ||
      !BN_copy(qm1.get(), q.get()) || BN_sub_word(pm1.get(), 1) != 1 ||
      BN_sub_word(qm1.get(), 1) != 1) {
    return InternalError("RSA arithmetic failed");
  }
  if (BN_cmp(pq.get(), n.get()) != 0) {
    return Bad("The RSA JWK is inconsistent: 'p' * 'q' is not 'n'.");
  }
  BN_set_flags(d.get(), BN_FLG_CONSTTIME);
  bool de_ok = BN_mul(de.get(), d.get(), e.get(), ctx.get()) == 1 &&
               BN_mod(r.get(), de.get(), pm1.get(), ctx.get()) == 1 && BN_is_one(r.get()) &&
               BN_mod(r.get(), de.get(), qm1.get(), ctx.get()) == 1 && BN_is_one(r.get());
  if (!de_ok) {
    return Bad("The RSA JWK is inconsistent: 'd' does not invert 'e'.");
  }
  crt[2].reset(BN_mod_inverse(nullptr, q.get(), p.get(), ctx.get()));
  if (!crt[2] || BN_mod(crt[0].get(), d.get(), pm1.get(), ctx.get()) != 1 ||
      BN_mod(crt[1].get(), d.get(), qm1.get(), ctx.get()) != 1) {
    ERR_clear_error();
    return Bad("The RSA JWK is inconsistent: its CRT values cannot be derived.");
  }
  for (int i = 0; i < 3; ++i) {
    if (given[i] && BN_cmp(given[i].get(), crt[i].get()) != 0) {
      return Bad(std::string("The RSA JWK is inconsistent: '") + crt_names[i] +
                 "' does not match 'd', 'p' and 'q'.");
    }
  }
  OsslParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_D, d.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_FACTOR1, p.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_FACTOR2, q.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_EXPONENT1, crt[0].get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_EXPONENT2, crt[1].get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_COEFFICIENT1, crt[2].get()) != 1) {
    return InternalError("cannot build RSA parameters");
  }
  constexpr char kInvalid[] = "The RSA JWK is not a valid key ('p' and 'q' must be primes).";
  ASSIGN_OR_RETURN(EvpPkeyPtr pkey, FromParams("RSA", bld.get(), kInvalid));
  if (!FullCheck(pkey.get())) {
    return Bad(kInvalid);
  }
  return pkey;
}

StatusOr<EvpPkeyPtr> EcFromJwk(const Json& jwk) {
  std::string crv_name = StringMember(jwk, "crv");
  if (crv_name.empty()) {
    return Bad("The EC JWK has no 'crv'.");
  }
  ASSIGN_OR_RETURN(EcCurve curve, ParseEcCurve(crv_name));
  const CurveInfo& info = InfoOf(curve);
  if (jwk.find("d") == jwk.end()) {
    return Bad("The JWK has no private key ('d'); a key is imported with its private half.");
  }
  Status status;
  auto x = JwkInteger(jwk, "x", true, status);
  auto y = x ? JwkInteger(jwk, "y", true, status) : nullptr;
  auto d = y ? JwkInteger(jwk, "d", true, status) : nullptr;
  if (!d) {
    return status;
  }
  const int max_bytes = static_cast<int>(info.coordinate_bytes);
  if (BN_num_bytes(x.get()) > max_bytes || BN_num_bytes(y.get()) > max_bytes ||
      BN_num_bytes(d.get()) > max_bytes) {
    return Bad(std::string("The EC JWK's 'x', 'y' or 'd' is longer than ") + info.jwk_name +
               " allows.");
  }
  std::string point = "\x04" + BnToPadded(x.get(), info.coordinate_bytes) +
                      BnToPadded(y.get(), info.coordinate_bytes);
  OsslParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, info.openssl_name,
                                      0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_PRIV_KEY, d.get()) != 1) {
    return InternalError("cannot build EC parameters");
  }
  constexpr char kInvalid[] =
      "The EC JWK is not a valid key: its point is not on the curve or is not d*G.";
  ASSIGN_OR_RETURN(EvpPkeyPtr pkey, FromParams("EC", bld.get(), kInvalid));
  if (!FullCheck(pkey.get())) {
    return Bad(kInvalid);
  }
  return pkey;
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
  return Bad("The curve '" + std::string(crv.substr(0, 32)) +
             "' is not supported; use P-256, P-384, P-521 or P-256K.");
}

std::string_view EcCurveName(EcCurve curve) {
  return InfoOf(curve).jwk_name;
}

AsymKey::AsymKey(EvpPkeyPtr pkey, AsymKeyType type, int bits, std::optional<EcCurve> curve)
    : pkey_(std::move(pkey)), type_(type), bits_(bits), curve_(curve) {}

AsymKey::~AsymKey() = default;

std::string_view AsymKey::kty() const {
  return type_ == AsymKeyType::kRsa ? "RSA" : "EC";
}

StatusOr<std::unique_ptr<AsymKey>> AsymKey::Wrap(EvpPkeyPtr pkey) {
  int id = EVP_PKEY_get_base_id(pkey.get());
  if (id == EVP_PKEY_RSA) {
    int bits = EVP_PKEY_get_bits(pkey.get());
    if (!IsAllowedRsaSize(bits)) {
      return Bad("The RSA key is " + std::to_string(bits) +
                 " bits; the supported sizes are 2048, 3072 and 4096.");
    }
    auto n = GetBn(pkey.get(), OSSL_PKEY_PARAM_RSA_N);
    auto e = GetBn(pkey.get(), OSSL_PKEY_PARAM_RSA_E);
    auto d = GetBn(pkey.get(), OSSL_PKEY_PARAM_RSA_D);
    if (!n || !e || !d) {
      return Bad("The RSA key has no private half.");
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
      return Bad("The EC key does not name its curve.");
    }
    const CurveInfo* info = nullptr;
    for (const auto& c : kCurves) {
      if (std::strcmp(group, c.openssl_name) == 0) {
        info = &c;
      }
    }
    if (info == nullptr) {
      return Bad("The EC key's curve is not supported; use P-256, P-384, P-521 or P-256K.");
    }
    auto x = GetBn(pkey.get(), OSSL_PKEY_PARAM_EC_PUB_X);
    auto y = GetBn(pkey.get(), OSSL_PKEY_PARAM_EC_PUB_Y);
    auto d = GetBn(pkey.get(), OSSL_PKEY_PARAM_PRIV_KEY);
    if (!x || !y || !d) {
      return Bad("The EC key has no private half.");
    }
    std::unique_ptr<AsymKey> key(
        new AsymKey(std::move(pkey), AsymKeyType::kEc, info->bits, info->curve));
    key->public_jwk_ =
        Json::object({{"kty", "EC"},
                      {"crv", info->jwk_name},
                      {"x", Base64UrlEncode(BnToPadded(x.get(), info->coordinate_bytes))},
                      {"y", Base64UrlEncode(BnToPadded(y.get(), info->coordinate_bytes))}});
    return key;
  }
  return Bad("Only RSA and EC keys are supported.");
}

StatusOr<std::unique_ptr<AsymKey>> AsymKey::GenerateRsa(int bits) {
  if (!IsAllowedRsaSize(bits)) {
    return Bad("The RSA key size " + std::to_string(bits) +
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
  EvpPkeyPtr pkey(EVP_EC_gen(InfoOf(curve).openssl_name));
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
      return Bad("An RSA key takes no 'crv'.");
    }
    return GenerateRsa(key_size == 0 ? 2048 : key_size);
  }
  if (kty == "EC") {
    if (key_size != 0) {
      return Bad("An EC key takes 'crv', not 'key_size'.");
    }
    ASSIGN_OR_RETURN(EcCurve curve, ParseEcCurve(crv.empty() ? "P-256" : crv));
    return GenerateEc(curve);
  }
  return Bad("The key type '" + std::string(kty.substr(0, 32)) +
             "' is not supported here; use RSA or EC.");
}

StatusOr<std::unique_ptr<AsymKey>> AsymKey::FromJwk(const Json& jwk) {
  if (!jwk.is_object()) {
    return Bad("The key is not a JSON object.");
  }
  std::string kty = StringMember(jwk, "kty");
  if (kty == "RSA" || kty == "RSA-HSM") {
    ASSIGN_OR_RETURN(EvpPkeyPtr pkey, RsaFromJwk(jwk));
    return Wrap(std::move(pkey));
  }
  if (kty == "EC" || kty == "EC-HSM") {
    ASSIGN_OR_RETURN(EvpPkeyPtr pkey, EcFromJwk(jwk));
    return Wrap(std::move(pkey));
  }
  if (kty.empty()) {
    return Bad("The JWK has no 'kty'.");
  }
  return Bad("The key type '" + kty.substr(0, 32) + "' cannot be imported; use RSA or EC.");
}

StatusOr<std::unique_ptr<AsymKey>> AsymKey::FromPrivatePem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  // A null password callback with an empty password: an encrypted PEM fails
  // instead of prompting on the terminal.
  char empty[] = "";
  EvpPkeyPtr pkey(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, empty) : nullptr);
  ERR_clear_error();
  if (!pkey) {
    return Bad("The text is not an unencrypted PEM private key.");
  }
  return Wrap(std::move(pkey));
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
  int len = i2d_PUBKEY(pkey_.get(), nullptr);
  if (len <= 0) {
    std::abort();
  }
  std::string out(static_cast<size_t>(len), '\0');
  unsigned char* p = reinterpret_cast<unsigned char*>(out.data());
  i2d_PUBKEY(pkey_.get(), &p);
  return out;
}

std::string AsymKey::PublicKeyPem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), pkey_.get()) != 1) {
    std::abort();
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

}  // namespace coffer::crypto
