#include "crypto/openssl_ptr.h"

namespace coffer::crypto {

void EvpPkeyFree::operator()(evp_pkey_st* pkey) const {
  EVP_PKEY_free(pkey);
}

}  // namespace coffer::crypto
