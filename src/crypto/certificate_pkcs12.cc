// PKCS#12 (PFX) files: Key Vault's "application/x-pkcs12" secrets, and the
// files its certificate import takes.

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <openssl/err.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include "crypto/asym_key_internal.h"
#include "crypto/certificate.h"
#include "crypto/certificate_internal.h"
#include "crypto/openssl_ptr.h"

namespace coffer::crypto {
namespace {

using asym_internal::KeyAccess;
using cert_internal::AssembleChain;
using cert_internal::BadParameter;
using cert_internal::ImportKey;
using cert_internal::kMaxBundleBytes;
using cert_internal::kMaxBundleCertificates;
using cert_internal::OpenSslFailure;
using cert_internal::ParseChainToWrite;
using cert_internal::ToDer;

void FreePkcs7Stack(STACK_OF(PKCS7) * stack) {
  sk_PKCS7_pop_free(stack, PKCS7_free);
}
void FreeSafeBagStack(STACK_OF(PKCS12_SAFEBAG) * stack) {
  sk_PKCS12_SAFEBAG_pop_free(stack, PKCS12_SAFEBAG_free);
}
// Frees the stack, not the certificates it borrows.
void FreeBorrowedX509Stack(STACK_OF(X509) * stack) {
  sk_X509_free(stack);
}

using Pkcs12Ptr = std::unique_ptr<PKCS12, OpenSslDeleter<PKCS12, PKCS12_free>>;
using Pkcs8Ptr = std::unique_ptr<PKCS8_PRIV_KEY_INFO,
                                 OpenSslDeleter<PKCS8_PRIV_KEY_INFO, PKCS8_PRIV_KEY_INFO_free>>;
using Pkcs7StackPtr =
    std::unique_ptr<STACK_OF(PKCS7), OpenSslDeleter<STACK_OF(PKCS7), FreePkcs7Stack>>;
using SafeBagStackPtr = std::unique_ptr<STACK_OF(PKCS12_SAFEBAG),
                                        OpenSslDeleter<STACK_OF(PKCS12_SAFEBAG), FreeSafeBagStack>>;
using BorrowedX509StackPtr =
    std::unique_ptr<STACK_OF(X509), OpenSslDeleter<STACK_OF(X509), FreeBorrowedX509Stack>>;
using PbeParamPtr = std::unique_ptr<PBEPARAM, OpenSslDeleter<PBEPARAM, PBEPARAM_free>>;
using Pbe2ParamPtr = std::unique_ptr<PBE2PARAM, OpenSslDeleter<PBE2PARAM, PBE2PARAM_free>>;
using Pbkdf2ParamPtr = std::unique_ptr<PBKDF2PARAM, OpenSslDeleter<PBKDF2PARAM, PBKDF2PARAM_free>>;
using EvpCipherPtr = std::unique_ptr<EVP_CIPHER, OpenSslDeleter<EVP_CIPHER, EVP_CIPHER_free>>;
using LibCtxPtr = std::unique_ptr<OSSL_LIB_CTX, OpenSslDeleter<OSSL_LIB_CTX, OSSL_LIB_CTX_free>>;

constexpr size_t kMaxPasswordBytes = 1024;
constexpr int64_t kMaxKdfIterations = 600000;
constexpr int kMaxSafeBags = 64;
constexpr int kMaxSafeContentsDepth = 3;
// What WritePkcs12 uses: OpenSSL's default (PKCS12_DEFAULT_ITER) and what
// Windows writes, and no cost worth having without a password.
constexpr int kWriteIterations = 2048;
constexpr std::string_view kWrongPassword = "The PFX could not be opened with this password.";

// The library context the reader decrypts in: OpenSSL's default provider and
// its legacy one (RC2, RC4, single DES), which the process's default context
// does not load. Made once; never freed, as OpenSSL's own default is not.
struct Pkcs12Context {
  OSSL_LIB_CTX* libctx = nullptr;  // null: the default context, without legacy
  bool legacy = false;
};

const Pkcs12Context& ReaderContext() {
  static const Pkcs12Context context = [] {
    Pkcs12Context made;
    LibCtxPtr libctx(OSSL_LIB_CTX_new());
    if (libctx && OSSL_PROVIDER_load(libctx.get(), "default") != nullptr &&
        OSSL_PROVIDER_load(libctx.get(), "legacy") != nullptr) {
      made.libctx = libctx.release();
      made.legacy = true;
    }
    ERR_clear_error();
    return made;
  }();
  return context;
}

Status CheckIterations(int64_t iterations) {
  if (iterations < 1 || iterations > kMaxKdfIterations) {
    return BadParameter("The PFX asks for " + std::to_string(iterations) +
                        " key-derivation iterations; 1 to 600000 are allowed.");
  }
  return OkStatus();
}

Status Malformed(std::string_view what) {
  ERR_clear_error();
  return BadParameter("The PFX is malformed: " + std::string(what) + ".");
}

bool IsLegacyCipher(int nid) {
  return nid == NID_rc2_cbc || nid == NID_rc2_40_cbc || nid == NID_rc2_64_cbc || nid == NID_rc4 ||
         nid == NID_rc4_40 || nid == NID_des_cbc;
}

// CheckPbe refuses a password-based encryption the reader cannot or should
// not run: an unknown scheme or cipher, a KDF other than PBKDF2 in PBES2,
// or more iterations than kMaxKdfIterations.
Status CheckPbe(const X509_ALGOR* algorithm, const Pkcs12Context& context) {
  int scheme = OBJ_obj2nid(algorithm->algorithm);
  int cipher = NID_undef;
  int64_t iterations = 1;
  if (scheme == NID_pbes2) {
    Pbe2ParamPtr pbes2(static_cast<PBE2PARAM*>(
        ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), algorithm->parameter)));
    if (!pbes2 || pbes2->keyfunc == nullptr || pbes2->encryption == nullptr) {
      return Malformed("its PBES2 parameters do not decode");
    }
    if (OBJ_obj2nid(pbes2->keyfunc->algorithm) != NID_id_pbkdf2) {
      return BadParameter(
          "The PFX derives its keys with something other than PBKDF2 (scrypt?), "
          "which is not supported.");
    }
    Pbkdf2ParamPtr pbkdf2(static_cast<PBKDF2PARAM*>(
        ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM), pbes2->keyfunc->parameter)));
    if (!pbkdf2 || pbkdf2->iter == nullptr ||
        ASN1_INTEGER_get_int64(&iterations, pbkdf2->iter) != 1) {
      return Malformed("its PBKDF2 parameters do not decode");
    }
    cipher = OBJ_obj2nid(pbes2->encryption->algorithm);
  } else {
    int digest = NID_undef;
    if (EVP_PBE_find(EVP_PBE_TYPE_OUTER, scheme, &cipher, &digest, nullptr) != 1) {
      return BadParameter("The PFX is encrypted with an algorithm that is not supported.");
    }
    PbeParamPtr params(static_cast<PBEPARAM*>(
        ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBEPARAM), algorithm->parameter)));
    if (!params ||
        (params->iter != nullptr && ASN1_INTEGER_get_int64(&iterations, params->iter) != 1)) {
      return Malformed("its encryption parameters do not decode");
    }
  }
  RETURN_IF_ERROR(CheckIterations(iterations));
  const char* name = cipher > 0 ? OBJ_nid2sn(cipher) : nullptr;
  EvpCipherPtr fetched(name != nullptr ? EVP_CIPHER_fetch(context.libctx, name, nullptr) : nullptr);
  ERR_clear_error();
  if (!fetched) {
    if (IsLegacyCipher(cipher) && !context.legacy) {
      return BadParameter(std::string("The PFX is encrypted with ") + name +
                          ", a legacy algorithm (older Windows, `openssl pkcs12 -legacy`) that "
                          "needs OpenSSL's legacy provider, which this server does not have.");
    }
    return BadParameter("The PFX is encrypted with a cipher that is not supported.");
  }
  return OkStatus();
}

