#include "crypto/certificate.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/encoding.h"
#include "crypto/asym_key_internal.h"
#include "crypto/certificate_internal.h"
#include "crypto/openssl_ptr.h"
#include "crypto/primitives.h"

namespace coffer::crypto {
namespace cert_internal {

Status OpenSslFailure(std::string message) {
  ERR_clear_error();
  return InternalError(std::move(message));
}

std::string Excerpt(std::string_view text) {
  std::string out = "'";
  for (char c : text.substr(0, 64)) {
    out += c >= 0x20 && c < 0x7f ? c : '?';
  }
  out += text.size() > 64 ? "...'" : "'";
  return out;
}

void FreeExtensionStack(STACK_OF(X509_EXTENSION) * stack) {
  sk_X509_EXTENSION_pop_free(stack, X509_EXTENSION_free);
}

void FreeOpenSslBytes(unsigned char* bytes) {
  OPENSSL_free(bytes);
}

StatusOr<X509Ptr> ParseCertificate(std::string_view der, std::string_view what) {
  std::string name(what);
  if (der.empty()) {
    return BadParameter(name + " is empty.");
  }
  if (der.size() > kMaxCertificateBytes) {
    return BadParameter(name + " is larger than 64 KiB.");
  }
  ASSIGN_OR_RETURN(X509Ptr cert,
                   DecodeDer<X509Ptr>(der, d2i_X509, name, "a DER X.509 certificate"));
  // SECURITY: the thumbprint is of the bytes given; a BER form that OpenSSL
  // would re-encode differently could carry two thumbprints.
  if (ToDer<X509>(cert.get(), i2d_X509) != der) {
    ERR_clear_error();
    return BadParameter(name + " is not in DER: it does not re-encode to the same bytes.");
  }
  // Decodes and caches every extension, flagging what does not decode.
  if ((X509_get_extension_flags(cert.get()) & EXFLAG_INVALID) != 0) {
    ERR_clear_error();
    return BadParameter(name + " has an extension that does not decode or appears twice.");
  }
  return cert;
}

const EVP_MD* SignatureDigest(const AsymKey& key) {
  if (!key.curve().has_value()) {
    return EVP_sha256();
  }
  switch (*key.curve()) {
    case EcCurve::kP384:
      return EVP_sha384();
    case EcCurve::kP521:
      return EVP_sha512();
    case EcCurve::kP256:
    case EcCurve::kP256K:
      break;
  }
  return EVP_sha256();
}

bool WritePemBlock(BIO* bio, const char* label, std::string_view der) {
  return PEM_write_bio(bio, label, "", reinterpret_cast<const unsigned char*>(der.data()),
                       static_cast<long>(der.size())) > 0;
}

}  // namespace cert_internal

namespace {

using asym_internal::KeyAccess;
using cert_internal::BadParameter;
using cert_internal::ExtensionStackPtr;
using cert_internal::OpenSslFailure;
using cert_internal::ToDer;
using cert_internal::X509ReqPtr;

using Asn1StringPtr = std::unique_ptr<ASN1_STRING, OpenSslDeleter<ASN1_STRING, ASN1_STRING_free>>;
using AuthorityKeyIdPtr =
    std::unique_ptr<AUTHORITY_KEYID, OpenSslDeleter<AUTHORITY_KEYID, AUTHORITY_KEYID_free>>;

constexpr size_t kMaxSerialBytes = 20;  // RFC 5280 4.1.2.2, with the sign

StatusOr<int64_t> UnixTime(const ASN1_TIME* time, const char* which) {
  std::tm tm{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) {
    ERR_clear_error();
    return BadParameter(std::string("The certificate's ") + which + " time does not decode.");
  }
  return static_cast<int64_t>(timegm(&tm));
}

// ParsePublicKey reads SubjectPublicKeyInfo DER with nothing after it.
StatusOr<EvpPkeyPtr> ParsePublicKey(std::string_view der) {
  if (der.empty() || der.size() > cert_internal::kMaxCertificateBytes) {
    return BadParameter("The subject public key is empty or larger than 64 KiB.");
  }
  return cert_internal::DecodeDer<EvpPkeyPtr>(der, d2i_PUBKEY, "The subject public key",
                                              "SubjectPublicKeyInfo DER");
}

// CheckSubjectKey applies AsymKey's rules to a public key: the vault only
// certifies keys it could hold.
Status CheckSubjectKey(EVP_PKEY* key) {
  int id = EVP_PKEY_get_base_id(key);
  if (id == EVP_PKEY_RSA) {
    int bits = EVP_PKEY_get_bits(key);
    if (!asym_internal::IsAllowedRsaSize(bits)) {
      return BadParameter("The subject's RSA key is " + std::to_string(bits) +
                          " bits; the supported sizes are 2048, 3072 and 4096.");
    }
    return OkStatus();
  }
  if (id == EVP_PKEY_EC) {
    char group[64] = {0};
    size_t length = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &length) == 1) {
      for (EcCurve curve : {EcCurve::kP256, EcCurve::kP384, EcCurve::kP521, EcCurve::kP256K}) {
        if (std::strcmp(group, asym_internal::CurveInfoOf(curve).openssl_name) == 0) {
          return OkStatus();
        }
      }
    }
    ERR_clear_error();
    return BadParameter("The subject's EC key is not on P-256, P-384, P-521 or P-256K.");
  }
  return BadParameter("The subject's key is neither RSA nor EC.");
}

