// Subject alternative names, key usage and EKUs: checking what a caller asks
// for, encoding it into a certificate or request, and reading it back in Key
// Vault's words.

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "crypto/certificate.h"
#include "crypto/certificate_internal.h"

#include <arpa/inet.h>

namespace coffer::crypto {
namespace cert_internal {
namespace {

constexpr size_t kMaxListEntries = 100;
constexpr int64_t kLatestTime = 253402300799;  // 9999-12-31T23:59:59Z
constexpr const char* kUpnOid = "1.3.6.1.4.1.311.20.2.3";

using Asn1ObjectPtr = std::unique_ptr<ASN1_OBJECT, OpenSslDeleter<ASN1_OBJECT, ASN1_OBJECT_free>>;
using Asn1StringPtr = std::unique_ptr<ASN1_STRING, OpenSslDeleter<ASN1_STRING, ASN1_STRING_free>>;
using Asn1TypePtr = std::unique_ptr<ASN1_TYPE, OpenSslDeleter<ASN1_TYPE, ASN1_TYPE_free>>;
using GeneralNamePtr =
    std::unique_ptr<GENERAL_NAME, OpenSslDeleter<GENERAL_NAME, GENERAL_NAME_free>>;
using BasicConstraintsPtr =
    std::unique_ptr<BASIC_CONSTRAINTS, OpenSslDeleter<BASIC_CONSTRAINTS, BASIC_CONSTRAINTS_free>>;
using ExtendedKeyUsagePtr =
    std::unique_ptr<EXTENDED_KEY_USAGE,
                    OpenSslDeleter<EXTENDED_KEY_USAGE, EXTENDED_KEY_USAGE_free>>;

// --- Subject alternative names ----------------------------------------------------

bool IsDnsLabel(std::string_view label) {
  if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
    return false;
  }
  return std::all_of(label.begin(), label.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-';
  });
}

bool IsDnsName(std::string_view name, bool allow_wildcard) {
  size_t min_labels = 1;
  if (allow_wildcard && name.size() > 2 && name.substr(0, 2) == "*.") {
    name.remove_prefix(2);
    min_labels = 2;
  }
  if (name.empty() || name.size() > 253) {
    return false;
  }
  size_t labels = 0;
  size_t start = 0;
  while (true) {
    size_t dot = name.find('.', start);
    if (!IsDnsLabel(name.substr(start, dot == std::string_view::npos ? dot : dot - start))) {
      return false;
    }
    ++labels;
    if (dot == std::string_view::npos) {
      return labels >= min_labels;
    }
    start = dot + 1;
  }
}

bool IsEmail(std::string_view email) {
  size_t at = email.find('@');
  if (at == 0 || at == std::string_view::npos || at > 64) {
    return false;
  }
  std::string_view local = email.substr(0, at);
  return std::all_of(local.begin(), local.end(),
                     [](char c) { return c > 0x20 && c < 0x7f && c != '@'; }) &&
         IsDnsName(email.substr(at + 1), false);
}

bool IsUpn(std::string_view upn) {
  size_t at = upn.find('@');
  if (at == 0 || at == std::string_view::npos) {
    return false;
  }
  std::string_view user = upn.substr(0, at);
  return Utf8Chars(user) > 0 && user.find(' ') == std::string_view::npos &&
         IsDnsName(upn.substr(at + 1), false);
}

bool IsAbsoluteUri(std::string_view uri) {
  size_t colon = uri.find(':');
  if (colon == 0 || colon == std::string_view::npos || colon + 1 == uri.size() ||
      std::isalpha(static_cast<unsigned char>(uri[0])) == 0) {
    return false;
  }
  std::string_view scheme = uri.substr(0, colon);
  return std::all_of(scheme.begin(), scheme.end(),
                     [](char c) {
                       return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '+' ||
                              c == '-' || c == '.';
                     }) &&
         std::all_of(uri.begin(), uri.end(), [](char c) {
           return c > 0x20 && c < 0x7f &&
                  std::string_view("\"<>\\^`{|}").find(c) == std::string_view::npos;
         });
}

// IpBytes is the 4 or 16 bytes of an IPv4 dotted quad or IPv6 text; ""
// for anything else (inet_pton: no leading zeros, no shorthand IPv4).
std::string IpBytes(std::string_view text) {
  if (text.size() > 45) {
    return "";
  }
  std::string terminated(text);
  std::array<unsigned char, 16> bytes{};
  if (inet_pton(AF_INET, terminated.c_str(), bytes.data()) == 1) {
    return std::string(reinterpret_cast<const char*>(bytes.data()), 4);
  }
  if (inet_pton(AF_INET6, terminated.c_str(), bytes.data()) == 1) {
    return std::string(reinterpret_cast<const char*>(bytes.data()), 16);
  }
  return "";
}

std::string IpText(const ASN1_OCTET_STRING* ip) {
  std::array<char, INET6_ADDRSTRLEN> text{};
  int length = ASN1_STRING_length(ip);
  int family = length == 4 ? AF_INET : length == 16 ? AF_INET6 : 0;
  if (family == 0 || inet_ntop(family, ASN1_STRING_get0_data(ip), text.data(),
                               static_cast<socklen_t>(text.size())) == nullptr) {
    return "";
  }
  return text.data();
}

struct SanKind {
  const char* what;
  std::vector<std::string> SubjectAltNames::*list;
  bool (*valid)(std::string_view);
};
constexpr std::array<SanKind, 5> kSanKinds = {{
    {"DNS name", &SubjectAltNames::dns_names,
     [](std::string_view s) { return IsDnsName(s, true); }},
    {"email", &SubjectAltNames::emails, IsEmail},
    {"user principal name", &SubjectAltNames::upns, IsUpn},
    {"URI", &SubjectAltNames::uris, IsAbsoluteUri},
    {"IP address", &SubjectAltNames::ip_addresses,
     [](std::string_view s) { return !IpBytes(s).empty(); }},
}};

Status CheckSans(const SubjectAltNames& sans) {
  for (const SanKind& kind : kSanKinds) {
    const std::vector<std::string>& list = sans.*kind.list;
    if (list.size() > kMaxListEntries) {
      return BadParameter("There are " + std::to_string(list.size()) + " subject alternative " +
                          kind.what + "s; at most 100 are allowed.");
    }
    for (const std::string& entry : list) {
      if (entry.size() > kMaxEntryBytes) {
        return BadParameter(std::string("A subject alternative ") + kind.what +
                            " is longer than 255 bytes.");
      }
      if (!kind.valid(entry)) {
        return BadParameter(Excerpt(entry) + " is not a valid " + kind.what + ".");
      }
    }
  }
  return OkStatus();
}

// --- Key usage and EKUs -------------------------------------------------------------

// Key Vault's names, each at its bit of the KeyUsage BIT STRING.
constexpr std::array<const char*, 9> kKeyUsageNames = {
    "digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment", "keyAgreement",
    "keyCertSign",      "cRLSign",        "encipherOnly",    "decipherOnly",
};
constexpr int kKeyCertSignBit = 5;
constexpr int kCrlSignBit = 6;

int KeyUsageBit(std::string_view name) {
  for (size_t bit = 0; bit < kKeyUsageNames.size(); ++bit) {
    if (EqualsIgnoreCase(name, kKeyUsageNames[bit])) {
      return static_cast<int>(bit);
    }
  }
  return -1;
}

Status CheckUsages(const CertificateProfile& profile) {
  if (profile.key_usage.size() > kMaxListEntries) {
    return BadParameter("There are more than 100 key usages.");
  }
  for (const std::string& name : profile.key_usage) {
    if (KeyUsageBit(name) < 0) {
      return BadParameter("The key usage " + Excerpt(name) +
                          " is not one of digitalSignature, nonRepudiation, keyEncipherment, "
                          "dataEncipherment, keyAgreement, keyCertSign, cRLSign, encipherOnly, "
                          "decipherOnly.");
    }
  }
  if (profile.ekus.size() > kMaxListEntries) {
    return BadParameter("There are more than 100 extended key usages.");
  }
  for (const std::string& oid : profile.ekus) {
    if (!IsDottedOid(oid)) {
      return BadParameter("The extended key usage " + Excerpt(oid) +
                          " is not a dotted OID such as 1.3.6.1.5.5.7.3.1.");
    }
  }
  return OkStatus();
}

// --- Extensions ---------------------------------------------------------------------

// PushName adds `name` to `names`; kInternal for a null `name` (a failed
// allocation earlier).
Status PushName(GeneralNamePtr name, GENERAL_NAMES* names) {
  if (!name || sk_GENERAL_NAME_push(names, name.get()) == 0) {
    return OpenSslFailure("cannot build a subject alternative name");
  }
  name.release();
  return OkStatus();
}

// StringName is a name of `type` whose value is `string` set to `bytes`.
GeneralNamePtr StringName(int type, Asn1StringPtr string, std::string_view bytes) {
  GeneralNamePtr name(GENERAL_NAME_new());
  if (!name || !string ||
      ASN1_STRING_set(string.get(), bytes.data(), static_cast<int>(bytes.size())) != 1) {
    return nullptr;
  }
  GENERAL_NAME_set0_value(name.get(), type, string.release());
  return name;
}

// UpnName is the otherName Windows reads a user principal name from.
GeneralNamePtr UpnName(std::string_view upn) {
  GeneralNamePtr name(GENERAL_NAME_new());
  Asn1ObjectPtr oid(OBJ_txt2obj(kUpnOid, 1));
  Asn1TypePtr value(ASN1_TYPE_new());
  Asn1StringPtr text(ASN1_UTF8STRING_new());
  if (!name || !oid || !value || !text ||
      ASN1_STRING_set(text.get(), upn.data(), static_cast<int>(upn.size())) != 1) {
    return nullptr;
  }
  ASN1_TYPE_set(value.get(), V_ASN1_UTF8STRING, text.release());
  if (GENERAL_NAME_set0_othername(name.get(), oid.get(), value.get()) != 1) {
    return nullptr;
  }
  oid.release();
  value.release();
  return name;
}

StatusOr<GeneralNamesPtr> BuildSans(const SubjectAltNames& sans) {
  GeneralNamesPtr names(GENERAL_NAMES_new());
  if (!names) {
    return OpenSslFailure("cannot build subject alternative names");
  }
  for (const auto& dns : sans.dns_names) {
    RETURN_IF_ERROR(
        PushName(StringName(GEN_DNS, Asn1StringPtr(ASN1_IA5STRING_new()), dns), names.get()));
  }
  for (const auto& email : sans.emails) {
    RETURN_IF_ERROR(
        PushName(StringName(GEN_EMAIL, Asn1StringPtr(ASN1_IA5STRING_new()), email), names.get()));
  }
  for (const auto& upn : sans.upns) {
    RETURN_IF_ERROR(PushName(UpnName(upn), names.get()));
  }
  for (const auto& uri : sans.uris) {
    RETURN_IF_ERROR(
        PushName(StringName(GEN_URI, Asn1StringPtr(ASN1_IA5STRING_new()), uri), names.get()));
  }
  for (const auto& ip : sans.ip_addresses) {
    RETURN_IF_ERROR(PushName(
        StringName(GEN_IPADD, Asn1StringPtr(ASN1_OCTET_STRING_new()), IpBytes(ip)), names.get()));
  }
  return names;
}

void ReadSans(const GENERAL_NAMES* names, SubjectAltNames* sans) {
  auto text = [](const ASN1_STRING* s) {
    return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                       static_cast<size_t>(ASN1_STRING_length(s)));
  };
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    switch (name->type) {
      case GEN_DNS:
        sans->dns_names.push_back(text(name->d.dNSName));
        break;
      case GEN_EMAIL:
        sans->emails.push_back(text(name->d.rfc822Name));
        break;
      case GEN_URI:
        sans->uris.push_back(text(name->d.uniformResourceIdentifier));
        break;
      case GEN_IPADD:
        if (std::string ip = IpText(name->d.iPAddress); !ip.empty()) {
          sans->ip_addresses.push_back(std::move(ip));
        }
        break;
      case GEN_OTHERNAME: {
        const OTHERNAME* other = name->d.otherName;
        if (OBJ_obj2nid(other->type_id) == NID_ms_upn && other->value != nullptr &&
            other->value->type == V_ASN1_UTF8STRING) {
          sans->upns.push_back(text(other->value->value.utf8string));
        }
        break;
      }
      default:
        break;
    }
  }
}

