#pragma once

// `coffer doctor`: one standalone mount checked end to end, in the order of
// the CSI driver's troubleshooting checklist — the SecretProviderClass, the
// identity, the network path to the vault, the token, and the permission on
// each object — with what is wrong and how to fix it.

#include <cstdint>
#include <string>
#include <vector>

#include "agent/agent_config.h"
#include "agent/spc.h"
#include "coffer/credentials.h"
#include "coffer/http_transport.h"

namespace coffer::agent {

struct DoctorCheck {
  std::string what;  // "SecretProviderClass", "identity", "vault", "token", "secret db-pass"
  bool ok = false;
  std::string detail;  // what was found, or what is wrong
  std::string fix;     // how to fix it ("" when ok)
  // ok, but worth a look: an object that expires within the horizon or has
  // expired, an optional object the mount goes without.
  bool warning = false;
};

struct DoctorOptions {
  std::string vault_dns_suffix = "vault.localhost";
  TransportOptions transport;
  CredentialOptions credential;
  // Objects that expire within this many seconds are warned about.
  int64_t expiry_warning_seconds = 7 * 24 * 3600;
};

// CheckMount runs the checks and stops at the first failure that makes the
// later ones meaningless (no SPC, no vault); every object is checked.
std::vector<DoctorCheck> CheckMount(const MountConfig& mount, const DoctorOptions& options);

}  // namespace coffer::agent