Status CheckMac(const PKCS12* p12) {
  if (PKCS12_mac_present(p12) != 1) {
    return OkStatus();
  }
  const X509_ALGOR* algorithm = nullptr;
  const ASN1_INTEGER* iter = nullptr;
  PKCS12_get0_mac(nullptr, &algorithm, nullptr, &iter, p12);
  int64_t iterations = 1;
  if (algorithm == nullptr || (iter != nullptr && ASN1_INTEGER_get_int64(&iterations, iter) != 1)) {
    return Malformed("its MAC does not decode");
  }
  RETURN_IF_ERROR(CheckIterations(iterations));
  if (EVP_get_digestbyobj(algorithm->algorithm) == nullptr) {
    return BadParameter("The PFX's MAC uses a hash that is not supported.");
  }
  return OkStatus();
}

struct Pkcs12Contents {
  std::vector<SecureBytes> keys;  // PKCS#8 DER
  std::vector<X509Ptr> certs;
  int bags = 0;
};

// Pkcs12Reader walks a PFX's safes and bags with one password (`pass` null
// for the absent password).
class Pkcs12Reader {
 public:
  Pkcs12Reader(const Pkcs12Context& context, const char* pass, int pass_length)
      : context_(context), pass_(pass), pass_length_(pass_length) {}