// GetExtension decodes the one `nid` extension of `extensions`; null when
// there is none. kInvalidArgument when it appears twice or does not decode.
template <typename T>
StatusOr<std::unique_ptr<T, void (*)(T*)>> GetExtension(const STACK_OF(X509_EXTENSION) * extensions,
                                                        int nid, void (*free)(T*)) {
  int critical = -1;
  std::unique_ptr<T, void (*)(T*)> value(
      static_cast<T*>(X509V3_get_d2i(extensions, nid, &critical, nullptr)), free);
  if (!value && critical != -1) {
    ERR_clear_error();
    return BadParameter(std::string("The ") + OBJ_nid2ln(nid) + " extension " +
                        (critical == -2 ? "appears more than once." : "does not decode."));
  }
  return value;
}

}  // namespace

Status CheckProfileNames(const CertificateProfile& profile) {
  if (profile.subject.empty() && profile.sans.empty()) {
    return BadParameter("A certificate needs a subject or a subject alternative name.");
  }
  if (!profile.subject.empty()) {
    RETURN_IF_ERROR(NormalizeSubject(profile.subject).status());
  }
  RETURN_IF_ERROR(CheckSans(profile.sans));
  RETURN_IF_ERROR(CheckUsages(profile));
  if (profile.path_length.has_value()) {
    if (!profile.is_ca) {
      return BadParameter("A path length is only for a CA certificate.");
    }
    if (*profile.path_length < 0) {
      return BadParameter("The path length is negative.");
    }
  }
  return OkStatus();
}

