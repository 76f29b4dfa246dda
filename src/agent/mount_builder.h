#pragma once

// What one mount holds: the Azure provider's output rules (csi-driver.md
// §3.4–3.7) applied to what a ReadRound reads. Shared by the CSI provider
// (which hands the files to the driver) and standalone mounts (which write
// them with the atomic writer).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/atomic_writer.h"
#include "agent/spc.h"
#include "agent/vault_reader.h"
#include "common/status.h"

namespace coffer::agent {

// The outcome of one file of the mount: an object, or one version of an
// object in version-history mode.
struct ObjectResult {
  std::string id;       // "secret/db-pass", "secret/db-pass/1" (history), "key/signing"
  std::string version;  // the Key Vault version, "" when the read failed
  std::string file;     // the path in the mount
  Status status;        // why this object could not be read
};

struct BuiltMount {
  // The first failure, naming its object; the mount is all or nothing, so
  // when this is not OK `files` is empty and nothing is to be written.
  Status status;
  std::vector<PayloadFile> files;
  std::vector<ObjectResult> objects;  // every object, in the SPC's order
};

struct BuildOptions {
  // The vaults' DNS suffix with its port: "vault.localhost:8443".
  std::string vault_dns_suffix = "vault.localhost";
  // The mount's default file mode (the request's `permission`).
  uint32_t default_mode = 0644;
  // Objects of one mount read at once.
  int max_parallel = 8;
};

// ParallelFor calls fn(0) … fn(n-1) on up to `max_threads` threads (the
// caller's among them) and returns when all have returned.
void ParallelFor(size_t n, size_t max_threads, const std::function<void(size_t)>& fn);

// VaultUrlFor is https://<keyvaultName>.<suffix>, as the Azure provider
// builds it.
std::string VaultUrlFor(std::string_view keyvault_name, std::string_view vault_dns_suffix);

// BuildMount reads every object of `params` as `identity` through `round`
// and renders the files: a secret's value (decoded for objectEncoding hex or
// base64) under objectAlias or objectName; with objectVersionHistory N > 1,
// the newest N enabled versions from objectVersion on, as <file>/0 (the
// newest) … <file>/N-1. A key is its public half as PEM "PUBLIC KEY"
// (RSA, or EC on P-256, P-384 and P-521, as the Azure provider; other types
// and curves are kInvalidArgument), with the key's version in its
// ObjectResult; objectVersionHistory on a key and certificates are
// kUnimplemented. Error messages name the object as the Azure provider does
// ("objectType:secret, objectName:db-pass, objectVersion:") and never carry
// a value.
BuiltMount BuildMount(const AzureMountParameters& params, const MountIdentity& identity,
                      ReadRound& round, const BuildOptions& options);

}  // namespace coffer::agent