  // True when a decryption failed: the password is wrong (or, the same to
  // the reader, the encrypted bytes are corrupt).
  bool decryption_failed() const { return decryption_failed_; }

  Status Read(PKCS12* p12, Pkcs12Contents* out) {
    Pkcs7StackPtr safes(PKCS12_unpack_authsafes(p12));
    if (!safes) {
      return Malformed("its contents do not decode, or use public-key integrity");
    }
    for (int i = 0; i < sk_PKCS7_num(safes.get()); ++i) {
      PKCS7* safe = sk_PKCS7_value(safes.get(), i);
      SafeBagStackPtr bags;
      int type = OBJ_obj2nid(safe->type);
      if (type == NID_pkcs7_data) {
        bags.reset(PKCS12_unpack_p7data(safe));
      } else if (type == NID_pkcs7_encrypted) {
        ASSIGN_OR_RETURN(bags, Decrypt(safe));
      } else {
        return BadParameter(
            "The PFX uses public-key privacy (enveloped data), which is not "
            "supported.");
      }
      if (!bags) {
        return Malformed("a safe does not decode");
      }
      RETURN_IF_ERROR(ReadBags(bags.get(), 0, out));
    }
    return OkStatus();
  }

 private:
  Status WrongPassword() {
    ERR_clear_error();
    decryption_failed_ = true;
    return BadParameter(std::string(kWrongPassword));
  }

  StatusOr<SafeBagStackPtr> Decrypt(PKCS7* safe) {
    const PKCS7_ENCRYPT* encrypted = safe->d.encrypted;
    if (encrypted == nullptr || encrypted->enc_data == nullptr ||
        encrypted->enc_data->algorithm == nullptr || encrypted->enc_data->enc_data == nullptr) {
      return Malformed("an encrypted safe has no contents");
    }
    RETURN_IF_ERROR(CheckPbe(encrypted->enc_data->algorithm, context_));
    SafeBagStackPtr bags(static_cast<STACK_OF(PKCS12_SAFEBAG)*>(PKCS12_item_decrypt_d2i_ex(
        encrypted->enc_data->algorithm, ASN1_ITEM_rptr(PKCS12_SAFEBAGS), pass_, pass_length_,
        encrypted->enc_data->enc_data, 1, context_.libctx, nullptr)));
    if (!bags) {
      return WrongPassword();
    }
    return bags;
  }

  Status AddKey(const PKCS8_PRIV_KEY_INFO* p8, Pkcs12Contents* out) {
    if (!out->keys.empty()) {
      return BadParameter("The PFX holds more than one private key; exactly one is required.");
    }
    int length = p8 != nullptr ? i2d_PKCS8_PRIV_KEY_INFO(p8, nullptr) : -1;
    if (length <= 0) {
      return Malformed("a key bag does not decode");
    }
    SecureBytes der(static_cast<size_t>(length));
    unsigned char* p = der.data();
    if (i2d_PKCS8_PRIV_KEY_INFO(p8, &p) != length) {
      return OpenSslFailure("cannot encode a private key");
    }
    out->keys.push_back(std::move(der));
    return OkStatus();
  }

