#include "crypto/x509.h"

#include <ctime>
#include <string>
#include <string_view>
#include <utility>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "common/encoding.h"
#include "crypto/openssl_ptr.h"
#include "crypto/primitives.h"

namespace coffer::crypto {
namespace {

bool AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  return ext && X509_add_ext(cert, ext.get(), -1) == 1;
}

X509Ptr NewCertificate(EVP_PKEY* subject_key, const std::string& cn, int days) {
  X509Ptr cert(X509_new());
  if (!cert) {
    return nullptr;
  }
  X509_set_version(cert.get(), 2);
  std::string serial = RandomBytes(16);
  serial[0] = static_cast<char>(serial[0] & 0x7f);
  BignumPtr bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(serial.data()), 16, nullptr));
  BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get()));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(days) * 86400);
  X509_set_pubkey(cert.get(), subject_key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("Coffer"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  return cert;
}

std::string ToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

X509Ptr FromPem(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

}  // namespace

namespace {

StatusOr<std::string> CaCertificate(EVP_PKEY* key, const std::string& common_name, int days) {
  X509Ptr cert = NewCertificate(key, common_name, days);
  if (!cert || X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get())) != 1 ||
      !AddExtension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
      !AddExtension(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign") ||
      !AddExtension(cert.get(), cert.get(), NID_subject_key_identifier, "hash") ||
      X509_sign(cert.get(), key, EVP_sha256()) == 0) {
    ERR_clear_error();
    return InternalError("cannot create CA certificate");
  }
  return ToPem(cert.get());
}

StatusOr<std::string> ServerCertificate(EVP_PKEY* server_key, const std::string& ca_cert_pem,
                                        EVP_PKEY* ca_key, const std::vector<std::string>& dns_names,
                                        const std::vector<std::string>& ip_addresses, int days) {
  X509Ptr ca = FromPem(ca_cert_pem);
  if (!ca) {
    ERR_clear_error();
    return InvalidArgumentError("cannot parse CA certificate");
  }
  std::string cn = dns_names.empty() ? "localhost" : dns_names.front();
  X509Ptr cert = NewCertificate(server_key, cn, days);
  // Appended piece by piece: GCC 12 at -O3 reports a false -Wrestrict on a
  // concatenation of temporaries here (GCC bug 105329).
  std::string sans;
  auto add_san = [&sans](std::string_view kind, const std::string& value) {
    if (!sans.empty()) {
      sans += ',';
    }
    sans += kind;
    sans += value;
  };
  for (const auto& d : dns_names) {
    add_san("DNS:", d);
  }
  for (const auto& ip : ip_addresses) {
    add_san("IP:", ip);
  }
  if (!cert || X509_set_issuer_name(cert.get(), X509_get_subject_name(ca.get())) != 1 ||
      !AddExtension(cert.get(), ca.get(), NID_basic_constraints, "critical,CA:FALSE") ||
      // An EC key only signs; an RSA key may also encipher (TLS 1.2's RSA
      // key exchange, which the server does not offer but clients may check).
      !AddExtension(cert.get(), ca.get(), NID_key_usage,
                    EVP_PKEY_get_base_id(server_key) == EVP_PKEY_EC
                        ? "critical,digitalSignature"
                        : "critical,digitalSignature,keyEncipherment") ||
      !AddExtension(cert.get(), ca.get(), NID_ext_key_usage, "serverAuth") ||
      !AddExtension(cert.get(), ca.get(), NID_authority_key_identifier, "keyid:always") ||
      (!sans.empty() && !AddExtension(cert.get(), ca.get(), NID_subject_alt_name, sans)) ||
      X509_sign(cert.get(), ca_key, EVP_sha256()) == 0) {
    ERR_clear_error();
    return InternalError("cannot create server certificate");
  }
  return ToPem(cert.get());
}

}  // namespace

StatusOr<std::string> CreateCaCertificate(const TlsKey& key, const std::string& common_name,
                                          int days) {
  return CaCertificate(key.native(), common_name, days);
}

StatusOr<std::string> CreateServerCertificate(const TlsKey& server_key,
                                              const std::string& ca_cert_pem, const TlsKey& ca_key,
                                              const std::vector<std::string>& dns_names,
                                              const std::vector<std::string>& ip_addresses,
                                              int days) {
  return ServerCertificate(server_key.native(), ca_cert_pem, ca_key.native(), dns_names,
                           ip_addresses, days);
}

namespace {

int64_t AsnTimeToUnix(const ASN1_TIME* t) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(t, &tm) != 1) {
    return 0;
  }
  return static_cast<int64_t>(timegm(&tm));
}

}  // namespace

StatusOr<CertificateInfo> ParseCertificate(const std::string& text) {
  X509Ptr cert;
  if (text.find("-----BEGIN CERTIFICATE-----") != std::string::npos) {
    cert = FromPem(text);
  } else {
    std::string der = text;
    if (auto decoded = Base64Decode(text); decoded && !text.empty()) {
      der = *decoded;
    }
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    cert.reset(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  }
  if (!cert) {
    ERR_clear_error();
    return InvalidArgumentError("not an X.509 certificate (PEM, base64 DER or DER)");
  }
  CertificateInfo info;
  int len = i2d_X509(cert.get(), nullptr);
  info.der.resize(static_cast<size_t>(len));
  auto* out = reinterpret_cast<unsigned char*>(info.der.data());
  i2d_X509(cert.get(), &out);
  info.sha1_thumbprint = Sha1(info.der);
  info.sha256_thumbprint = Sha256(info.der);
  info.not_before = AsnTimeToUnix(X509_get0_notBefore(cert.get()));
  info.not_after = AsnTimeToUnix(X509_get0_notAfter(cert.get()));
  EvpPkeyPtr pkey(X509_get_pubkey(cert.get()));
  if (!pkey || EVP_PKEY_get_base_id(pkey.get()) != EVP_PKEY_RSA) {
    ERR_clear_error();
    return InvalidArgumentError("the certificate's key is not RSA");
  }
  info.public_key = RsaKey::FromNative(std::move(pkey), false);
  return info;
}

StatusOr<std::string> CreateSelfSignedCertificate(const RsaKey& key, const std::string& common_name,
                                                  int days) {
  X509Ptr cert = NewCertificate(key.native(), common_name, days);
  if (!cert || X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get())) != 1 ||
      !AddExtension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:FALSE") ||
      !AddExtension(cert.get(), cert.get(), NID_key_usage, "critical,digitalSignature") ||
      X509_sign(cert.get(), key.native(), EVP_sha256()) == 0) {
    ERR_clear_error();
    return InternalError("cannot create a self-signed certificate");
  }
  return ToPem(cert.get());
}

std::vector<std::string> CertificateDnsNames(const std::string& cert_pem) {
  std::vector<std::string> out;
  X509Ptr cert = FromPem(cert_pem);
  if (!cert) {
    ERR_clear_error();
    return out;
  }
  GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr)));
  if (!names) {
    return out;
  }
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    if (gn->type == GEN_DNS) {
      const unsigned char* data = ASN1_STRING_get0_data(gn->d.dNSName);
      out.emplace_back(reinterpret_cast<const char*>(data),
                       static_cast<size_t>(ASN1_STRING_length(gn->d.dNSName)));
    }
  }
  return out;
}

int64_t CertificateNotAfter(const std::string& cert_pem) {
  X509Ptr cert = FromPem(cert_pem);
  if (!cert) {
    ERR_clear_error();
    return 0;
  }
  return AsnTimeToUnix(X509_get0_notAfter(cert.get()));
}

}  // namespace coffer::crypto
