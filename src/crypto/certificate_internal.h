#pragma once

// Shared by the files of the certificate code (certificate.cc,
// certificate_names.cc, certificate_profile.cc, certificate_bundle.cc,
// certificate_pkcs12.cc); not for use outside src/crypto.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/err.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/status.h"
#include "crypto/asym_key_internal.h"
#include "crypto/certificate.h"
#include "crypto/openssl_ptr.h"

namespace coffer::crypto::cert_internal {

// Limits on untrusted input.
inline constexpr size_t kMaxCertificateBytes = 64 * 1024;
inline constexpr size_t kMaxBundleBytes = 1024 * 1024;
inline constexpr size_t kMaxBundleCertificates = 20;
inline constexpr size_t kMaxEntryBytes = 255;  // a SAN, an EKU OID

// Holders for the OpenSSL types only this code uses (openssl_ptr.h has the
// common ones). A stack's deleter frees its elements too.
void FreeExtensionStack(STACK_OF(X509_EXTENSION) * stack);
void FreeOpenSslBytes(unsigned char* bytes);
using X509ReqPtr = std::unique_ptr<X509_REQ, OpenSslDeleter<X509_REQ, X509_REQ_free>>;
using ExtensionStackPtr =
    std::unique_ptr<STACK_OF(X509_EXTENSION),
                    OpenSslDeleter<STACK_OF(X509_EXTENSION), FreeExtensionStack>>;
using OpenSslBytesPtr =
    std::unique_ptr<unsigned char, OpenSslDeleter<unsigned char, FreeOpenSslBytes>>;

// BadParameter is a refusal of caller input, Key Vault's "BadParameter".
using asym_internal::BadParameter;
// OpenSslFailure clears OpenSSL's error queue and returns kInternal: for
// calls that fail only when memory runs out or the library is broken.
Status OpenSslFailure(std::string message);
// Excerpt is at most 64 bytes of caller input for a message, in quotes, each
// byte outside printable ASCII as '?'.
std::string Excerpt(std::string_view text);

// ToDer encodes an OpenSSL object with its i2d function.
template <typename T>
std::string ToDer(const T* object, int (*i2d)(const T*, unsigned char**)) {
  int len = i2d(object, nullptr);
  if (len <= 0) {
    return "";
  }
  std::string out(static_cast<size_t>(len), '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  if (i2d(object, &p) != len) {
    return "";
  }
  return out;
}

// DecodeDer decodes all of `der` with an OpenSSL d2i function.
// kInvalidArgument "<what> is not <kind>." or "<what> has bytes after its
// end."; either way OpenSSL's error queue is left empty.
template <typename Ptr, typename T = typename Ptr::element_type>
StatusOr<Ptr> DecodeDer(std::string_view der, T* (*d2i)(T**, const unsigned char**, long),
                        const std::string& what, std::string_view kind) {
  const auto* begin = reinterpret_cast<const unsigned char*>(der.data());
  const unsigned char* p = begin;
  Ptr decoded(der.empty() ? nullptr : d2i(nullptr, &p, static_cast<long>(der.size())));
  ERR_clear_error();
  if (!decoded) {
    return BadParameter(what + " is not " + std::string(kind) + ".");
  }
  if (p != begin + der.size()) {
    return BadParameter(what + " has bytes after its end.");
  }
  return decoded;
}

// ParseCertificate reads a certificate with ReadCertificateDer's size and
// encoding rules. `what` names it in messages ("The certificate",
// "Certificate 3 of the PEM").
StatusOr<X509Ptr> ParseCertificate(std::string_view der, std::string_view what);

// WritePemBlock appends `der` as a PEM block with `label` ("CERTIFICATE")
// to a memory BIO, ending in "\n". false when OpenSSL fails.
bool WritePemBlock(BIO* bio, const char* label, std::string_view der);

// SignatureDigest is the hash a key signs certificates and requests with:
// SHA-256 for RSA, P-256 and P-256K; SHA-384 for P-384; SHA-512 for P-521.
const EVP_MD* SignatureDigest(const AsymKey& key);

// --- certificate_names.cc ------------------------------------------------------

bool EqualsIgnoreCase(std::string_view a, std::string_view b);
// IsDottedOid: arcs of digits without leading zeros, at least two, the
// first 0-2 and the second below 40 under 0 and 1 (X.690 8.19); at most
// kMaxEntryBytes.
bool IsDottedOid(std::string_view text);
// Utf8Chars counts the characters of `text`, or returns -1 when it is not
// valid UTF-8 or holds a control character (C0, DEL, C1).
int64_t Utf8Chars(std::string_view text);
// OidText is an OID in dotted form.
std::string OidText(const ASN1_OBJECT* oid);
// SubjectToName builds the X509_NAME of a subject NormalizeSubject accepts
// ("" gives an empty name).
StatusOr<X509NamePtr> SubjectToName(std::string_view subject);
// NameToSubject writes a name in Key Vault's form. kInvalidArgument when an
// attribute value is not a string or not valid in its string type.
StatusOr<std::string> NameToSubject(const X509_NAME* name);

// --- certificate_profile.cc ----------------------------------------------------

// CheckProfileNames is CheckProfile without the validity.
Status CheckProfileNames(const CertificateProfile& profile);
// AddProfileExtensions adds the extensions a checked profile asks for to
// `*extensions`: basicConstraints, keyUsage, extendedKeyUsage,
// subjectAltName. kInternal when OpenSSL fails.
Status AddProfileExtensions(const CertificateProfile& profile,
                            STACK_OF(X509_EXTENSION) * *extensions);
// ReadProfileExtensions fills `profile`'s sans, key_usage, ekus, is_ca and
// path_length from `extensions`. kInvalidArgument for an extension that
// appears twice or does not decode.
Status ReadProfileExtensions(const STACK_OF(X509_EXTENSION) * extensions,
                             CertificateProfile* profile);

// --- certificate_bundle.cc -------------------------------------------------------

// CarriesKey: `cert`'s public key is `key`'s.
bool CarriesKey(X509* cert, EVP_PKEY* key);
// ImportKey reads a private key from outside, in DER: `type` EVP_PKEY_RSA or
// EVP_PKEY_EC for the traditional forms, EVP_PKEY_NONE for PKCS#8. AsymKey's
// sizes and curves, and OpenSSL's full key check. `what` names the source in
// messages ("the PFX"). kInvalidArgument ("BadParameter").
StatusOr<std::unique_ptr<AsymKey>> ImportKey(std::string_view der, int type,
                                             const std::string& what);
// AssembleChain orders `certs` as KeyAndChain says: the leaf, its issuers,
// then the rest in input order, repeats dropped. kInvalidArgument when there
// is no certificate or none carries the key.
StatusOr<KeyAndChain> AssembleChain(std::unique_ptr<AsymKey> key, std::vector<X509Ptr> certs,
                                    const std::string& what);
// ParseChainToWrite checks a chain given to WritePkcs12 or WritePem: 1 to 20
// certificates, each one ReadCertificateDer accepts, the first carrying
// `key` (when there is one).
StatusOr<std::vector<X509Ptr>> ParseChainToWrite(const AsymKey* key,
                                                 const std::vector<std::string>& chain_der);

}  // namespace coffer::crypto::cert_internal
