#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace coffer::events {

// Where a webhook may be delivered. A server that posts to URLs its callers
// choose must not become their way into its own network (SSRF): by default
// only public addresses are reached (docs/events.md, "Targets").

// The kind of an IP address, as far as webhook delivery cares.
enum class AddressKind {
  kPublic,
  kLoopback,   // 127.0.0.0/8, ::1
  kPrivate,    // 10/8, 172.16/12, 192.168/16, 100.64/10, 198.18/15, fc00::/7, fec0::/10
  kLinkLocal,  // 169.254/16 (cloud metadata at 169.254.169.254), fe80::/10
  // Never a delivery target: unspecified (0.0.0.0/8, ::), multicast
  // (224/4, ff00::/8), reserved and broadcast (240/4).
  kForbidden,
};

// ClassifyAddress gives the kind of a numeric IPv4 or IPv6 address (without
// brackets or a zone). IPv6 addresses that carry an IPv4 address (mapped
// ::ffff:a.b.c.d, compatible ::a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16)
// are the kind of the address they carry. kInvalidArgument when `ip` is not
// a numeric address.
StatusOr<AddressKind> ClassifyAddress(std::string_view ip);

// Which kinds besides kPublic the operator allows (`coffer server
// --webhook-allow-loopback`, `--webhook-allow-private`,
// `--webhook-allow-link-local`; dev mode allows loopback).
struct TargetPolicy {
  bool allow_loopback = false;
  bool allow_private = false;
  bool allow_link_local = false;

  bool Allows(AddressKind kind) const;
};

// The host and port of a webhook URL (https:// or http://), as a client
// connects to them: `host` without brackets, `port` defaulted from the
// scheme. kInvalidArgument for a URL without a usable authority (userinfo,
// no host, a bad port).
struct TargetHost {
  std::string host;
  std::string port;
};
StatusOr<TargetHost> ParseTargetHost(std::string_view url);

// Resolves a host name to its numeric addresses (all of them). A numeric
// host resolves to itself. kUnavailable when it cannot be resolved.
using HostResolver = std::function<StatusOr<std::vector<std::string>>(const std::string& host)>;
// The system resolver (getaddrinfo).
StatusOr<std::vector<std::string>> ResolveHost(const std::string& host);

// CheckLiteralTarget refuses (kInvalidArgument, naming the operator flag) a
// URL whose host is a numeric address the policy does not allow. Host names
// pass: they are checked when resolved. For the management plane, which
// refuses such a subscription before writing anything.
Status CheckLiteralTarget(std::string_view url, const TargetPolicy& policy);

// ResolveTarget resolves the URL's host and returns the address to connect
// to. It refuses (kPermissionDenied) the target when ANY address of the
// host is of a kind the policy does not allow, so that a host with one
// public and one internal address cannot be used to reach the internal
// one. The caller connects to exactly the address returned (never resolves
// again), so the answer cannot change between the check and the connection
// (DNS rebinding). kUnavailable when the host does not resolve.
//
// SECURITY: error messages name the kind of address refused, never the
// address, so they do not map the server's network for the caller.
StatusOr<std::string> ResolveTarget(std::string_view url, const TargetPolicy& policy,
                                    const HostResolver& resolver);

}  // namespace coffer::events