Status AddProfileExtensions(const CertificateProfile& profile,
                            STACK_OF(X509_EXTENSION) * *extensions) {
  BasicConstraintsPtr constraints(BASIC_CONSTRAINTS_new());
  if (!constraints) {
    return OpenSslFailure("cannot build basicConstraints");
  }
  constraints->ca = profile.is_ca ? 0xff : 0;
  if (profile.is_ca && profile.path_length.has_value()) {
    constraints->pathlen = ASN1_INTEGER_new();
    if (constraints->pathlen == nullptr ||
        ASN1_INTEGER_set_int64(constraints->pathlen, *profile.path_length) != 1) {
      return OpenSslFailure("cannot build basicConstraints");
    }
  }
  if (X509V3_add1_i2d(extensions, NID_basic_constraints, constraints.get(), 1, X509V3_ADD_APPEND) !=
      1) {
    return OpenSslFailure("cannot add basicConstraints");
  }

  uint32_t bits = 0;
  for (const std::string& usage : profile.key_usage) {
    bits |= 1u << KeyUsageBit(usage);
  }
  if (profile.is_ca) {
    bits |= (1u << kKeyCertSignBit) | (1u << kCrlSignBit);
  }
  if (bits != 0) {
    Asn1StringPtr usage(ASN1_BIT_STRING_new());
    for (size_t bit = 0; usage && bit < kKeyUsageNames.size(); ++bit) {
      if ((bits & (1u << bit)) != 0 &&
          ASN1_BIT_STRING_set_bit(usage.get(), static_cast<int>(bit), 1) != 1) {
        usage.reset();
      }
    }
    if (!usage ||
        X509V3_add1_i2d(extensions, NID_key_usage, usage.get(), 1, X509V3_ADD_APPEND) != 1) {
      return OpenSslFailure("cannot add keyUsage");
    }
  }

  if (!profile.ekus.empty()) {
    ExtendedKeyUsagePtr ekus(sk_ASN1_OBJECT_new_null());
    std::vector<std::string_view> seen;
    for (const std::string& text : profile.ekus) {
      if (std::find(seen.begin(), seen.end(), text) != seen.end()) {
        continue;
      }
      seen.push_back(text);
      Asn1ObjectPtr oid(OBJ_txt2obj(text.c_str(), 1));
      if (!ekus || !oid || sk_ASN1_OBJECT_push(ekus.get(), oid.get()) == 0) {
        return OpenSslFailure("cannot build extendedKeyUsage");
      }
      oid.release();
    }
    if (X509V3_add1_i2d(extensions, NID_ext_key_usage, ekus.get(), 0, X509V3_ADD_APPEND) != 1) {
      return OpenSslFailure("cannot add extendedKeyUsage");
    }
  }

  if (!profile.sans.empty()) {
    ASSIGN_OR_RETURN(GeneralNamesPtr names, BuildSans(profile.sans));
    // RFC 5280 4.2.1.6: critical when the subject is empty.
    if (X509V3_add1_i2d(extensions, NID_subject_alt_name, names.get(),
                        profile.subject.empty() ? 1 : 0, X509V3_ADD_APPEND) != 1) {
      return OpenSslFailure("cannot add subjectAltName");
    }
  }
  return OkStatus();
}

