// The operations of AsymKey: encrypt/decrypt (also wrap/unwrap) and
// sign/verify over a caller's digest, with Key Vault's algorithm names.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

#include "crypto/asym_key.h"
#include "crypto/asym_key_internal.h"
#include "crypto/openssl_ptr.h"

namespace coffer::crypto {
namespace {

enum class AlgKind { kOaep, kPkcs1Encrypt, kRsaPkcs1Sign, kRsaPssSign, kEcdsa };

struct Algorithm {
  const char* name;
  AlgKind kind;
  const EVP_MD* (*md)();
  size_t digest_length;  // sign algorithms: the digest they take
  size_t overhead;       // encrypt algorithms: modulus bytes the padding uses
  EcCurve curve;         // kEcdsa only
};

constexpr Algorithm kAlgorithms[] = {
    {"RSA-OAEP", AlgKind::kOaep, EVP_sha1, 0, 2 * 20 + 2, EcCurve::kP256},
    {"RSA-OAEP-256", AlgKind::kOaep, EVP_sha256, 0, 2 * 32 + 2, EcCurve::kP256},
    {"RSA1_5", AlgKind::kPkcs1Encrypt, nullptr, 0, 11, EcCurve::kP256},
    {"RS256", AlgKind::kRsaPkcs1Sign, EVP_sha256, 32, 0, EcCurve::kP256},
    {"RS384", AlgKind::kRsaPkcs1Sign, EVP_sha384, 48, 0, EcCurve::kP256},
    {"RS512", AlgKind::kRsaPkcs1Sign, EVP_sha512, 64, 0, EcCurve::kP256},
    {"PS256", AlgKind::kRsaPssSign, EVP_sha256, 32, 0, EcCurve::kP256},
    {"PS384", AlgKind::kRsaPssSign, EVP_sha384, 48, 0, EcCurve::kP256},
    {"PS512", AlgKind::kRsaPssSign, EVP_sha512, 64, 0, EcCurve::kP256},
    {"ES256", AlgKind::kEcdsa, nullptr, 32, 0, EcCurve::kP256},
    {"ES384", AlgKind::kEcdsa, nullptr, 48, 0, EcCurve::kP384},
    {"ES512", AlgKind::kEcdsa, nullptr, 64, 0, EcCurve::kP521},
    {"ES256K", AlgKind::kEcdsa, nullptr, 32, 0, EcCurve::kP256K},
};

using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, OpenSslDeleter<ECDSA_SIG, ECDSA_SIG_free>>;

using asym_internal::BadParameter;

Status DecryptionFailed() {
  return BadParameter(std::string(kDecryptionFailedMessage));
}

std::string Quoted(std::string_view alg) {
  return "'" + std::string(alg.substr(0, 32)) + "'";
}

bool IsEncryption(AlgKind kind) {
  return kind == AlgKind::kOaep || kind == AlgKind::kPkcs1Encrypt;
}

// FindAlgorithm looks `alg` up among the algorithms of one purpose.
StatusOr<const Algorithm*> FindAlgorithm(std::string_view alg, bool encryption) {
  for (const auto& a : kAlgorithms) {
    if (alg == a.name) {
      if (IsEncryption(a.kind) != encryption) {
        return BadParameter("The algorithm " + Quoted(alg) +
                            (encryption ? " does not encrypt." : " does not sign."));
      }
      return &a;
    }
  }
  return BadParameter("The algorithm " + Quoted(alg) + " is not supported.");
}

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// Constant-time helpers: each mask is all ones or all zeros, computed
// without branches. The barrier keeps the compiler from turning a mask back
// into a branch.
unsigned Barrier(unsigned v) {
#if defined(__GNUC__) || defined(__clang__)
  __asm__("" : "+r"(v));
#endif
  return v;
}
unsigned MaskFromMsb(unsigned v) {
  return 0u - (Barrier(v) >> (sizeof(unsigned) * 8 - 1));
}
unsigned CtIsZero(unsigned v) {
  return MaskFromMsb(~v & (v - 1));
}
unsigned CtEq(unsigned a, unsigned b) {
  return CtIsZero(a ^ b);
}
unsigned CtLt(unsigned a, unsigned b) {
  return MaskFromMsb(a ^ ((a ^ b) | ((a - b) ^ b)));
}
unsigned CtGe(unsigned a, unsigned b) {
  return ~CtLt(a, b);
}
unsigned CtSelect(unsigned mask, unsigned a, unsigned b) {
  return (mask & a) | (~mask & b);
}

// Prf is implicit rejection's HMAC-SHA256 counter-mode PRF: block i is
// HMAC(key, be16(i) || label || be16(8 * out.size())).
bool Prf(const unsigned char* key, std::string_view label, SecureBytes& out) {
  const size_t bits = out.size() * 8;
  std::string input(2, '\0');
  input += label;
  input.push_back(static_cast<char>((bits >> 8) & 0xff));
  input.push_back(static_cast<char>(bits & 0xff));
  unsigned char block[SHA256_DIGEST_LENGTH];
  for (size_t pos = 0, i = 0; pos < out.size(); pos += sizeof(block), ++i) {
    input[0] = static_cast<char>((i >> 8) & 0xff);
    input[1] = static_cast<char>(i & 0xff);
    unsigned int len = 0;
    if (HMAC(EVP_sha256(), key, SHA256_DIGEST_LENGTH, Bytes(input), input.size(), block, &len) ==
        nullptr) {
      return false;
    }
    size_t take = std::min(sizeof(block), out.size() - pos);
    std::memcpy(out.data() + pos, block, take);
  }
  OPENSSL_cleanse(block, sizeof(block));
  return true;
}

// CheckSignature refuses a sign or verify request the key cannot serve: an
// alg for the other key type or another curve, or a digest of the wrong
// length.
Status CheckSignature(const Algorithm& a, AsymKeyType type, std::optional<EcCurve> curve,
                      std::string_view digest) {
  if (a.kind == AlgKind::kEcdsa) {
    if (type != AsymKeyType::kEc) {
      return BadParameter("The algorithm " + Quoted(a.name) + " needs an EC key; this key is RSA.");
    }
    if (curve != a.curve) {
      return BadParameter("The algorithm " + Quoted(a.name) + " needs a " +
                          std::string(EcCurveName(a.curve)) + " key; this key is " +
                          std::string(EcCurveName(*curve)) + ".");
    }
  } else if (type != AsymKeyType::kRsa) {
    return BadParameter("The algorithm " + Quoted(a.name) + " needs an RSA key; this key is EC.");
  }
  if (digest.size() != a.digest_length) {
    return BadParameter("The digest for " + std::string(a.name) + " must be " +
                        std::to_string(a.digest_length) + " bytes, not " +
                        std::to_string(digest.size()) + ".");
  }
  return OkStatus();
}

// SetRsaSignature sets PKCS#1 v1.5 (OpenSSL adds the DigestInfo for the md)
// or PSS with MGF1 on the same hash and `salt_length`.
bool SetRsaSignature(EVP_PKEY_CTX* ctx, const Algorithm& a, int salt_length) {
  if (a.kind == AlgKind::kRsaPkcs1Sign) {
    return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
           EVP_PKEY_CTX_set_signature_md(ctx, a.md()) == 1;
  }
  return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) == 1 &&
         EVP_PKEY_CTX_set_signature_md(ctx, a.md()) == 1 &&
         EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, a.md()) == 1 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, salt_length) == 1;
}

}  // namespace

