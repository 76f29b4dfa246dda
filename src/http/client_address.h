#pragma once

#include <string>
#include <string_view>

namespace coffer::http {

// ClientAddressKey names the bucket in which per-address limits (connection
// caps, failed-credential limits) count a client's address
// (http::Request::remote_address):
//   - an IPv4 address counts as itself ("192.0.2.7");
//   - an IPv6 address counts as its /64 prefix ("2001:db8:1:2::/64"): a site,
//     and often a single host, holds a whole /64, so counting its addresses
//     apart would let one client look like 2^64 of them;
//   - an IPv4-mapped IPv6 address counts as its IPv4 address;
//   - anything else (an empty address, a Unix socket) counts as its first 64
//     characters, with a "?" in front so it cannot collide with an address.
// Thread-safe (a pure function).
std::string ClientAddressKey(std::string_view address);

}  // namespace coffer::http
