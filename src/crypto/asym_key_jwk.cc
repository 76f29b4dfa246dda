// AsymKey's import of private JWKs (RFC 7517/7518): every check listed on
// AsymKey::FromJwk; and the export of one (AsymKey::PrivateJwk).

#include <string>
#include <utility>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "common/encoding.h"
#include "crypto/asym_key_internal.h"
#include "crypto/openssl_ptr.h"
#include "crypto/primitives.h"

namespace coffer::crypto::asym_internal {
namespace {

// Enough for a 4096-bit integer with generous leading zeros, in base64url.
constexpr size_t kMaxJwkFieldChars = 2048;

using BnCtxPtr = std::unique_ptr<BN_CTX, OpenSslDeleter<BN_CTX, BN_CTX_free>>;

// JwkInteger decodes the base64url member `name` of `jwk` to a BIGNUM.
// Returns null with `status` set when it is malformed, or absent and
// `required`; null with `status` untouched when an optional one is absent.
SecretBignumPtr JwkInteger(const Json& jwk, const char* name, bool required, Status& status) {
  auto it = jwk.find(name);
  if (it == jwk.end() || it->is_null()) {
    if (required) {
      status = BadParameter(std::string("The JWK has no '") + name + "'.");
    }
    return nullptr;
  }
  if (!it->is_string()) {
    status = BadParameter(std::string("JWK member '") + name + "' is not a string.");
    return nullptr;
  }
  const std::string& text = it->get_ref<const std::string&>();
  if (text.size() > kMaxJwkFieldChars) {
    status = BadParameter(std::string("JWK member '") + name + "' is too long.");
    return nullptr;
  }
  std::optional<std::string> bytes = Base64UrlDecode(text);
  if (!bytes || bytes->empty()) {
    status = BadParameter(std::string("JWK member '") + name + "' is not base64url.");
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

// CheckPublicRsa refuses a modulus of another size than Coffer holds and
// an exponent that is even, 1, or longer than 64 bits.
Status CheckPublicRsa(const BIGNUM* n, const BIGNUM* e) {
  int bits = BN_num_bits(n);
  if (!IsAllowedRsaSize(bits)) {
    return BadParameter("The RSA key is " + std::to_string(bits) +
                        " bits; the supported sizes are 2048, 3072 and 4096.");
  }
  if (!BN_is_odd(e) || BN_is_one(e) || BN_num_bits(e) > 64) {
    return BadParameter("The RSA public exponent 'e' must be odd, at least 3 and at most 64 bits.");
  }
  return OkStatus();
}

// FromParams builds a key pair, or a public key when `selection` is
// EVP_PKEY_PUBLIC_KEY; `refusal` is the error when OpenSSL refuses the
// parameters (EC: a point not on the curve).
StatusOr<EvpPkeyPtr> FromParams(const char* type, OSSL_PARAM_BLD* bld, const char* refusal,
                                int selection = EVP_PKEY_KEYPAIR) {
  OsslParamPtr params(OSSL_PARAM_BLD_to_param(bld));
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* made = nullptr;
  bool ok = params && ctx && EVP_PKEY_fromdata_init(ctx.get()) == 1 &&
            EVP_PKEY_fromdata(ctx.get(), &made, selection, params.get()) == 1;
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
    return BadParameter(refusal);
  }
  return pkey;
}

}  // namespace

bool PassesKeyCheck(EVP_PKEY* pkey) {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
  bool ok = ctx && EVP_PKEY_check(ctx.get()) == 1;
  ERR_clear_error();
  return ok;
}

StatusOr<EvpPkeyPtr> RsaFromJwk(const Json& jwk) {
  Status status;
  if (jwk.find("d") == jwk.end()) {
    return BadParameter(
        "The JWK has no private key ('d'); a key is imported with its private half.");
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
  RETURN_IF_ERROR(CheckPublicRsa(n.get(), e.get()));
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
    return BadParameter("The RSA JWK is inconsistent: 'p' * 'q' is not 'n'.");
  }
  BN_set_flags(d.get(), BN_FLG_CONSTTIME);
  bool de_ok = BN_mul(de.get(), d.get(), e.get(), ctx.get()) == 1 &&
               BN_mod(r.get(), de.get(), pm1.get(), ctx.get()) == 1 && BN_is_one(r.get()) &&
               BN_mod(r.get(), de.get(), qm1.get(), ctx.get()) == 1 && BN_is_one(r.get());
  if (!de_ok) {
    return BadParameter("The RSA JWK is inconsistent: 'd' does not invert 'e'.");
  }
  crt[2].reset(BN_mod_inverse(nullptr, q.get(), p.get(), ctx.get()));
  if (!crt[2] || BN_mod(crt[0].get(), d.get(), pm1.get(), ctx.get()) != 1 ||
      BN_mod(crt[1].get(), d.get(), qm1.get(), ctx.get()) != 1) {
    ERR_clear_error();
    return BadParameter("The RSA JWK is inconsistent: its CRT values cannot be derived.");
  }
  for (int i = 0; i < 3; ++i) {
    if (given[i] && BN_cmp(given[i].get(), crt[i].get()) != 0) {
      return BadParameter(std::string("The RSA JWK is inconsistent: '") + crt_names[i] +
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
  if (!PassesKeyCheck(pkey.get())) {
    return BadParameter(kInvalid);
  }
  return pkey;
}

StatusOr<EvpPkeyPtr> EcFromJwk(const Json& jwk) {
  std::string crv_name = StringMember(jwk, "crv");
  if (crv_name.empty()) {
    return BadParameter("The EC JWK has no 'crv'.");
  }
  ASSIGN_OR_RETURN(EcCurve curve, ParseEcCurve(crv_name));
  const CurveInfo& info = CurveInfoOf(curve);
  if (jwk.find("d") == jwk.end()) {
    return BadParameter(
        "The JWK has no private key ('d'); a key is imported with its private half.");
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
    return BadParameter(std::string("The EC JWK's 'x', 'y' or 'd' is longer than ") +
                        info.jwk_name + " allows.");
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
  if (!PassesKeyCheck(pkey.get())) {
    return BadParameter(kInvalid);
  }
  return pkey;
}

StatusOr<EvpPkeyPtr> PublicFromJwk(const Json& jwk) {
  if (!jwk.is_object()) {
    return BadParameter("The key is not a JSON object.");
  }
  std::string kty = StringMember(jwk, "kty");
  Status status;
  OsslParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld) {
    return InternalError("cannot build key parameters");
  }
  if (kty == "RSA" || kty == "RSA-HSM") {
    auto n = JwkInteger(jwk, "n", true, status);
    auto e = n ? JwkInteger(jwk, "e", true, status) : nullptr;
    if (!e) {
      return status;
    }
    RETURN_IF_ERROR(CheckPublicRsa(n.get(), e.get()));
    if (OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1) {
      return InternalError("cannot build RSA parameters");
    }
    return FromParams("RSA", bld.get(), "The RSA JWK is not a valid public key.",
                      EVP_PKEY_PUBLIC_KEY);
  }
  if (kty == "EC" || kty == "EC-HSM") {
    std::string crv_name = StringMember(jwk, "crv");
    if (crv_name.empty()) {
      return BadParameter("The EC JWK has no 'crv'.");
    }
    ASSIGN_OR_RETURN(EcCurve curve, ParseEcCurve(crv_name));
    const CurveInfo& info = CurveInfoOf(curve);
    auto x = JwkInteger(jwk, "x", true, status);
    auto y = x ? JwkInteger(jwk, "y", true, status) : nullptr;
    if (!y) {
      return status;
    }
    const int max_bytes = static_cast<int>(info.coordinate_bytes);
    if (BN_num_bytes(x.get()) > max_bytes || BN_num_bytes(y.get()) > max_bytes) {
      return BadParameter(std::string("The EC JWK's 'x' or 'y' is longer than ") + info.jwk_name +
                          " allows.");
    }
    std::string point = "\x04" + BnToPadded(x.get(), info.coordinate_bytes) +
                        BnToPadded(y.get(), info.coordinate_bytes);
    if (OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, info.openssl_name,
                                        0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                         point.size()) != 1) {
      return InternalError("cannot build EC parameters");
    }
    constexpr char refusal[] =
        "The EC JWK is not a valid public key: its point is not on the curve.";
    ASSIGN_OR_RETURN(EvpPkeyPtr pkey, FromParams("EC", bld.get(), refusal, EVP_PKEY_PUBLIC_KEY));
    EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
    bool on_curve = ctx && EVP_PKEY_public_check(ctx.get()) == 1;
    ERR_clear_error();
    if (!on_curve) {
      return BadParameter(refusal);
    }
    return pkey;
  }
  if (kty.empty()) {
    return BadParameter("The JWK has no 'kty'.");
  }
  return BadParameter("The key type '" + kty.substr(0, 32) + "' is not supported; use RSA or EC.");
}

}  // namespace coffer::crypto::asym_internal

namespace coffer::crypto {
namespace {

// The base64url of `pkey`'s integer parameter `name`, minimal or left-padded
// to `length` bytes; the raw bytes are wiped. Empty if the key lacks it.
std::string JwkMember(EVP_PKEY* pkey, const char* name, size_t length = 0) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(pkey, name, &raw) != 1) {
    ERR_clear_error();
    return "";
  }
  asym_internal::SecretBignumPtr bn(raw);
  size_t size = length != 0 ? length : static_cast<size_t>(BN_num_bytes(bn.get()));
  SecureBytes bytes(size);
  if (BN_bn2binpad(bn.get(), bytes.data(), static_cast<int>(size)) < 0) {
    return "";
  }
  return Base64UrlEncode(bytes.view());
}

}  // namespace

Json AsymKey::PrivateJwk() const {
  Json jwk = public_jwk_;
  EVP_PKEY* pkey = pkey_.get();
  if (type_ == AsymKeyType::kRsa) {
    // A key always has d, p and q (Wrap and the imports require them); the
    // CRT values are left out if a PEM key came without them, and FromJwk
    // derives them again.
    for (const auto& [member, param] :
         {std::pair{"d", OSSL_PKEY_PARAM_RSA_D}, std::pair{"p", OSSL_PKEY_PARAM_RSA_FACTOR1},
          std::pair{"q", OSSL_PKEY_PARAM_RSA_FACTOR2},
          std::pair{"dp", OSSL_PKEY_PARAM_RSA_EXPONENT1},
          std::pair{"dq", OSSL_PKEY_PARAM_RSA_EXPONENT2},
          std::pair{"qi", OSSL_PKEY_PARAM_RSA_COEFFICIENT1}}) {
      if (std::string value = JwkMember(pkey, param); !value.empty()) {
        jwk[member] = std::move(value);
      }
    }
  } else {
    jwk["d"] = JwkMember(pkey, OSSL_PKEY_PARAM_PRIV_KEY,
                         asym_internal::CurveInfoOf(*curve_).coordinate_bytes);
  }
  return jwk;
}

}  // namespace coffer::crypto
