#include "events/webhook_target.h"

#include <netdb.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>

#include "http/url.h"

#include <arpa/inet.h>
#include <sys/socket.h>

namespace coffer::events {

namespace {

AddressKind ClassifyV4(uint32_t a) {
  auto in = [a](uint32_t net, int bits) {
    uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
    return (a & mask) == net;
  };
  if (in(0x00000000, 8) || in(0xE0000000, 4) || in(0xF0000000, 4)) {
    return AddressKind::kForbidden;  // "this network", multicast, reserved and broadcast
  }
  if (in(0x7F000000, 8)) {
    return AddressKind::kLoopback;
  }
  if (in(0xA9FE0000, 16)) {
    return AddressKind::kLinkLocal;
  }
  if (in(0x0A000000, 8) || in(0xAC100000, 12) || in(0xC0A80000, 16) || in(0x64400000, 10) ||
      in(0xC6120000, 15)) {
    return AddressKind::kPrivate;
  }
  return AddressKind::kPublic;
}

uint32_t V4At(const std::array<uint8_t, 16>& b, size_t i) {
  return uint32_t{b[i]} << 24 | uint32_t{b[i + 1]} << 16 | uint32_t{b[i + 2]} << 8 | b[i + 3];
}

AddressKind ClassifyV6(const std::array<uint8_t, 16>& b) {
  bool zero80 = true;  // the first 80 bits are zero
  for (size_t i = 0; i < 10; ++i) {
    zero80 = zero80 && b[i] == 0;
  }
  if (zero80 && b[10] == 0xFF && b[11] == 0xFF) {
    return ClassifyV4(V4At(b, 12));  // ::ffff:a.b.c.d
  }
  if (zero80 && b[10] == 0 && b[11] == 0) {
    uint32_t low = V4At(b, 12);
    if (low == 0) {
      return AddressKind::kForbidden;  // ::
    }
    if (low == 1) {
      return AddressKind::kLoopback;  // ::1
    }
    return ClassifyV4(low);  // ::a.b.c.d (deprecated IPv4-compatible)
  }
  static constexpr uint8_t kNat64[12] = {0x00, 0x64, 0xFF, 0x9B};
  if (std::equal(b.begin(), b.begin() + 12, kNat64)) {
    return ClassifyV4(V4At(b, 12));  // 64:ff9b::a.b.c.d
  }
  if (b[0] == 0x20 && b[1] == 0x02) {
    return ClassifyV4(V4At(b, 2));  // 6to4: 2002:AABB:CCDD::/48
  }
  if (b[0] == 0xFF) {
    return AddressKind::kForbidden;  // multicast
  }
  if (b[0] == 0xFE && (b[1] & 0xC0) == 0x80) {
    return AddressKind::kLinkLocal;  // fe80::/10
  }
  if ((b[0] & 0xFE) == 0xFC || (b[0] == 0xFE && (b[1] & 0xC0) == 0xC0)) {
    return AddressKind::kPrivate;  // fc00::/7 unique local, fec0::/10 site-local
  }
  return AddressKind::kPublic;
}

const char* KindName(AddressKind kind) {
  switch (kind) {
    case AddressKind::kPublic:
      return "a public";
    case AddressKind::kLoopback:
      return "a loopback";
    case AddressKind::kPrivate:
      return "a private";
    case AddressKind::kLinkLocal:
      return "a link-local";
    case AddressKind::kForbidden:
      return "an unspecified, multicast or reserved";
  }
  return "an unknown";
}

const char* FlagFor(AddressKind kind) {
  switch (kind) {
    case AddressKind::kLoopback:
      return " (the operator allows it with --webhook-allow-loopback)";
    case AddressKind::kPrivate:
      return " (the operator allows it with --webhook-allow-private)";
    case AddressKind::kLinkLocal:
      return " (the operator allows it with --webhook-allow-link-local)";
    case AddressKind::kPublic:
    case AddressKind::kForbidden:
      break;
  }
  return "";
}

// Numeric addresses of `host` from getaddrinfo; with `numeric_only`, none
// unless the host is itself a numeric address (in any form inet_aton takes).
StatusOr<std::vector<std::string>> Addresses(const std::string& host, bool numeric_only) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = numeric_only ? AI_NUMERICHOST : 0;
  addrinfo* found = nullptr;
  int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc != 0) {
    return UnavailableError("the endpoint's host does not resolve");
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owned(found, &::freeaddrinfo);
  std::vector<std::string> out;
  for (const addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    char text[NI_MAXHOST];
    if (::getnameinfo(ai->ai_addr, ai->ai_addrlen, text, sizeof text, nullptr, 0, NI_NUMERICHOST) ==
        0) {
      out.emplace_back(text);
    }
  }
  if (out.empty()) {
    return UnavailableError("the endpoint's host does not resolve");
  }
  return out;
}

Status Refused(AddressKind kind) {
  return PermissionDeniedError(
      std::string("the endpoint's host is or resolves to ") + KindName(kind) +
          " address, which this server does not deliver webhooks to" + FlagFor(kind),
      "InvalidRequest");
}

}  // namespace

