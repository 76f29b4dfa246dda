#include "crypto/primitives.h"

#include <cstdlib>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "common/encoding.h"
#include "common/log.h"
#include "crypto/openssl_ptr.h"

namespace coffer::crypto {
namespace {

unsigned char* U(std::string& s) {
  return reinterpret_cast<unsigned char*>(s.data());
}
const unsigned char* U(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

[[noreturn]] void Fatal(const char* what) {
  COFFER_LOG(kError) << "fatal OpenSSL failure in " << what;
  std::abort();
}

// OpenSSL 3 looks algorithms up in its provider tables on every implicit
// use (EVP_sha256(), EVP_aes_256_gcm()), taking global locks; the hot paths
// fetch each algorithm once and reuse it.
const EVP_MD* FetchedSha256() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (md == nullptr) {
    Fatal("EVP_MD_fetch(SHA256)");
  }
  return md;
}

const EVP_CIPHER* FetchedAes256Gcm() {
  static EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  if (cipher == nullptr) {
    Fatal("EVP_CIPHER_fetch(AES-256-GCM)");
  }
  return cipher;
}

}  // namespace

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(U(out), static_cast<int>(n)) != 1) {
    Fatal("RAND_bytes");
  }
  return out;
}

std::string RandomHex(size_t n) {
  return HexEncode(RandomBytes(n));
}

std::string RandomUuid() {
  std::string b = RandomBytes(16);
  b[6] = static_cast<char>((static_cast<uint8_t>(b[6]) & 0x0f) | 0x40);
  b[8] = static_cast<char>((static_cast<uint8_t>(b[8]) & 0x3f) | 0x80);
  std::string h = HexEncode(b);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20, 12);
}

std::string Sha256(std::string_view data) {
  std::string out(SHA256_DIGEST_LENGTH, '\0');
  // One context per thread, re-initialised per call: the audit log hashes
  // every record, and a fresh context costs allocations each time.
  thread_local EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  unsigned int len = 0;
  if (!ctx || EVP_DigestInit_ex(ctx.get(), FetchedSha256(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), U(out), &len) != 1) {
    Fatal("SHA-256");
  }
  return out;
}

std::string Sha1(std::string_view data) {
  std::string out(SHA_DIGEST_LENGTH, '\0');
  SHA1(U(data), data.size(), U(out));
  return out;
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  std::string out(EVP_MAX_MD_SIZE, '\0');
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), U(data), data.size(), U(out),
           &len) == nullptr) {
    Fatal("HMAC");
  }
  out.resize(len);
  return out;
}

std::string HkdfSha256(std::string_view key, std::string_view salt, std::string_view info,
                       size_t length) {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr));
  std::string out(length, '\0');
  size_t out_len = length;
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) <= 0 ||
      EVP_PKEY_CTX_set_hkdf_md(ctx.get(), EVP_sha256()) <= 0 ||
      EVP_PKEY_CTX_set1_hkdf_salt(ctx.get(), U(salt), static_cast<int>(salt.size())) <= 0 ||
      EVP_PKEY_CTX_set1_hkdf_key(ctx.get(), U(key), static_cast<int>(key.size())) <= 0 ||
      EVP_PKEY_CTX_add1_hkdf_info(ctx.get(), U(info), static_cast<int>(info.size())) <= 0 ||
      EVP_PKEY_derive(ctx.get(), U(out), &out_len) <= 0) {
    Fatal("HKDF");
  }
  return out;
}

std::string Pbkdf2Sha256(std::string_view password, std::string_view salt, int iterations,
                         size_t length) {
  std::string out(length, '\0');
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), U(salt),
                        static_cast<int>(salt.size()), iterations, EVP_sha256(),
                        static_cast<int>(length), U(out)) != 1) {
    Fatal("PBKDF2");
  }
  return out;
}

void SecureWipe(std::string& s) {
  OPENSSL_cleanse(s.data(), s.size());
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string AesGcmSeal(std::string_view key, std::string_view plaintext, std::string_view aad) {
  if (key.size() != kAes256KeySize) {
    Fatal("AesGcmSeal key size");
  }
  std::string nonce = RandomBytes(kGcmNonceSize);
  std::string out = nonce;
  out.resize(kGcmNonceSize + plaintext.size() + kGcmTagSize);
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  auto* ct = reinterpret_cast<unsigned char*>(out.data()) + kGcmNonceSize;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), FetchedAes256Gcm(), nullptr, U(key), U(nonce)) != 1 ||
      (!aad.empty() &&
       EVP_EncryptUpdate(ctx.get(), nullptr, &len, U(aad), static_cast<int>(aad.size())) != 1) ||
      EVP_EncryptUpdate(ctx.get(), ct, &len, U(plaintext), static_cast<int>(plaintext.size())) !=
          1 ||
      EVP_EncryptFinal_ex(ctx.get(), ct + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kGcmTagSize, ct + plaintext.size()) !=
          1) {
    Fatal("AES-GCM seal");
  }
  return out;
}

StatusOr<std::string> AesGcmOpen(std::string_view key, std::string_view sealed,
                                 std::string_view aad) {
  if (key.size() != kAes256KeySize) {
    return InvalidArgumentError("AES-256-GCM key must be 32 bytes");
  }
  if (sealed.size() < kGcmNonceSize + kGcmTagSize) {
    return InvalidArgumentError("sealed value is too short");
  }
  std::string_view nonce = sealed.substr(0, kGcmNonceSize);
  std::string_view ct = sealed.substr(kGcmNonceSize, sealed.size() - kGcmNonceSize - kGcmTagSize);
  std::string tag(sealed.substr(sealed.size() - kGcmTagSize));
  std::string out(ct.size(), '\0');
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), FetchedAes256Gcm(), nullptr, U(key), U(nonce)) != 1 ||
      (!aad.empty() &&
       EVP_DecryptUpdate(ctx.get(), nullptr, &len, U(aad), static_cast<int>(aad.size())) != 1) ||
      EVP_DecryptUpdate(ctx.get(), U(out), &len, U(ct), static_cast<int>(ct.size())) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kGcmTagSize, U(tag)) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), U(out) + len, &len) != 1) {
    // SECURITY: the failure reason is not distinguished, so callers learn
    // nothing beyond "does not authenticate".
    return DataLossError("sealed value failed authentication");
  }
  return out;
}

}  // namespace coffer::crypto