// MakeSerial reads `hex`, or makes 16 random bytes (positive, and with bit 6
// of the first byte set so that the serial is always 16 bytes long).
StatusOr<BignumPtr> MakeSerial(std::string_view hex) {
  std::string bytes;
  if (hex.empty()) {
    bytes = RandomBytes(16);
    bytes[0] = static_cast<char>((bytes[0] & 0x7f) | 0x40);
  } else {
    std::string padded = hex.size() % 2 == 1 ? "0" + std::string(hex) : std::string(hex);
    auto decoded = hex.size() <= 2 * kMaxSerialBytes + 1 ? HexDecode(padded) : std::nullopt;
    if (!decoded) {
      return BadParameter("The serial number is not hex of at most 20 bytes.");
    }
    bytes = decoded->substr(std::min(decoded->find_first_not_of('\0'), decoded->size()));
    if (bytes.empty()) {
      return BadParameter("The serial number is zero; it must be positive.");
    }
    if (bytes.size() > kMaxSerialBytes ||
        (bytes.size() == kMaxSerialBytes && (static_cast<unsigned char>(bytes[0]) & 0x80) != 0)) {
      return BadParameter("The serial number is longer than 20 bytes in DER.");
    }
  }
  BignumPtr serial(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()),
                             static_cast<int>(bytes.size()), nullptr));
  if (!serial) {
    return OpenSslFailure("cannot make a serial number");
  }
  return serial;
}

// KeyId is the SHA-1 of a certificate's subjectPublicKey (RFC 5280
// 4.2.1.2, method 1).
StatusOr<Asn1StringPtr> KeyId(const X509* cert) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  Asn1StringPtr id(ASN1_OCTET_STRING_new());
  if (!id || X509_pubkey_digest(cert, EVP_sha1(), digest, &length) != 1 ||
      ASN1_OCTET_STRING_set(id.get(), digest, static_cast<int>(length)) != 1) {
    return OpenSslFailure("cannot compute a key identifier");
  }
  return id;
}

// CheckIssuer checks that `issuer` may sign certificates and holds `key`.
Status CheckIssuer(X509* issuer, EVP_PKEY* key) {
  uint32_t flags = X509_get_extension_flags(issuer);
  if ((flags & EXFLAG_CA) == 0) {
    return BadParameter("The issuer certificate is not a CA (basicConstraints CA:TRUE).");
  }
  if ((flags & EXFLAG_KUSAGE) != 0 && (X509_get_key_usage(issuer) & KU_KEY_CERT_SIGN) == 0) {
    return BadParameter("The issuer certificate's key usage does not include keyCertSign.");
  }
  EVP_PKEY* issuer_public = X509_get0_pubkey(issuer);
  if (issuer_public == nullptr || EVP_PKEY_eq(issuer_public, key) != 1) {
    ERR_clear_error();
    return BadParameter("The issuer key is not the issuer certificate's key.");
  }
  return OkStatus();
}

// AddKeyIdentifiers adds subjectKeyIdentifier and authorityKeyIdentifier,
// the latter the issuer's own key identifier (its extension, or computed
// as ours is when it has none).
Status AddKeyIdentifiers(X509* cert, X509* issuer) {
  ASSIGN_OR_RETURN(Asn1StringPtr subject_id, KeyId(cert));
  Asn1StringPtr issuer_id;
  if (issuer == nullptr) {
    issuer_id.reset(ASN1_OCTET_STRING_dup(subject_id.get()));
  } else if (const ASN1_OCTET_STRING* id = X509_get0_subject_key_id(issuer); id != nullptr) {
    issuer_id.reset(ASN1_OCTET_STRING_dup(id));
  } else {
    ASSIGN_OR_RETURN(issuer_id, KeyId(issuer));
  }
  AuthorityKeyIdPtr authority(AUTHORITY_KEYID_new());
  if (!issuer_id || !authority) {
    return OpenSslFailure("cannot build key identifiers");
  }
  authority->keyid = issuer_id.release();
  if (X509_add1_ext_i2d(cert, NID_subject_key_identifier, subject_id.get(), 0, X509V3_ADD_APPEND) !=
          1 ||
      X509_add1_ext_i2d(cert, NID_authority_key_identifier, authority.get(), 0,
                        X509V3_ADD_APPEND) != 1) {
    return OpenSslFailure("cannot add key identifiers");
  }
  return OkStatus();
}

