// Subjects: Key Vault's (.NET's) string form of a distinguished name, parsed
// into an X509_NAME and written back from one (certificate.h has the rules).

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
#include <openssl/x509.h>

#include "crypto/certificate.h"
#include "crypto/certificate_internal.h"

namespace coffer::crypto {
namespace cert_internal {
namespace {

constexpr size_t kMaxSubjectBytes = 1024;

using Asn1ObjectPtr = std::unique_ptr<ASN1_OBJECT, OpenSslDeleter<ASN1_OBJECT, ASN1_OBJECT_free>>;

enum class Charset { kUtf8, kAscii, kPrintable, kCountry };

struct AttributeType {
  std::array<const char*, 3> names;  // the output spelling first; unused ones null
  int nid;
  size_t max_chars;
  Charset charset;
};

// X.520's upper bounds (and OpenSSL's string table) for the lengths.
constexpr std::array<AttributeType, 14> kAttributeTypes = {{
    {{"CN", "COMMONNAME", nullptr}, NID_commonName, 64, Charset::kUtf8},
    {{"O", nullptr, nullptr}, NID_organizationName, 64, Charset::kUtf8},
    {{"OU", nullptr, nullptr}, NID_organizationalUnitName, 64, Charset::kUtf8},
    {{"L", nullptr, nullptr}, NID_localityName, 128, Charset::kUtf8},
    {{"S", "ST", nullptr}, NID_stateOrProvinceName, 128, Charset::kUtf8},
    {{"C", nullptr, nullptr}, NID_countryName, 2, Charset::kCountry},
    {{"E", "EMAIL", "EMAILADDRESS"}, NID_pkcs9_emailAddress, 128, Charset::kAscii},
    {{"DC", nullptr, nullptr}, NID_domainComponent, 63, Charset::kAscii},
    {{"STREET", nullptr, nullptr}, NID_streetAddress, 128, Charset::kUtf8},
    {{"SERIALNUMBER", nullptr, nullptr}, NID_serialNumber, 64, Charset::kPrintable},
    {{"T", "TITLE", nullptr}, NID_title, 64, Charset::kUtf8},
    {{"G", "GN", "GIVENNAME"}, NID_givenName, 64, Charset::kUtf8},
    {{"SN", "SURNAME", nullptr}, NID_surname, 64, Charset::kUtf8},
    {{"I", "INITIALS", nullptr}, NID_initials, 64, Charset::kUtf8},
}};
// An attribute named by its OID: any DirectoryString, as UTF8String.
constexpr AttributeType kOidAttribute = {{"OID", nullptr, nullptr}, NID_undef, 255, Charset::kUtf8};

const AttributeType* AttributeTypeByNid(int nid) {
  for (const auto& type : kAttributeTypes) {
    if (type.nid == nid) {
      return &type;
    }
  }
  return nullptr;
}

// An attribute of a parsed subject.
struct Attribute {
  const AttributeType* type;
  Asn1ObjectPtr oid;  // for a named type OpenSSL's static object, which free leaves alone
  std::string label;  // as written, for messages
  std::string value;
};
using Rdn = std::vector<Attribute>;

StatusOr<Attribute> LookUpType(std::string_view label) {
  std::string_view oid_text = label;
  if (label.size() > 4 && EqualsIgnoreCase(label.substr(0, 4), "OID.")) {
    oid_text = label.substr(4);
  }
  Attribute attribute;
  attribute.label = std::string(label);
  if (IsDottedOid(oid_text)) {
    attribute.oid.reset(OBJ_txt2obj(std::string(oid_text).c_str(), 1));
    if (!attribute.oid) {
      return OpenSslFailure("cannot encode an OID");
    }
    const AttributeType* known = AttributeTypeByNid(OBJ_obj2nid(attribute.oid.get()));
    attribute.type = known != nullptr ? known : &kOidAttribute;
    return attribute;
  }
  for (const auto& type : kAttributeTypes) {
    for (const char* name : type.names) {
      if (name != nullptr && EqualsIgnoreCase(label, name)) {
        attribute.type = &type;
        attribute.oid.reset(OBJ_nid2obj(type.nid));
        return attribute;
      }
    }
  }
  return BadParameter("The subject's attribute type " + Excerpt(label) +
                      " is not supported; use CN, O, OU, L, S, C, E, DC, STREET, SERIALNUMBER, "
                      "T, G, SN, I or OID.<dotted OID>.");
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

Status CheckValue(const Attribute& attribute) {
  const std::string& value = attribute.value;
  std::string what = "The value of the subject's " + Excerpt(attribute.label);
  if (value.empty()) {
    return BadParameter(what + " is empty.");
  }
  int64_t chars = Utf8Chars(value);
  if (chars < 0) {
    return BadParameter(what + " is not UTF-8 text without control characters.");
  }
  const AttributeType& type = *attribute.type;
  if (type.charset == Charset::kCountry &&
      (value.size() != 2 || std::isalpha(static_cast<unsigned char>(value[0])) == 0 ||
       std::isalpha(static_cast<unsigned char>(value[1])) == 0)) {
    return BadParameter(what + " must be a two-letter country code.");
  }
  if (static_cast<size_t>(chars) > type.max_chars) {
    return BadParameter(what + " is longer than " + std::to_string(type.max_chars) +
                        " characters.");
  }
  auto all = [&value](auto pred) {
    return std::all_of(value.begin(), value.end(),
                       [&pred](char c) { return pred(static_cast<unsigned char>(c)); });
  };
  switch (type.charset) {
    case Charset::kUtf8:
    case Charset::kCountry:  // checked above
      return OkStatus();
    case Charset::kAscii:
      return all([](unsigned char c) { return c < 0x80; }) ? OkStatus()
                                                           : BadParameter(what + " must be ASCII.");
    case Charset::kPrintable:
      return all([](unsigned char c) {
        return std::isalnum(c) != 0 ||
               std::string_view(" '()+,-./:=?").find(c) != std::string_view::npos;
      })
                 ? OkStatus()
                 : BadParameter(what + " may hold only letters, digits, spaces and '()+,-./:=?");
  }
  return OkStatus();
}

// SubjectParser reads the grammar certificate.h describes.
class SubjectParser {
 public:
  explicit SubjectParser(std::string_view text) : text_(text) {}

  StatusOr<std::vector<Rdn>> Parse() {
    std::vector<Rdn> rdns(1);
    while (true) {
      ASSIGN_OR_RETURN(Attribute attribute, ParseAttribute());
      RETURN_IF_ERROR(CheckValue(attribute));
      rdns.back().push_back(std::move(attribute));
      SkipSpaces();
      if (pos_ == text_.size()) {
        return rdns;
      }
      char separator = text_[pos_++];
      if (separator == ',' || separator == ';') {
        rdns.emplace_back();
      } else if (separator != '+') {
        return BadParameter("The subject has " + Excerpt(std::string(1, separator)) +
                            " where a separator (',', ';' or '+') belongs.");
      }
      SkipSpaces();
      if (pos_ == text_.size()) {
        return BadParameter("The subject ends with a separator.");
      }
    }
  }

 private:
  void SkipSpaces() {
    while (pos_ < text_.size() && text_[pos_] == ' ') {
      ++pos_;
    }
  }

  StatusOr<Attribute> ParseAttribute() {
    SkipSpaces();
    size_t equals = text_.find('=', pos_);
    if (equals == std::string_view::npos) {
      return BadParameter(
          "The subject has an attribute without '=': " + Excerpt(text_.substr(pos_)) + ".");
    }
    std::string_view label = text_.substr(pos_, equals - pos_);
    while (!label.empty() && label.back() == ' ') {
      label.remove_suffix(1);
    }
    if (label.empty()) {
      return BadParameter("The subject has a value without an attribute type.");
    }
    ASSIGN_OR_RETURN(Attribute attribute, LookUpType(label));
    pos_ = equals + 1;
    SkipSpaces();
    if (pos_ < text_.size() && text_[pos_] == '#') {
      return BadParameter("The subject's " + Excerpt(label) +
                          " has a hex-encoded value ('#'), which is not supported.");
    }
    if (pos_ < text_.size() && text_[pos_] == '"') {
      RETURN_IF_ERROR(ParseQuoted(&attribute));
    } else {
      RETURN_IF_ERROR(ParseUnquoted(&attribute));
    }
    return attribute;
  }

  // Reads the escape after a '\' at pos_ into `out`.
  Status ParseEscape(const Attribute& attribute, std::string* out) {
    ++pos_;
    if (pos_ + 1 < text_.size() && HexValue(text_[pos_]) >= 0 && HexValue(text_[pos_ + 1]) >= 0) {
      *out += static_cast<char>(HexValue(text_[pos_]) * 16 + HexValue(text_[pos_ + 1]));
      pos_ += 2;
      return OkStatus();
    }
    if (pos_ < text_.size() &&
        std::string_view(" ,+\"\\<>;=#").find(text_[pos_]) != std::string_view::npos) {
      *out += text_[pos_++];
      return OkStatus();
    }
    return BadParameter("The subject's " + Excerpt(attribute.label) +
                        " has a '\\' that escapes nothing it may escape.");
  }

  Status ParseQuoted(Attribute* attribute) {
    ++pos_;
    while (true) {
      if (pos_ >= text_.size()) {
        return BadParameter("The subject's " + Excerpt(attribute->label) +
                            " has a quote that is not closed.");
      }
      char c = text_[pos_];
      if (c == '"') {
        if (pos_ + 1 < text_.size() && text_[pos_ + 1] == '"') {
          attribute->value += '"';
          pos_ += 2;
          continue;
        }
        ++pos_;
        break;
      }
      if (c == '\\') {
        RETURN_IF_ERROR(ParseEscape(*attribute, &attribute->value));
        continue;
      }
      attribute->value += c;
      ++pos_;
    }
    SkipSpaces();
    if (pos_ < text_.size() &&
        std::string_view(",;+").find(text_[pos_]) == std::string_view::npos) {
      return BadParameter("The subject's " + Excerpt(attribute->label) +
                          " has text after its closing quote.");
    }
    return OkStatus();
  }

  Status ParseUnquoted(Attribute* attribute) {
    size_t keep = 0;  // the value's length up to its last escaped or non-space character
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (c == ',' || c == ';' || c == '+') {
        break;
      }
      if (c == '"') {
        return BadParameter("The subject's " + Excerpt(attribute->label) +
                            " has a '\"' inside a value; quote the whole value or escape it.");
      }
      if (c == '\\') {
        RETURN_IF_ERROR(ParseEscape(*attribute, &attribute->value));
        keep = attribute->value.size();
        continue;
      }
      attribute->value += c;
      ++pos_;
      if (c != ' ') {
        keep = attribute->value.size();
      }
    }
    attribute->value.resize(keep);
    return OkStatus();
  }

  std::string_view text_;
  size_t pos_ = 0;
};

StatusOr<std::vector<Rdn>> ParseSubject(std::string_view subject) {
  if (subject.size() > kMaxSubjectBytes) {
    return BadParameter("The subject is longer than 1 KiB.");
  }
  if (subject.find_first_not_of(' ') == std::string_view::npos) {
    return BadParameter("The subject is empty.");
  }
  return SubjectParser(subject).Parse();
}

bool NeedsQuotes(std::string_view value) {
  if (value.empty() || value.front() == ' ' || value.back() == ' ' || value.front() == '#') {
    return true;
  }
  return std::any_of(value.begin(), value.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f ||
           std::string_view(",+=\";<>\\").find(c) != std::string_view::npos;
  });
}

void AppendValue(std::string_view value, std::string* out) {
  if (!NeedsQuotes(value)) {
    *out += value;
    return;
  }
  *out += '"';
  for (char c : value) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"') {
      *out += "\"\"";
    } else if (c == '\\') {
      *out += "\\\\";
    } else if (u < 0x20 || u == 0x7f) {
      // SECURITY: a control character (a NUL inside a CN, say) is written
      // out, never passed on raw to logs and consoles.
      static constexpr char kHex[] = "0123456789ABCDEF";
      *out += '\\';
      *out += kHex[u >> 4];
      *out += kHex[u & 0xf];
    } else {
      *out += c;
    }
  }
  *out += '"';
}

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::toupper(static_cast<unsigned char>(x)) ==
                  std::toupper(static_cast<unsigned char>(y));
         });
}