StatusOr<std::string> HashForSigning(std::string_view alg, std::string_view data) {
  ASSIGN_OR_RETURN(const Algorithm* a, FindAlgorithm(alg, false));
  const EVP_MD* md = a->digest_length == 32   ? EVP_sha256()
                     : a->digest_length == 48 ? EVP_sha384()
                                              : EVP_sha512();
  std::string out(static_cast<size_t>(EVP_MD_get_size(md)), '\0');
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), reinterpret_cast<unsigned char*>(out.data()), &length,
                 md, nullptr) != 1 ||
      length != out.size()) {
    return InternalError("hashing failed");
  }
  return out;
}

StatusOr<std::string> AsymKey::Encrypt(std::string_view alg, std::string_view plaintext) const {
  ASSIGN_OR_RETURN(const Algorithm* a, FindAlgorithm(alg, true));
  if (type_ != AsymKeyType::kRsa) {
    return BadParameter("An EC key cannot encrypt; " + Quoted(alg) + " needs an RSA key.");
  }
  const size_t k = static_cast<size_t>((bits_ + 7) / 8);
  if (plaintext.size() > k - a->overhead) {
    return BadParameter("The plaintext is too long: " + std::string(a->name) + " with a " +
                        std::to_string(bits_) + "-bit key takes at most " +
                        std::to_string(k - a->overhead) + " bytes.");
  }
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey_.get(), nullptr));
  bool ok = ctx && EVP_PKEY_encrypt_init(ctx.get()) == 1;
  if (ok && a->kind == AlgKind::kOaep) {
    ok = EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) == 1 &&
         EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), a->md()) == 1 &&
         EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), a->md()) == 1;
  } else if (ok) {
    ok = EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) == 1;
  }
  std::string out(k, '\0');
  size_t out_len = out.size();
  ok = ok && EVP_PKEY_encrypt(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &out_len,
                              Bytes(plaintext), plaintext.size()) == 1;
  ERR_clear_error();
  if (!ok) {
    return InternalError("RSA encryption failed");
  }
  out.resize(out_len);
  return out;
}

