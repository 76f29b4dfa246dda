#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/json.h"
#include "common/status.h"
#include "crypto/evp_pkey_ptr.h"
#include "crypto/secure_bytes.h"

// OpenSSL's EVP_PKEY_CTX, declared without OpenSSL's headers (as in
// evp_pkey_ptr.h).
struct evp_pkey_ctx_st;

namespace coffer::crypto {

namespace asym_internal {
struct KeyAccess;  // asym_key_internal.h
}  // namespace asym_internal

// The material of a Key Vault key (docs/encryption.md, "Key Vault key
// material"): an RSA or EC key pair and every operation the keys API runs
// on it.
//
// Errors. Every refusal of caller input is kInvalidArgument with reason
// "BadParameter" (Key Vault's error code for it); kInternal means OpenSSL
// failed where it should not. No message ever carries key material, a
// plaintext or a ciphertext.

enum class AsymKeyType { kRsa, kEc };
enum class EcCurve { kP256, kP384, kP521, kP256K };

// ParseEcCurve maps a JWK `crv` ("P-256", "P-384", "P-521", "P-256K", and the
// legacy spelling "SECP256K1") to the curve. kInvalidArgument otherwise.
StatusOr<EcCurve> ParseEcCurve(std::string_view crv);
// EcCurveName is the JWK name Key Vault returns ("P-256K" for secp256k1).
std::string_view EcCurveName(EcCurve curve);

// PublicKeyDerFromJwk converts the public half of a JWK - RSA `n`, `e`;
// EC `crv`, `x`, `y`; kty with or without -HSM; every other member,
// private ones included, ignored - to SubjectPublicKeyInfo DER, and
// PublicKeyPemFromJwk to PEM ("PUBLIC KEY"), as `az keyvault key download`
// and the Azure CSI provider write a key. The same size, curve and encoding
// rules as AsymKey::FromJwk, and an EC point must be on its curve;
// kInvalidArgument ("BadParameter") otherwise.
StatusOr<std::string> PublicKeyDerFromJwk(const Json& jwk);
StatusOr<std::string> PublicKeyPemFromJwk(const Json& jwk);

// The one message of every failed decryption (kInvalidArgument,
// "BadParameter"): a wrong length, a value out of range for the modulus or
// bad OAEP padding all read the same. See AsymKey::Decrypt.
inline constexpr std::string_view kDecryptionFailedMessage =
    "The ciphertext could not be decrypted with this key and algorithm.";

// HashForSigning hashes `data` with the hash of a sign algorithm (RS256,
// PS256, ES256, ES256K: SHA-256; *384: SHA-384; *512: SHA-512), giving the
// digest Sign and Verify take. kInvalidArgument ("BadParameter") for an
// algorithm that does not sign.
StatusOr<std::string> HashForSigning(std::string_view alg, std::string_view data);

// AsymKey is one key version's key pair. It always holds the private half:
// Key Vault keys are created or imported with it, and only the public half
// ever leaves (PublicJwk).
//
// Immutable after creation and thread-safe: every method is const and may be
// called from many threads at once. The key is parsed once, when the object
// is made; each operation only makes its own short-lived OpenSSL context
// around it (about 2.5 us; for ECDSA, whose signature takes about 28 us, a
// copy of a context prepared once, about 0.1 us).
class AsymKey {
 public:
  AsymKey(const AsymKey&) = delete;
  AsymKey& operator=(const AsymKey&) = delete;
  ~AsymKey();

  // --- Making one ---------------------------------------------------------

  // GenerateRsa makes an RSA key of `bits` 2048, 3072 or 4096 with public
  // exponent 65537. kInvalidArgument for any other size.
  static StatusOr<std::unique_ptr<AsymKey>> GenerateRsa(int bits);
  // GenerateEc makes a key on `curve`.
  static StatusOr<std::unique_ptr<AsymKey>> GenerateEc(EcCurve curve);
  // Generate follows a create request: `kty` "RSA" or "EC" (the -HSM types
  // are the service's decision and refused here); for RSA `key_size` 0 means
  // 2048 and `crv` must be empty; for EC `crv` empty means P-256 and
  // `key_size` must be 0. kInvalidArgument for anything else.
  static StatusOr<std::unique_ptr<AsymKey>> Generate(std::string_view kty, int key_size,
                                                     std::string_view crv);