Status ReadProfileExtensions(const STACK_OF(X509_EXTENSION) * extensions,
                             CertificateProfile* profile) {
  ASSIGN_OR_RETURN(auto names, GetExtension(extensions, NID_subject_alt_name, GENERAL_NAMES_free));
  if (names) {
    ReadSans(names.get(), &profile->sans);
  }
  ASSIGN_OR_RETURN(auto usage, GetExtension(extensions, NID_key_usage, ASN1_BIT_STRING_free));
  for (size_t bit = 0; usage && bit < kKeyUsageNames.size(); ++bit) {
    if (ASN1_BIT_STRING_get_bit(usage.get(), static_cast<int>(bit)) == 1) {
      profile->key_usage.emplace_back(kKeyUsageNames[bit]);
    }
  }
  ASSIGN_OR_RETURN(auto ekus, GetExtension(extensions, NID_ext_key_usage, EXTENDED_KEY_USAGE_free));
  for (int i = 0; ekus && i < sk_ASN1_OBJECT_num(ekus.get()); ++i) {
    profile->ekus.push_back(OidText(sk_ASN1_OBJECT_value(ekus.get(), i)));
  }
  ASSIGN_OR_RETURN(auto constraints,
                   GetExtension(extensions, NID_basic_constraints, BASIC_CONSTRAINTS_free));
  profile->is_ca = constraints && constraints->ca != 0;
  int64_t path_length = -1;
  if (profile->is_ca && constraints->pathlen != nullptr &&
      ASN1_INTEGER_get_int64(&path_length, constraints->pathlen) == 1 && path_length >= 0 &&
      path_length <= INT32_MAX) {
    profile->path_length = static_cast<int>(path_length);
  }
  ERR_clear_error();
  return OkStatus();
}

}  // namespace cert_internal

using cert_internal::BadParameter;

Status CheckProfile(const CertificateProfile& profile) {
  RETURN_IF_ERROR(cert_internal::CheckProfileNames(profile));
  if (profile.not_before < 0 || profile.not_after > cert_internal::kLatestTime) {
    return BadParameter("The validity must lie between 1970 and the end of 9999.");
  }
  if (profile.not_after <= profile.not_before) {
    return BadParameter("The certificate's validity ends before it starts.");
  }
  return OkStatus();
}

}  // namespace coffer::crypto