StatusOr<ExtensionStackPtr> ProfileExtensions(const CertificateProfile& profile) {
  STACK_OF(X509_EXTENSION)* raw = nullptr;
  Status status = cert_internal::AddProfileExtensions(profile, &raw);
  ExtensionStackPtr extensions(raw);
  RETURN_IF_ERROR(status);
  return extensions;
}

std::string UpperHex(const ASN1_INTEGER* integer) {
  std::string hex =
      HexEncode(std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(integer)),
                                 static_cast<size_t>(ASN1_STRING_length(integer))));
  for (char& c : hex) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  if (hex.empty()) {
    hex = "00";
  }
  return ASN1_STRING_type(integer) == V_ASN1_NEG_INTEGER ? "-" + hex : hex;
}

}  // namespace

StatusOr<std::string> IssueCertificate(const CertificateProfile& profile,
                                       std::string_view subject_public_key_der,
                                       const AsymKey& issuer_key,
                                       std::string_view issuer_certificate_der,
                                       std::string_view serial_hex) {
  RETURN_IF_ERROR(CheckProfile(profile));
  ASSIGN_OR_RETURN(EvpPkeyPtr subject_key, ParsePublicKey(subject_public_key_der));
  RETURN_IF_ERROR(CheckSubjectKey(subject_key.get()));
  ASSIGN_OR_RETURN(BignumPtr serial, MakeSerial(serial_hex));
  ASSIGN_OR_RETURN(X509NamePtr subject, cert_internal::SubjectToName(profile.subject));
  EVP_PKEY* signer = KeyAccess::Pkey(issuer_key);
  X509Ptr issuer;
  if (issuer_certificate_der.empty()) {
    if (EVP_PKEY_eq(subject_key.get(), signer) != 1) {
      ERR_clear_error();
      return BadParameter(
          "A self-signed certificate's subject key must be the public key of the issuer key.");
    }
  } else {
    ASSIGN_OR_RETURN(
        issuer, cert_internal::ParseCertificate(issuer_certificate_der, "The issuer certificate"));
    RETURN_IF_ERROR(CheckIssuer(issuer.get(), signer));
  }
  ASSIGN_OR_RETURN(ExtensionStackPtr extensions, ProfileExtensions(profile));

  X509Ptr cert(X509_new());
  bool built = cert && X509_set_version(cert.get(), X509_VERSION_3) == 1 &&
               BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) != nullptr &&
               X509_set_subject_name(cert.get(), subject.get()) == 1 &&
               X509_set_issuer_name(
                   cert.get(), issuer ? X509_get_subject_name(issuer.get()) : subject.get()) == 1 &&
               ASN1_TIME_set(X509_getm_notBefore(cert.get()),
                             static_cast<time_t>(profile.not_before)) != nullptr &&
               ASN1_TIME_set(X509_getm_notAfter(cert.get()),
                             static_cast<time_t>(profile.not_after)) != nullptr &&
               X509_set_pubkey(cert.get(), subject_key.get()) == 1;
  for (int i = 0; built && i < sk_X509_EXTENSION_num(extensions.get()); ++i) {
    built = X509_add_ext(cert.get(), sk_X509_EXTENSION_value(extensions.get(), i), -1) == 1;
  }
  if (!built) {
    return OpenSslFailure("cannot build the certificate");
  }
  RETURN_IF_ERROR(AddKeyIdentifiers(cert.get(), issuer.get()));
  if (X509_sign(cert.get(), signer, cert_internal::SignatureDigest(issuer_key)) <= 0) {
    return OpenSslFailure("cannot sign the certificate");
  }
  std::string der = ToDer<X509>(cert.get(), i2d_X509);
  if (der.empty()) {
    return OpenSslFailure("cannot encode the certificate");
  }
  return der;
}

