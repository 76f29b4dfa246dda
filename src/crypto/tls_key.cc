#include "crypto/tls_key.h"

#include <cstdlib>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "crypto/openssl_ptr.h"

namespace coffer::crypto {

StatusOr<std::unique_ptr<TlsKey>> TlsKey::GenerateP256() {
  EvpPkeyPtr pkey(EVP_EC_gen("P-256"));
  if (!pkey) {
    ERR_clear_error();
    return InternalError("EC key generation failed");
  }
  return std::unique_ptr<TlsKey>(new TlsKey(std::move(pkey)));
}

StatusOr<std::unique_ptr<TlsKey>> TlsKey::FromPrivatePem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EvpPkeyPtr pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!pkey) {
    ERR_clear_error();
    return InvalidArgumentError("not a PEM private key");
  }
  int type = EVP_PKEY_get_base_id(pkey.get());
  if (type != EVP_PKEY_RSA && type != EVP_PKEY_EC) {
    return InvalidArgumentError("private key is neither RSA nor EC");
  }
  return std::unique_ptr<TlsKey>(new TlsKey(std::move(pkey)));
}

std::string TlsKey::PrivatePem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), pkey_.get(), nullptr, nullptr, 0, nullptr,
                                       nullptr) != 1) {
    std::abort();  // only out of memory: never hand back an empty key to be written
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

bool TlsKey::is_ec() const {
  return EVP_PKEY_get_base_id(pkey_.get()) == EVP_PKEY_EC;
}

}  // namespace coffer::crypto