  Status AddCertificate(const PKCS12_SAFEBAG* bag, Pkcs12Contents* out) {
    if (out->certs.size() == kMaxBundleCertificates) {
      return BadParameter("The PFX holds more than 20 certificates.");
    }
    X509Ptr decoded(PKCS12_SAFEBAG_get1_cert(bag));
    if (!decoded) {
      return Malformed("a certificate bag does not decode");
    }
    ASSIGN_OR_RETURN(X509Ptr cert,
                     cert_internal::ParseCertificate(
                         ToDer<X509>(decoded.get(), i2d_X509),
                         "Certificate " + std::to_string(out->certs.size() + 1) + " of the PFX"));
    out->certs.push_back(std::move(cert));
    return OkStatus();
  }

  Status ReadBags(const STACK_OF(PKCS12_SAFEBAG) * bags, int depth, Pkcs12Contents* out) {
    for (int i = 0; i < sk_PKCS12_SAFEBAG_num(bags); ++i) {
      if (++out->bags > kMaxSafeBags) {
        return BadParameter("The PFX holds more than 64 safe bags.");
      }
      const PKCS12_SAFEBAG* bag = sk_PKCS12_SAFEBAG_value(bags, i);
      switch (PKCS12_SAFEBAG_get_nid(bag)) {
        case NID_keyBag:
          RETURN_IF_ERROR(AddKey(PKCS12_SAFEBAG_get0_p8inf(bag), out));
          break;
        case NID_pkcs8ShroudedKeyBag: {
          const X509_ALGOR* algorithm = nullptr;
          const X509_SIG* shrouded = PKCS12_SAFEBAG_get0_pkcs8(bag);
          if (shrouded == nullptr) {
            return Malformed("a shrouded key bag does not decode");
          }
          X509_SIG_get0(shrouded, &algorithm, nullptr);
          RETURN_IF_ERROR(CheckPbe(algorithm, context_));
          Pkcs8Ptr p8(PKCS12_decrypt_skey_ex(bag, pass_, pass_length_, context_.libctx, nullptr));
          if (!p8) {
            return WrongPassword();
          }
          RETURN_IF_ERROR(AddKey(p8.get(), out));
          break;
        }
        case NID_certBag:
          if (PKCS12_SAFEBAG_get_bag_nid(bag) == NID_x509Certificate) {
            RETURN_IF_ERROR(AddCertificate(bag, out));
          }
          break;
        case NID_safeContentsBag:
          if (depth + 1 >= kMaxSafeContentsDepth) {
            return BadParameter("The PFX nests safe contents more than 3 deep.");
          }
          RETURN_IF_ERROR(ReadBags(PKCS12_SAFEBAG_get0_safes(bag), depth + 1, out));
          break;
        default:  // CRLs, secrets: not part of a key and chain
          break;
      }
    }
    return OkStatus();
  }

  const Pkcs12Context& context_;
  const char* pass_;
  int pass_length_;
  bool decryption_failed_ = false;
};

}  // namespace