bool IsDottedOid(std::string_view text) {
  if (text.empty() || text.size() > kMaxEntryBytes) {
    return false;
  }
  std::vector<std::string_view> arcs;
  size_t start = 0;
  while (true) {
    size_t dot = text.find('.', start);
    std::string_view arc = text.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (arc.empty() || (arc.size() > 1 && arc[0] == '0') ||
        !std::all_of(arc.begin(), arc.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return false;
    }
    arcs.push_back(arc);
    if (dot == std::string_view::npos) {
      break;
    }
    start = dot + 1;
  }
  if (arcs.size() < 2 || arcs[0].size() != 1 || arcs[0][0] > '2') {
    return false;
  }
  return arcs[0][0] == '2' || arcs[1].size() == 1 || (arcs[1].size() == 2 && arcs[1][0] < '4');
}

int64_t Utf8Chars(std::string_view text) {
  int64_t chars = 0;
  for (size_t i = 0; i < text.size(); ++chars) {
    auto lead = static_cast<unsigned char>(text[i]);
    size_t len = lead < 0x80           ? 1
                 : (lead >> 5) == 0x6  ? 2
                 : (lead >> 4) == 0xe  ? 3
                 : (lead >> 3) == 0x1e ? 4
                                       : 0;
    if (len == 0 || i + len > text.size()) {
      return -1;
    }
    uint32_t cp = len == 1 ? lead : lead & (0x7f >> len);
    for (size_t k = 1; k < len; ++k) {
      auto c = static_cast<unsigned char>(text[i + k]);
      if ((c & 0xc0) != 0x80) {
        return -1;
      }
      cp = (cp << 6) | (c & 0x3f);
    }
    static constexpr std::array<uint32_t, 5> kMinForLength = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp < 0x20 ||
        (cp >= 0x7f && cp <= 0x9f)) {
      return -1;
    }
    i += len;
  }
  return chars;
}

