#pragma once

// The one reader of absolute http:// and https:// URLs. The server's URL
// checks (IsTrustworthyUrl: issuers, webhooks, identity endpoints), the HTTP
// client that then connects, and every other place that takes a URL apart use
// it, so that the host a check approved is the host a request goes to.

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace coffer::http {

// Url is an absolute URL as ParseUrl accepts it, in canonical form.
struct Url {
  std::string scheme;  // "https" or "http" (lower-case)
  // Lower-case DNS name, dotted-quad IPv4 address, or IPv6 address in the
  // form inet_ntop writes ("::1"), without brackets.
  std::string host;
  bool ipv6 = false;  // `host` is an IPv6 address (bracketed in Authority())
  uint16_t port = 0;  // the explicit port, or the scheme's (443, 80)
  // The path and query, as given: starts with '/' ("/" when the URL has no
  // path). Never a fragment.
  std::string path_and_query;

  bool tls() const { return scheme == "https"; }
  bool default_port() const { return port == (tls() ? 443 : 80); }
  // Authority is the host ("[...]" for IPv6) with ":port" unless it is the
  // scheme's default: what a Host header carries.
  std::string Authority() const;
  // Origin is scheme://Authority(), with no trailing '/'.
  std::string Origin() const;
  // Path is path_and_query without its query.
  std::string_view Path() const;
  // Query is what follows the first '?' of path_and_query, or "".
  std::string_view Query() const;
  // IsLoopback reports a host of localhost, 127.0.0.1 or ::1 (these names
  // only: another address of 127/8 or a name that resolves to loopback is
  // not counted).
  bool IsLoopback() const;
  // ToString is Origin() + path_and_query.
  std::string ToString() const;
};

inline constexpr size_t kMaxUrlLength = 8192;

// ParseUrl reads an absolute http:// or https:// URL. It accepts
//   scheme "://" host [":" port] [path-and-query]
// where:
// - the scheme is http or https, in any case;
// - the authority runs to the first '/' (or the end) and holds no userinfo
//   ('@'), no '?', no '#' and no '\\': "http://localhost?.evil.example/" is
//   refused, not read as a loopback URL;
// - the host is a DNS name (labels of 1-63 of [A-Za-z0-9_-], dot-separated,
//   no empty label, at most 253 characters), a dotted-quad IPv4 address in
//   canonical form (four decimal parts 0-255 without leading zeros; a name
//   whose last label is a number, decimal or "0x" hex, must be one, as in
//   WHATWG URL, so "127.1", "2130706433" and "0x7f.0.0.1" are refused
//   rather than left to the resolver's reading), or
//   an IPv6 address in brackets (no zone id); an IPv6 address is only ever
//   read in brackets;
// - the port, when present, is 1-65535 in decimal without leading zeros;
// - the path and query are printable ASCII (0x21-0x7e) without '#'; control
//   characters, spaces and bytes >= 0x80 are refused anywhere;
// - the whole URL is at most kMaxUrlLength bytes.
// kInvalidArgument naming the rule otherwise; the message never quotes the
// URL (it may carry a credential in its query).
StatusOr<Url> ParseUrl(std::string_view text);

}  // namespace coffer::http