StatusOr<SecureBytes> AsymKey::Decrypt(std::string_view alg, std::string_view ciphertext) const {
  ASSIGN_OR_RETURN(const Algorithm* a, FindAlgorithm(alg, true));
  if (type_ != AsymKeyType::kRsa) {
    return BadParameter("An EC key cannot decrypt; " + Quoted(alg) + " needs an RSA key.");
  }
  // The length is public (every valid ciphertext is exactly k bytes), so
  // refusing it early tells an attacker nothing they did not know.
  const size_t k = static_cast<size_t>((bits_ + 7) / 8);
  if (ciphertext.size() != k) {
    return DecryptionFailed();
  }
  if (a->kind == AlgKind::kPkcs1Encrypt) {
    return DecryptPkcs1ImplicitRejection(ciphertext);
  }
  // SECURITY: OpenSSL checks OAEP padding in constant time and reports one
  // error for every way it can fail; we map all of them to one message.
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey_.get(), nullptr));
  SecureBytes out(k);
  size_t out_len = out.size();
  bool ok =
      ctx && EVP_PKEY_decrypt_init(ctx.get()) == 1 &&
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) == 1 &&
      EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), a->md()) == 1 &&
      EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), a->md()) == 1 &&
      EVP_PKEY_decrypt(ctx.get(), out.data(), &out_len, Bytes(ciphertext), ciphertext.size()) == 1;
  ERR_clear_error();
  if (!ok) {
    return DecryptionFailed();
  }
  out.Truncate(out_len);
  return out;
}

StatusOr<SecureBytes> AsymKey::DecryptPkcs1ImplicitRejection(std::string_view ciphertext) const {
  const size_t k = ciphertext.size();
  // The raw RSA decryption (blinded, constant-time exponentiation). It fails
  // only for a ciphertext not below the modulus, which is public.
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey_.get(), nullptr));
  SecureBytes em(k);
  size_t em_len = em.size();
  bool ok = ctx && EVP_PKEY_decrypt_init(ctx.get()) == 1 &&
            EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_NO_PADDING) == 1 &&
            EVP_PKEY_decrypt(ctx.get(), em.data(), &em_len, Bytes(ciphertext), k) == 1 &&
            em_len == k;
  ERR_clear_error();
  if (!ok) {
    return DecryptionFailed();
  }

  // The synthetic message and its length, derived from the key and the
  // ciphertext, are computed every time, whatever the padding holds.
  SecureBytes kdk(SHA256_DIGEST_LENGTH);
  unsigned int kdk_len = 0;
  SecureBytes synthetic(k);
  SecureBytes lengths(256);
  if (HMAC(EVP_sha256(), rejection_key_.data(), static_cast<int>(rejection_key_.size()),
           Bytes(ciphertext), k, kdk.data(), &kdk_len) == nullptr ||
      !Prf(kdk.data(), "message", synthetic) || !Prf(kdk.data(), "length", lengths)) {
    return InternalError("RSA1_5 decryption failed");
  }
  // The synthetic length: the last of 128 16-bit candidates, masked to the
  // bit length of the largest message, that is below that largest length.
  const unsigned max_length = static_cast<unsigned>(k - 2 - 8);
  unsigned mask = max_length;
  mask |= mask >> 1;
  mask |= mask >> 2;
  mask |= mask >> 4;
  mask |= mask >> 8;
  unsigned synthetic_length = 0;
  for (size_t i = 0; i < lengths.size(); i += 2) {
    unsigned candidate =
        ((static_cast<unsigned>(lengths.data()[i]) << 8) | lengths.data()[i + 1]) & mask;
    synthetic_length = CtSelect(CtLt(candidate, max_length), candidate, synthetic_length);
  }
  const unsigned synthetic_index = static_cast<unsigned>(k) - synthetic_length;

  // The real message: 0x00 0x02, at least eight non-zero padding bytes, a
  // zero separator, then the message. Every byte is read whatever it holds.
  const unsigned char* from = em.data();
  unsigned good = CtIsZero(from[0]) & CtEq(from[1], 2);
  unsigned found_zero = 0;
  unsigned zero_index = 0;
  for (size_t i = 2; i < k; ++i) {
    unsigned is_zero = CtIsZero(from[i]);
    zero_index = CtSelect(~found_zero & is_zero, static_cast<unsigned>(i), zero_index);
    found_zero |= is_zero;
  }
  good &= CtGe(zero_index, 2 + 8);
  const unsigned message_index = CtSelect(good, zero_index + 1, synthetic_index);

  // Which buffer the bytes come from is chosen per byte with a mask, so the
  // memory touched does not depend on `good`; the length alone says nothing,
  // since a synthetic message has a pseudo-random length too.
  SecureBytes out(k - message_index);
  for (size_t i = message_index, j = 0; i < k; ++i, ++j) {
    out.data()[j] = static_cast<unsigned char>(CtSelect(good, from[i], synthetic.data()[i]));
  }
  return out;
}