StatusOr<KeyAndChain> ReadPkcs12(std::string_view pfx, std::string_view password) {
  if (pfx.empty()) {
    return BadParameter("The PFX is empty.");
  }
  if (pfx.size() > kMaxBundleBytes) {
    return BadParameter("The PFX is larger than 1 MiB.");
  }
  if (password.size() > kMaxPasswordBytes) {
    return BadParameter("The password is longer than 1 KiB.");
  }
  ASSIGN_OR_RETURN(Pkcs12Ptr p12, cert_internal::DecodeDer<Pkcs12Ptr>(pfx, d2i_PKCS12, "The data",
                                                                      "a PFX (PKCS#12)"));
  RETURN_IF_ERROR(CheckMac(p12.get()));

  // A terminated copy, as OpenSSL takes passwords as C strings of UTF-8
  // (the lengths are passed too).
  SecureBytes terminated(password.size() + 1);
  std::copy(password.begin(), password.end(), terminated.data());
  struct Candidate {
    const char* pass;
    int length;
  };
  // PKCS#12 tells no password (no bytes) from an empty one (a BMPString of
  // just its terminator); a caller with neither may mean either.
  std::vector<Candidate> candidates = {
      {reinterpret_cast<const char*>(terminated.data()), static_cast<int>(password.size())}};
  if (password.empty()) {
    candidates = {{nullptr, 0}, {"", 0}};
  }
  if (PKCS12_mac_present(p12.get()) == 1) {
    auto verified = std::find_if(candidates.begin(), candidates.end(), [&p12](const Candidate& c) {
      return PKCS12_verify_mac(p12.get(), c.pass, c.length) == 1;
    });
    ERR_clear_error();
    if (verified == candidates.end()) {
      return BadParameter(std::string(kWrongPassword));
    }
    candidates = {*verified};
  }
  Status status;
  for (const Candidate& candidate : candidates) {
    Pkcs12Reader reader(ReaderContext(), candidate.pass, candidate.length);
    Pkcs12Contents contents;
    status = reader.Read(p12.get(), &contents);
    ERR_clear_error();
    if (status.ok()) {
      if (contents.keys.empty()) {
        return BadParameter("The PFX holds no private key.");
      }
      ASSIGN_OR_RETURN(std::unique_ptr<AsymKey> key,
                       ImportKey(contents.keys[0].view(), EVP_PKEY_NONE, "the PFX"));
      return AssembleChain(std::move(key), std::move(contents.certs), "the PFX");
    }
    if (!reader.decryption_failed()) {
      return status;
    }
  }
  return status;
}

namespace {

// The PFX of WritePkcs12, without a key bag when `key` is null.
StatusOr<SecureBytes> Pkcs12Of(const AsymKey* key, const std::vector<std::string>& chain_der) {
  ASSIGN_OR_RETURN(std::vector<X509Ptr> chain, ParseChainToWrite(key, chain_der));
  BorrowedX509StackPtr issuers(sk_X509_new_null());
  for (size_t i = 1; issuers && i < chain.size(); ++i) {
    if (sk_X509_push(issuers.get(), chain[i].get()) == 0) {
      issuers.reset();
    }
  }
  if (!issuers) {
    return OpenSslFailure("cannot list the chain");
  }
  // The settings and why: certificate.h, WritePkcs12. The MAC is set apart
  // from PKCS12_create so that its hash is SHA-1 whatever OpenSSL's default.
  Pkcs12Ptr p12(PKCS12_create("", nullptr, key != nullptr ? KeyAccess::Pkey(*key) : nullptr,
                              chain[0].get(), issuers.get(), NID_pbe_WithSHA1And3_Key_TripleDES_CBC,
                              -1, kWriteIterations, -1, 0));
  if (!p12 || PKCS12_set_mac(p12.get(), "", -1, nullptr, 0, kWriteIterations, EVP_sha1()) != 1) {
    return OpenSslFailure("cannot build the PFX");
  }
  int length = i2d_PKCS12(p12.get(), nullptr);
  if (length <= 0) {
    return OpenSslFailure("cannot encode the PFX");
  }
  SecureBytes out(static_cast<size_t>(length));
  unsigned char* p = out.data();
  if (i2d_PKCS12(p12.get(), &p) != length) {
    return OpenSslFailure("cannot encode the PFX");
  }
  return out;
}

}  // namespace

StatusOr<SecureBytes> WritePkcs12(const AsymKey& key, const std::vector<std::string>& chain_der) {
  return Pkcs12Of(&key, chain_der);
}

StatusOr<SecureBytes> WriteCertificatesPkcs12(const std::vector<std::string>& chain_der) {
  return Pkcs12Of(nullptr, chain_der);
}

}  // namespace coffer::crypto
