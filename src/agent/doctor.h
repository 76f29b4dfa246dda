#pragma once

// `coffer doctor`: one standalone mount checked end to end, in the order of
// the CSI driver's troubleshooting checklist — the SecretProviderClass, the
// identity, the network path to the vault, the token, and the permission on
// each object — with what is wrong and how to fix it.

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
};

struct DoctorOptions {
  std::string vault_dns_suffix = "vault.localhost";
  TransportOptions transport;
  CredentialOptions credential;
};

// CheckMount runs the checks and stops at the first failure that makes the
// later ones meaningless (no SPC, no vault); every object is checked.
std::vector<DoctorCheck> CheckMount(const MountConfig& mount, const DoctorOptions& options);

}  // namespace coffer::agent