StatusOr<AddressKind> ClassifyAddress(std::string_view ip) {
  std::string text(ip.substr(0, ip.find('%')));  // no IPv6 zone
  in_addr v4{};
  if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    return ClassifyV4(ntohl(v4.s_addr));
  }
  std::array<uint8_t, 16> v6{};
  if (::inet_pton(AF_INET6, text.c_str(), v6.data()) == 1) {
    return ClassifyV6(v6);
  }
  return InvalidArgumentError("not a numeric IP address");
}

bool TargetPolicy::Allows(AddressKind kind) const {
  switch (kind) {
    case AddressKind::kPublic:
      return true;
    case AddressKind::kLoopback:
      return allow_loopback;
    case AddressKind::kPrivate:
      return allow_private;
    case AddressKind::kLinkLocal:
      return allow_link_local;
    case AddressKind::kForbidden:
      return false;
  }
  return false;
}

StatusOr<TargetHost> ParseTargetHost(std::string_view url) {
  // SECURITY: the one URL parser the server's checks and its HTTP client
  // share (http/url.h), so the host checked here is the host delivered to.
  auto parsed = http::ParseUrl(url);
  if (!parsed.ok()) {
    return InvalidArgumentError("the endpoint URL is not valid: " +
                                std::string(parsed.status().message()));
  }
  return TargetHost{parsed->host, std::to_string(parsed->port)};
}

StatusOr<std::vector<std::string>> ResolveHost(const std::string& host) {
  return Addresses(host, false);
}

Status CheckLiteralTarget(std::string_view url, const TargetPolicy& policy) {
  ASSIGN_OR_RETURN(TargetHost target, ParseTargetHost(url));
  auto numeric = Addresses(target.host, true);
  if (!numeric.ok()) {
    return OkStatus();  // a name: checked when it is resolved
  }
  for (const std::string& address : *numeric) {
    auto kind = ClassifyAddress(address);
    if (!kind.ok() || !policy.Allows(*kind)) {
      Status refused = Refused(kind.ok() ? *kind : AddressKind::kForbidden);
      return InvalidArgumentError(std::string(refused.message()), "InvalidRequest");
    }
  }
  return OkStatus();
}

StatusOr<std::string> ResolveTarget(std::string_view url, const TargetPolicy& policy,
                                    const HostResolver& resolver) {
  ASSIGN_OR_RETURN(TargetHost target, ParseTargetHost(url));
  // A numeric host is its own address (in any form inet_aton reads: 127.1,
  // 0x7f000001); only names go to the resolver.
  auto numeric = Addresses(target.host, true);
  ASSIGN_OR_RETURN(std::vector<std::string> addresses, numeric.ok() ? std::move(numeric)
                                                       : resolver   ? resolver(target.host)
                                                                    : ResolveHost(target.host));
  if (addresses.empty()) {
    return UnavailableError("the endpoint's host does not resolve");
  }
  for (const std::string& address : addresses) {
    auto kind = ClassifyAddress(address);
    if (!kind.ok()) {
      return Refused(AddressKind::kForbidden);
    }
    if (!policy.Allows(*kind)) {
      return Refused(*kind);
    }
  }
  return addresses.front();
}

}  // namespace coffer::events
