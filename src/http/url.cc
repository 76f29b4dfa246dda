#include "http/url.h"

#include "common/strings.h"

#include <arpa/inet.h>

namespace coffer::http {
namespace {

constexpr size_t kMaxHostLength = 253;
constexpr size_t kMaxLabelLength = 63;

Status Bad(std::string why) {
  return InvalidArgumentError("malformed URL: " + std::move(why), "BadParameter");
}

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

bool IsLabelChar(char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_';
}

// ParseDecimal reads 1-5 digits without a leading zero (but "0" itself).
bool ParseDecimal(std::string_view s, uint32_t max, uint32_t* out) {
  if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) {
    return false;
  }
  uint32_t v = 0;
  for (char c : s) {
    if (!IsDigit(c)) {
      return false;
    }
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > max) {
    return false;
  }
  *out = v;
  return true;
}

// EndsInANumber is WHATWG URL's test for a host the resolver reads as an
// IPv4 address: its last label is decimal digits, or "0x" and hex digits.
bool EndsInANumber(std::string_view last_label) {
  std::string_view digits = last_label;
  bool hex = digits.size() >= 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X');
  if (hex) {
    digits.remove_prefix(2);
  }
  for (char c : digits) {
    bool ok = IsDigit(c) || (hex && ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')));
    if (!ok) {
      return false;
    }
  }
  return true;
}

bool IsCanonicalIpv4(std::string_view host) {
  std::vector<std::string_view> parts = Split(host, '.');
  if (parts.size() != 4) {
    return false;
  }
  for (std::string_view p : parts) {
    uint32_t v = 0;
    if (p.size() > 3 || !ParseDecimal(p, 255, &v)) {
      return false;
    }
  }
  return true;
}

// ParseName checks a DNS name or dotted-quad address and lower-cases it.
StatusOr<std::string> ParseName(std::string_view host) {
  if (host.empty()) {
    return Bad("the host is empty");
  }
  if (host.size() > kMaxHostLength) {
    return Bad("the host is longer than 253 characters");
  }
  std::vector<std::string_view> labels = Split(host, '.');
  for (std::string_view label : labels) {
    if (label.empty() || label.size() > kMaxLabelLength) {
      return Bad("a host label is empty or longer than 63 characters");
    }
    for (char c : label) {
      if (!IsLabelChar(c)) {
        return Bad("the host holds a character other than A-Z, a-z, 0-9, '-', '_' and '.'");
      }
    }
  }
  // SECURITY: a host the resolver would read as an IPv4 address must be
  // written the one way the checks compare ("127.1", "2130706433" and
  // "0177.0.0.1" all reach 127.0.0.1).
  if (EndsInANumber(labels.back()) && !IsCanonicalIpv4(host)) {
    return Bad("a numeric host must be a dotted-quad IPv4 address in canonical form");
  }
  return AsciiLower(host);
}

StatusOr<std::string> ParseIpv6(std::string_view literal) {
  // The brackets are stripped; inet_pton refuses zone ids ("%25eth0").
  if (literal.empty() || literal.size() > 45) {
    return Bad("malformed IPv6 address");
  }
  std::string text(literal);
  in6_addr addr{};
  if (::inet_pton(AF_INET6, text.c_str(), &addr) != 1) {
    return Bad("malformed IPv6 address");
  }
  char canonical[INET6_ADDRSTRLEN];
  if (::inet_ntop(AF_INET6, &addr, canonical, sizeof(canonical)) == nullptr) {
    return Bad("malformed IPv6 address");
  }
  return std::string(canonical);
}

}  // namespace

std::string Url::Authority() const {
  std::string out = ipv6 ? "[" + host + "]" : host;
  if (!default_port()) {
    out += ":" + std::to_string(port);
  }
  return out;
}

std::string Url::Origin() const {
  return scheme + "://" + Authority();
}

std::string_view Url::Path() const {
  std::string_view all = path_and_query;
  return all.substr(0, all.find('?'));
}

std::string_view Url::Query() const {
  std::string_view all = path_and_query;
  size_t q = all.find('?');
  return q == std::string_view::npos ? std::string_view() : all.substr(q + 1);
}

bool Url::IsLoopback() const {
  return ipv6 ? host == "::1" : (host == "localhost" || host == "127.0.0.1");
}

std::string Url::ToString() const {
  return Origin() + path_and_query;
}

StatusOr<Url> ParseUrl(std::string_view text) {
  if (text.size() > kMaxUrlLength) {
    return Bad("longer than " + std::to_string(kMaxUrlLength) + " bytes");
  }
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      return Bad("control characters, spaces and non-ASCII bytes are not allowed");
    }
  }
  if (text.find('#') != std::string_view::npos) {
    return Bad("a fragment ('#') is not allowed");
  }
  Url url;
  size_t sep = text.find("://");
  std::string scheme = AsciiLower(text.substr(0, sep));
  if (sep == std::string_view::npos || (scheme != "https" && scheme != "http")) {
    return Bad("the scheme must be https:// or http://");
  }
  url.scheme = std::move(scheme);
  std::string_view rest = text.substr(sep + 3);
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  url.path_and_query = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  // SECURITY: a client and a check that end the authority at different
  // characters see different hosts; refuse the characters that make them
  // differ instead of choosing one reading.
  if (authority.find_first_of("@?#\\") != std::string_view::npos) {
    return Bad("the authority must not hold user information, '?', '#' or '\\'");
  }
  std::string_view host = authority;
  std::string_view port;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return Bad("an IPv6 address has no closing ']'");
    }
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return Bad("only a port may follow an IPv6 address");
      }
      port = after.substr(1);
      has_port = true;
    }
    ASSIGN_OR_RETURN(url.host, ParseIpv6(host));
    url.ipv6 = true;
  } else {
    size_t colon = authority.find(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
      has_port = true;
    }
    ASSIGN_OR_RETURN(url.host, ParseName(host));
  }
  url.port = url.tls() ? 443 : 80;
  if (has_port) {
    uint32_t value = 0;
    if (!ParseDecimal(port, 65535, &value) || value == 0) {
      return Bad("the port must be 1-65535");
    }
    url.port = static_cast<uint16_t>(value);
  }
  return url;
}

}  // namespace coffer::http