  // FromJwk imports a private JWK (a JSON object, RFC 7517/7518), as Key
  // Vault's import takes it. Checks, in this order, each failure a
  // kInvalidArgument naming the field and never its value:
  //   - `kty` is "RSA" or "EC" (or the -HSM spelling of either: the material
  //     is the same; whether HSM is allowed is the service's decision);
  //   - every binary field is a string of base64url, padded or not, of at
  //     most 2048 characters; integers may carry leading zero bytes;
  //   - the private half is present (`d`; RSA also `p` and `q`): a public
  //     JWK cannot be imported;
  //   - RSA: the modulus is 2048, 3072 or 4096 bits (the sizes Key Vault
  //     creates; other sizes are refused so that every key the vault holds
  //     is one it could have made); `e` is odd, at least 3 and at most 64
  //     bits; n = p*q; d*e = 1 mod p-1 and mod q-1; `dp`, `dq`, `qi` are
  //     derived when absent and must equal the derived values when present;
  //     and OpenSSL's full key check (primality of p and q) passes;
  //   - EC: `crv` is a supported curve; `x`, `y` and `d` fit the curve's
  //     coordinate length once leading zeros are dropped; the point is on
  //     the curve and is d*G.
  // Other members (kid, key_ops, key_hsm, ...) are ignored.
  static StatusOr<std::unique_ptr<AsymKey>> FromJwk(const Json& jwk);

  // FromPrivatePem reads a PEM private key (PKCS#8 or traditional, no
  // password), as the CLI's import of a PEM file. FromJwk's size and curve
  // rules and OpenSSL's full key check; kInvalidArgument otherwise.
  static StatusOr<std::unique_ptr<AsymKey>> FromPrivatePem(std::string_view pem);

  // --- The sealed-at-rest form ----------------------------------------------

  // ToPrivateDer is the PKCS#8 DER of the key pair, which the service seals
  // under the vault's data key. The buffer wipes itself when freed.
  SecureBytes ToPrivateDer() const;
  // FromPrivateDer opens what ToPrivateDer wrote. kDataLoss if `der` is not
  // a supported RSA or EC private key (sealed data that opened, yet is not a
  // key, is corrupt).
  static StatusOr<std::unique_ptr<AsymKey>> FromPrivateDer(std::string_view der);

  // --- What it is -----------------------------------------------------------

  AsymKeyType type() const { return type_; }
  // "RSA" or "EC", the JWK kty of the material.
  std::string_view kty() const;
  // The RSA modulus size in bits; 0 for EC.
  int key_size() const { return type_ == AsymKeyType::kRsa ? bits_ : 0; }
  // The curve of an EC key; nullopt for RSA.
  std::optional<EcCurve> curve() const { return curve_; }

  // PublicJwk is the public JWK: RSA {"kty","n","e"} (`n` minimal
  // big-endian, no leading zero byte; `e` minimal, "AQAB" for 65537), EC
  // {"kty","crv","x","y"} with fixed-length coordinates (32, 48, 66 bytes).
  // kty is "RSA" or "EC". Never a private member. The service adds kid and
  // key_ops (and its -HSM kty when it has one).
  const Json& PublicJwk() const { return public_jwk_; }
  // PrivateJwk is the whole key pair as the private JWK Key Vault's import
  // takes, which FromJwk reads back to the same key: RSA {"kty","n","e","d",
  // "p","q","dp","dq","qi"}, each integer minimal big-endian; EC {"kty",
  // "crv","x","y","d"}, each the curve's coordinate length (RFC 7518
  // §6.2.2.1). kty is "RSA" or "EC"; no kid or key_ops.
  // SECURITY: the result holds the private key in plain text, in strings
  // that are not wiped when freed. It exists to send a key to a vault (the
  // CLI's `key import` of a PEM file, a short-lived process); the server
  // never calls it, and it must never be logged or printed.
  Json PrivateJwk() const;
  // The public key as SubjectPublicKeyInfo, DER and PEM ("PUBLIC KEY").
  std::string PublicKeyDer() const;
  std::string PublicKeyPem() const;

  // --- Operations ----------------------------------------------------------

  // Encrypt (also wrapKey) with `alg` "RSA-OAEP" (SHA-1, MGF1-SHA-1),
  // "RSA-OAEP-256" (SHA-256, MGF1-SHA-256), both with an empty label, or
  // "RSA1_5" (PKCS#1 v1.5). The plaintext may be at most k-42, k-66 and
  // k-11 bytes respectively, k the modulus length in bytes.
  // kInvalidArgument ("BadParameter") for an unknown alg, an alg the key
  // cannot do (any alg on an EC key), or a plaintext too long.
  StatusOr<std::string> Encrypt(std::string_view alg, std::string_view plaintext) const;