std::string OidText(const ASN1_OBJECT* oid) {
  std::array<char, 128> buffer{};
  int len = OBJ_obj2txt(buffer.data(), static_cast<int>(buffer.size()), oid, 1);
  if (len <= 0) {
    return "";
  }
  if (static_cast<size_t>(len) < buffer.size()) {
    return std::string(buffer.data(), static_cast<size_t>(len));
  }
  std::string out(static_cast<size_t>(len) + 1, '\0');
  OBJ_obj2txt(out.data(), len + 1, oid, 1);
  out.resize(static_cast<size_t>(len));
  return out;
}

StatusOr<X509NamePtr> SubjectToName(std::string_view subject) {
  X509NamePtr name(X509_NAME_new());
  if (!name) {
    return OpenSslFailure("cannot build a name");
  }
  if (subject.empty()) {
    return name;
  }
  ASSIGN_OR_RETURN(std::vector<Rdn> rdns, ParseSubject(subject));
  // RFC 4514: the string is most specific first, the DER least.
  for (auto rdn = rdns.rbegin(); rdn != rdns.rend(); ++rdn) {
    for (size_t i = 0; i < rdn->size(); ++i) {
      const Attribute& attribute = (*rdn)[i];
      if (X509_NAME_add_entry_by_OBJ(name.get(), attribute.oid.get(), MBSTRING_UTF8,
                                     reinterpret_cast<const unsigned char*>(attribute.value.data()),
                                     static_cast<int>(attribute.value.size()), -1,
                                     i == 0 ? 0 : -1) != 1) {
        ERR_clear_error();
        return BadParameter("The value of the subject's " + Excerpt(attribute.label) +
                            " is not valid for its type.");
      }
    }
  }
  return name;
}