StatusOr<std::string> CreateCsr(const CertificateProfile& profile, const AsymKey& key) {
  RETURN_IF_ERROR(cert_internal::CheckProfileNames(profile));
  ASSIGN_OR_RETURN(X509NamePtr subject, cert_internal::SubjectToName(profile.subject));
  ASSIGN_OR_RETURN(ExtensionStackPtr extensions, ProfileExtensions(profile));
  EVP_PKEY* pkey = KeyAccess::Pkey(key);
  X509ReqPtr request(X509_REQ_new());
  if (!request || X509_REQ_set_version(request.get(), X509_REQ_VERSION_1) != 1 ||
      X509_REQ_set_subject_name(request.get(), subject.get()) != 1 ||
      X509_REQ_set_pubkey(request.get(), pkey) != 1 ||
      (sk_X509_EXTENSION_num(extensions.get()) > 0 &&
       X509_REQ_add_extensions(request.get(), extensions.get()) != 1) ||
      X509_REQ_sign(request.get(), pkey, cert_internal::SignatureDigest(key)) <= 0) {
    return OpenSslFailure("cannot build the certificate request");
  }
  std::string der = ToDer<X509_REQ>(request.get(), i2d_X509_REQ);
  if (der.empty()) {
    return OpenSslFailure("cannot encode the certificate request");
  }
  return der;
}

StatusOr<CsrDetails> ReadCsr(std::string_view der) {
  if (der.empty() || der.size() > cert_internal::kMaxCertificateBytes) {
    return BadParameter("The certificate request is empty or larger than 64 KiB.");
  }
  ASSIGN_OR_RETURN(X509ReqPtr request,
                   cert_internal::DecodeDer<X509ReqPtr>(
                       der, d2i_X509_REQ, "The certificate request", "a DER PKCS#10 request"));
  if (ToDer<X509_REQ>(request.get(), i2d_X509_REQ) != der) {
    ERR_clear_error();
    return BadParameter("The certificate request is not in DER.");
  }
  EVP_PKEY* key = X509_REQ_get0_pubkey(request.get());
  if (key == nullptr || X509_REQ_verify(request.get(), key) != 1) {
    ERR_clear_error();
    return BadParameter("The certificate request's signature does not verify with its key.");
  }
  CsrDetails details;
  ASSIGN_OR_RETURN(details.profile.subject,
                   cert_internal::NameToSubject(X509_REQ_get_subject_name(request.get())));
  ExtensionStackPtr extensions(X509_REQ_get_extensions(request.get()));
  if (!extensions) {
    ERR_clear_error();
    return BadParameter("The certificate request's extensions do not decode.");
  }
  RETURN_IF_ERROR(cert_internal::ReadProfileExtensions(extensions.get(), &details.profile));
  details.public_key_der =
      ToDer<X509_PUBKEY>(X509_REQ_get_X509_PUBKEY(request.get()), i2d_X509_PUBKEY);
  return details;
}

StatusOr<CertificateDetails> ReadCertificateDer(std::string_view der) {
  ASSIGN_OR_RETURN(X509Ptr cert, cert_internal::ParseCertificate(der, "The certificate"));
  CertificateDetails details;
  details.der = std::string(der);
  details.sha1_thumbprint = Sha1(der);
  ASSIGN_OR_RETURN(details.subject,
                   cert_internal::NameToSubject(X509_get_subject_name(cert.get())));
  ASSIGN_OR_RETURN(details.issuer, cert_internal::NameToSubject(X509_get_issuer_name(cert.get())));
  details.serial_hex = UpperHex(X509_get0_serialNumber(cert.get()));
  ASSIGN_OR_RETURN(details.not_before, UnixTime(X509_get0_notBefore(cert.get()), "notBefore"));
  ASSIGN_OR_RETURN(details.not_after, UnixTime(X509_get0_notAfter(cert.get()), "notAfter"));
  CertificateProfile extensions;
  RETURN_IF_ERROR(
      cert_internal::ReadProfileExtensions(X509_get0_extensions(cert.get()), &extensions));
  details.sans = std::move(extensions.sans);
  details.key_usage = std::move(extensions.key_usage);
  details.ekus = std::move(extensions.ekus);
  details.is_ca = extensions.is_ca;
  details.path_length = extensions.path_length;
  details.public_key_der = ToDer<X509_PUBKEY>(X509_get_X509_PUBKEY(cert.get()), i2d_X509_PUBKEY);
  return details;
}

StatusOr<std::string> CertificatePem(std::string_view der) {
  RETURN_IF_ERROR(cert_internal::ParseCertificate(der, "The certificate").status());
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || !cert_internal::WritePemBlock(bio.get(), "CERTIFICATE", der)) {
    return OpenSslFailure("cannot write PEM");
  }
  char* data = nullptr;
  long length = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(length));
}

}  // namespace coffer::crypto
