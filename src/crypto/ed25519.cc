#include "crypto/ed25519.h"

#include <cstdlib>
#include <utility>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "common/files.h"
#include "common/log.h"
#include "crypto/openssl_ptr.h"
#include "crypto/primitives.h"

namespace coffer::crypto {
namespace {

const unsigned char* U(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

[[noreturn]] void Fatal(const char* what) {
  COFFER_LOG(kError) << "fatal OpenSSL failure in " << what;
  std::abort();
}

std::string BioContents(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

}  // namespace

StatusOr<std::unique_ptr<Ed25519Key>> Ed25519Key::Generate() {
  EvpPkeyPtr pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!pkey) {
    ERR_clear_error();
    return InternalError("Ed25519 key generation failed");
  }
  return std::unique_ptr<Ed25519Key>(new Ed25519Key(std::move(pkey), true));
}

StatusOr<std::unique_ptr<Ed25519Key>> Ed25519Key::FromPrivatePem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EvpPkeyPtr pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!pkey) {
    ERR_clear_error();
    return InvalidArgumentError("not a PEM private key");
  }
  if (EVP_PKEY_get_base_id(pkey.get()) != EVP_PKEY_ED25519) {
    return InvalidArgumentError("private key is not Ed25519");
  }
  return std::unique_ptr<Ed25519Key>(new Ed25519Key(std::move(pkey), true));
}

StatusOr<std::unique_ptr<Ed25519Key>> Ed25519Key::FromPublicPem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EvpPkeyPtr pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!pkey) {
    ERR_clear_error();
    return InvalidArgumentError("not a PEM public key");
  }
  if (EVP_PKEY_get_base_id(pkey.get()) != EVP_PKEY_ED25519) {
    return InvalidArgumentError("public key is not Ed25519");
  }
  return std::unique_ptr<Ed25519Key>(new Ed25519Key(std::move(pkey), false));
}

StatusOr<std::unique_ptr<Ed25519Key>> Ed25519Key::FromPublicRaw(std::string_view raw) {
  if (raw.size() != kEd25519PublicKeySize) {
    return InvalidArgumentError("Ed25519 public key must be 32 bytes");
  }
  EvpPkeyPtr pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, U(raw), raw.size()));
  if (!pkey) {
    ERR_clear_error();
    return InvalidArgumentError("invalid Ed25519 public key");
  }
  return std::unique_ptr<Ed25519Key>(new Ed25519Key(std::move(pkey), false));
}

std::string Ed25519Key::PrivatePem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), pkey_.get(), nullptr, nullptr, 0, nullptr,
                                       nullptr) != 1) {
    Fatal("PEM_write_bio_PrivateKey");
  }
  return BioContents(bio.get());
}

std::string Ed25519Key::PublicPem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), pkey_.get()) != 1) {
    Fatal("PEM_write_bio_PUBKEY");
  }
  return BioContents(bio.get());
}

std::string Ed25519Key::PublicRaw() const {
  std::string out(kEd25519PublicKeySize, '\0');
  size_t len = out.size();
  if (EVP_PKEY_get_raw_public_key(pkey_.get(), reinterpret_cast<unsigned char*>(out.data()),
                                  &len) != 1 ||
      len != kEd25519PublicKeySize) {
    Fatal("EVP_PKEY_get_raw_public_key");
  }
  return out;
}

std::string Ed25519Key::Sign(std::string_view data) const {
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  std::string sig(kEd25519SignatureSize, '\0');
  size_t len = sig.size();
  // Ed25519 is one-shot: no digest is named and no streaming update exists.
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, pkey_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, U(data),
                     data.size()) != 1 ||
      len != kEd25519SignatureSize) {
    Fatal("Ed25519 sign");
  }
  return sig;
}

bool Ed25519Key::Verify(std::string_view data, std::string_view signature) const {
  if (signature.size() != kEd25519SignatureSize) {
    return false;
  }
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  bool ok = ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey_.get()) == 1 &&
            EVP_DigestVerify(ctx.get(), U(signature), signature.size(), U(data), data.size()) == 1;
  ERR_clear_error();
  return ok;
}

StatusOr<std::unique_ptr<Ed25519Key>> LoadEd25519PrivateKey(const std::string& path) {
  int mode = FileMode(path);
  if (mode < 0) {
    return NotFoundError("signing key not found: " + path);
  }
  // SECURITY: like ssh, refuse a private key others can read; it may
  // already have leaked, and signatures made with it prove nothing.
  if ((mode & 077) != 0) {
    return FailedPreconditionError("signing key " + path +
                                   " is readable by group or others; chmod 600 it");
  }
  ASSIGN_OR_RETURN(std::string pem, ReadFile(path));
  auto key = Ed25519Key::FromPrivatePem(pem);
  SecureWipe(pem);
  if (!key.ok()) {
    return InvalidArgumentError(path + ": " + std::string(key.status().message()));
  }
  return key;
}

StatusOr<std::unique_ptr<Ed25519Key>> LoadEd25519PublicKey(const std::string& path) {
  ASSIGN_OR_RETURN(std::string pem, ReadFile(path));
  auto key = Ed25519Key::FromPublicPem(pem);
  if (key.ok()) {
    return key;
  }
  auto private_key = Ed25519Key::FromPrivatePem(pem);
  SecureWipe(pem);
  if (!private_key.ok()) {
    return InvalidArgumentError(path + ": not an Ed25519 PEM key");
  }
  return Ed25519Key::FromPublicRaw((*private_key)->PublicRaw());
}

Status SaveEd25519PrivateKey(const Ed25519Key& key, const std::string& path) {
  std::string pem = key.PrivatePem();
  Status s = WriteFileAtomic(path, pem, 0600);
  SecureWipe(pem);
  return s;
}

Status SaveEd25519PublicKey(const Ed25519Key& key, const std::string& path) {
  return WriteFileAtomic(path, key.PublicPem(), 0644);
}

}  // namespace coffer::crypto