StatusOr<std::string> NameToSubject(const X509_NAME* name) {
  std::string out;
  int previous_set = -1;
  for (int i = X509_NAME_entry_count(name) - 1; i >= 0; --i) {
    const X509_NAME_ENTRY* entry = X509_NAME_get_entry(name, i);
    int set = X509_NAME_ENTRY_set(entry);
    if (!out.empty()) {
      out += set == previous_set ? " + " : ", ";
    }
    previous_set = set;
    const ASN1_OBJECT* oid = X509_NAME_ENTRY_get_object(entry);
    const AttributeType* type = AttributeTypeByNid(OBJ_obj2nid(oid));
    out += type != nullptr ? type->names[0] : "OID." + OidText(oid);
    out += '=';
    unsigned char* utf8 = nullptr;
    int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
    OpenSslBytesPtr owned(utf8);
    if (len < 0) {
      ERR_clear_error();
      return BadParameter("A name has an attribute whose value is not text.");
    }
    AppendValue(std::string_view(reinterpret_cast<const char*>(utf8), static_cast<size_t>(len)),
                &out);
  }
  return out;
}

}  // namespace cert_internal

using cert_internal::BadParameter;

StatusOr<std::string> NormalizeSubject(std::string_view subject) {
  if (subject.empty()) {
    return BadParameter("The subject is empty.");
  }
  ASSIGN_OR_RETURN(X509NamePtr name, cert_internal::SubjectToName(subject));
  // Through DER and back, so that a multi-valued RDN is in the order (DER's
  // sorted SET OF) a certificate with this name reads back in.
  auto decoded = cert_internal::DecodeDer<X509NamePtr>(
      cert_internal::ToDer<X509_NAME>(name.get(), i2d_X509_NAME), d2i_X509_NAME, "The subject",
      "a name");
  if (!decoded.ok()) {
    return InternalError("cannot encode a name");
  }
  return cert_internal::NameToSubject(decoded->get());
}

}  // namespace coffer::crypto
