#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace coffer::server {

// A public name of the server, as `--authority-host` and `--dns-suffix`
// take it: a DNS name with an optional port ("coffer.corp.example",
// "vault.corp.example:8443").
struct PublicName {
  std::string name;   // lower-case
  uint16_t port = 0;  // 0: not given (the server's listening port)
};

// ParsePublicName reads NAME[:PORT]. The name is a DNS name (letters,
// digits, '-' and '.', labels of 1-63 characters, 253 at most, not all
// digits: no IP address, no wildcard); the port 1-65535. kInvalidArgument
// names `what` and the rule broken.
StatusOr<PublicName> ParsePublicName(std::string_view value, std::string_view what);

// CoversName reports whether a certificate with DNS SANs `sans` is valid
// for host `name` (RFC 6125: a wildcard stands for exactly one left-most
// label). Case-insensitive.
bool CoversName(const std::vector<std::string>& sans, const std::string& name);

}  // namespace coffer::server