  // Decrypt (also unwrapKey) undoes Encrypt. An unknown or unfitting alg is
  // kInvalidArgument with a message naming the alg. Every other failure -
  // a ciphertext that is not exactly k bytes, is not below the modulus, or
  // whose OAEP padding does not check - is kInvalidArgument with exactly
  // kDecryptionFailedMessage.
  // SECURITY: RSA1_5 never fails on padding. A ciphertext whose PKCS#1 v1.5
  // padding is wrong decrypts to a synthetic message derived from the key
  // and the ciphertext (implicit rejection, draft-irtf-cfrg-rsa-guidance;
  // the same bytes OpenSSL 3.2 and later return), and the check and the
  // choice between the two run in constant time, so neither the answer nor
  // its timing tells an attacker whether the padding was valid
  // (Bleichenbacher, Marvin). OpenSSL 3.0 on Debian 12 has no implicit
  // rejection, so asym_key_ops.cc does the unpadding itself over a raw RSA
  // decryption.
  StatusOr<SecureBytes> Decrypt(std::string_view alg, std::string_view ciphertext) const;

  // Sign signs a digest the caller computed. `alg`: RS256/RS384/RS512
  // (PKCS#1 v1.5, DigestInfo added here), PS256/PS384/PS512 (PSS, MGF1 on
  // the same hash, salt length = hash length) on RSA keys; ES256 on P-256,
  // ES384 on P-384, ES512 on P-521, ES256K on P-256K. EC signatures are raw
  // r||s, each half the curve's coordinate length (RFC 7518 §3.4).
  // kInvalidArgument ("BadParameter") for an unknown alg, an alg that does
  // not fit the key's type or curve, or a digest whose length is not the
  // alg's hash length (32, 48, 64).
  StatusOr<std::string> Sign(std::string_view alg, std::string_view digest) const;
  // Verify checks `signature` over `digest`. Same errors as Sign for alg
  // and digest; a signature that does not verify, or has the wrong length
  // or shape, is `false`, not an error. PS* accepts any salt length (a
  // verifier's usual rule), so signatures made with another length verify.
  StatusOr<bool> Verify(std::string_view alg, std::string_view digest,
                        std::string_view signature) const;

 private:
  // The rest of crypto/ (certificate.cc) reaches the key pair through this.
  friend struct asym_internal::KeyAccess;

  AsymKey(EvpPkeyPtr pkey, AsymKeyType type, int bits, std::optional<EcCurve> curve);
  // Wrap checks that `pkey` is a supported private key (RSA of an allowed
  // size, EC on an allowed curve) and builds the object around it: the
  // public JWK and, for RSA, the implicit-rejection key. kInvalidArgument
  // when it is not supported.
  static StatusOr<std::unique_ptr<AsymKey>> Wrap(EvpPkeyPtr pkey);

  // Defined in asym_key_ops.cc.
  StatusOr<SecureBytes> DecryptPkcs1ImplicitRejection(std::string_view ciphertext) const;
  StatusOr<std::string> SignEcdsa(std::string_view digest) const;
  bool VerifyEcdsa(std::string_view digest, std::string_view signature) const;

  const EvpPkeyPtr pkey_;
  const AsymKeyType type_;
  const int bits_;  // RSA modulus bits; the curve's field bits for EC
  const std::optional<EcCurve> curve_;
  Json public_jwk_;
  // EC only: contexts initialised once for signing and for verifying. Each
  // operation works on its own copy (EVP_PKEY_CTX_dup reads a const context,
  // which threads may share), which skips an init's method lookup: about 8%
  // of a P-256 signature.
  struct CtxFree {
    void operator()(evp_pkey_ctx_st* ctx) const;
  };
  std::unique_ptr<evp_pkey_ctx_st, CtxFree> ecdsa_sign_template_;
  std::unique_ptr<evp_pkey_ctx_st, CtxFree> ecdsa_verify_template_;
  // RSA only: SHA-256 of the private exponent written to the modulus
  // length, the key that implicit rejection's per-ciphertext key is derived
  // from. Computed once, wiped with the object.
  SecureBytes rejection_key_;
};

}  // namespace coffer::crypto