StatusOr<std::string> AsymKey::Sign(std::string_view alg, std::string_view digest) const {
  ASSIGN_OR_RETURN(const Algorithm* a, FindAlgorithm(alg, false));
  RETURN_IF_ERROR(CheckSignature(*a, type_, curve_, digest));
  if (a->kind == AlgKind::kEcdsa) {
    return SignEcdsa(digest);
  }
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey_.get(), nullptr));
  bool ok = ctx && EVP_PKEY_sign_init(ctx.get()) == 1 &&
            SetRsaSignature(ctx.get(), *a, static_cast<int>(a->digest_length));
  size_t len = 0;
  ok = ok && EVP_PKEY_sign(ctx.get(), nullptr, &len, Bytes(digest), digest.size()) == 1;
  std::string sig(len, '\0');
  ok = ok && EVP_PKEY_sign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                           Bytes(digest), digest.size()) == 1;
  ERR_clear_error();
  if (!ok) {
    return InternalError("RSA signing failed");
  }
  sig.resize(len);
  return sig;
}

StatusOr<bool> AsymKey::Verify(std::string_view alg, std::string_view digest,
                               std::string_view signature) const {
  ASSIGN_OR_RETURN(const Algorithm* a, FindAlgorithm(alg, false));
  RETURN_IF_ERROR(CheckSignature(*a, type_, curve_, digest));
  if (a->kind == AlgKind::kEcdsa) {
    return VerifyEcdsa(digest, signature);
  }
  if (signature.size() != static_cast<size_t>((bits_ + 7) / 8)) {
    return false;
  }
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey_.get(), nullptr));
  bool ok = ctx && EVP_PKEY_verify_init(ctx.get()) == 1 &&
            SetRsaSignature(ctx.get(), *a, RSA_PSS_SALTLEN_AUTO) &&
            EVP_PKEY_verify(ctx.get(), Bytes(signature), signature.size(), Bytes(digest),
                            digest.size()) == 1;
  ERR_clear_error();
  return ok;
}

StatusOr<std::string> AsymKey::SignEcdsa(std::string_view digest) const {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_dup(ecdsa_sign_template_.get()));
  size_t der_len = 0;
  bool ok = ctx && EVP_PKEY_sign(ctx.get(), nullptr, &der_len, Bytes(digest), digest.size()) == 1;
  std::string der(der_len, '\0');
  ok = ok && EVP_PKEY_sign(ctx.get(), reinterpret_cast<unsigned char*>(der.data()), &der_len,
                           Bytes(digest), digest.size()) == 1;
  const unsigned char* p = Bytes(der);
  EcdsaSigPtr sig(ok ? d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len)) : nullptr);
  ERR_clear_error();
  if (!sig) {
    return InternalError("ECDSA signing failed");
  }
  // JWS form: r and s, each left-padded to the coordinate length.
  const int half = (bits_ + 7) / 8;
  std::string out(2 * static_cast<size_t>(half), '\0');
  unsigned char* o = reinterpret_cast<unsigned char*>(out.data());
  if (BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), o, half) != half ||
      BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), o + half, half) != half) {
    return InternalError("ECDSA signature out of range");
  }
  return out;
}

bool AsymKey::VerifyEcdsa(std::string_view digest, std::string_view signature) const {
  const size_t half = static_cast<size_t>((bits_ + 7) / 8);
  if (signature.size() != 2 * half) {
    return false;
  }
  EcdsaSigPtr sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(Bytes(signature), static_cast<int>(half), nullptr);
  BIGNUM* s = BN_bin2bn(Bytes(signature) + half, static_cast<int>(half), nullptr);
  if (!sig || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return false;
  }
  unsigned char* der = nullptr;
  int der_len = i2d_ECDSA_SIG(sig.get(), &der);
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_dup(ecdsa_verify_template_.get()));
  bool ok = der_len > 0 && ctx &&
            EVP_PKEY_verify(ctx.get(), der, static_cast<size_t>(der_len), Bytes(digest),
                            digest.size()) == 1;
  OPENSSL_free(der);
  ERR_clear_error();
  return ok;
}

}  // namespace coffer::crypto
