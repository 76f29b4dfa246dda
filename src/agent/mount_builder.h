#pragma once

// What one mount holds: the Azure provider's output rules (csi-driver.md
// §3.4–3.7) applied to what a ReadRound reads. Shared by the CSI provider
// (which hands the files to the driver) and standalone mounts (which write
// them with the atomic writer).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/atomic_writer.h"
#include "agent/metrics.h"
#include "agent/spc.h"
#include "agent/vault_reader.h"
#include "common/status.h"

namespace coffer::agent {

// The outcome of one file of the mount: an object, or one version of an
// object in version-history mode.
struct ObjectResult {
  // "secret/db-pass", "secret/db-pass/1" (history), "key/signing",
  // "cert/tls"; a certificate's secret's .crt and .key files have its id.
  std::string id;
  std::string version;  // the Key Vault version, "" when the read failed
  std::string file;     // the path in the mount
  Status status;        // why this object could not be read
  // The version's expiry (Unix seconds), when it has one.
  std::optional<int64_t> expires_on;
  // Coffer's optional objects: `optional` as the SPC says; `skipped` when
  // the object was missing, disabled or forbidden and the mount went on
  // without it (`status` says why), `kept` when its file kept the content
  // last written (optionalFallback lastKnown).
  bool optional = false;
  bool skipped = false;
  bool kept = false;
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
  // The Azure provider's --write-cert-and-key-in-separate-files: a
  // certificate's secret also gives <file>.crt (its CERTIFICATE blocks) and
  // <file>.key (its other blocks: the private key); both empty for
  // objectFormat pfx, whose content is not PEM.
  bool write_cert_and_key_in_separate_files = false;
  // Where the mount's files are now (the target directory), for optional
  // objects with optionalFallback lastKnown; "" when unknown (they are then
  // absent).
  std::string previous_dir;
};

// ExpiryWarning is what operators are told of a version that expires at
// `expires_on` (Unix seconds): "" when that is more than `horizon_seconds`
// after `now`, else that it expires soon or has expired.
std::string ExpiryWarning(int64_t expires_on, int64_t now, int64_t horizon_seconds);

// ExpiryWarnings names each object of a mount that ExpiryWarning warns of,
// once per object.
std::vector<std::string> ExpiryWarnings(const std::vector<ObjectResult>& objects, int64_t now,
                                        int64_t horizon_seconds);

// GaugesOf is what the metrics say of a mount's objects.
std::vector<AgentMetrics::ObjectGauge> GaugesOf(const std::vector<ObjectResult>& objects);

// IsUnavailable tells a missing, disabled or forbidden object (404, 403)
// from every other failure (the vault unreachable, throttled, the identity
// refused): only the first kind leaves an optional object out of a mount.
bool IsUnavailable(const Status& status);
// IsDisabled: the read found the version disabled.
bool IsDisabled(const Status& status);

// ParallelFor calls fn(0) … fn(n-1) on up to `max_threads` threads (the
// caller's among them) and returns when all have returned.
void ParallelFor(size_t n, size_t max_threads, const std::function<void(size_t)>& fn);

// VaultUrlFor is https://<keyvaultName>.<suffix>, as the Azure provider
// builds it.
std::string VaultUrlFor(std::string_view keyvault_name, std::string_view vault_dns_suffix);

// BuildMount reads every object of `params` as `identity` through `round`
// and renders the files as the Azure provider does (csi-driver.md §3.4):
//   - a secret: its value (decoded for objectEncoding hex or base64) under
//     objectAlias or objectName. A certificate's secret (one with a kid) is
//     first made what the provider makes of it: application/x-pem-file as
//     stored; application/x-pkcs12 with objectFormat pfx as stored (the
//     base64 text; with objectEncoding base64 the PFX itself), else opened
//     with the empty password and written as PEM, the key as PKCS#8
//     "PRIVATE KEY" first, then the certificates from the leaf to the root;
//     any other content type is kInvalidArgument ("unknown content type");
//   - a key: its public half as PEM "PUBLIC KEY" (RSA, or EC on P-256, P-384
//     and P-521, as the Azure provider; other types and curves are
//     kInvalidArgument);
//   - a cert: the certificate alone, one PEM "CERTIFICATE".
// An optional object that IsUnavailable leaves its file out (or, with
// optionalFallback lastKnown, in with the content it has under
// options.previous_dir, read back) and its ObjectResult says so; any other
// failure fails the mount as for any object.
// Each with its own version in its ObjectResult. With objectVersionHistory
// N > 1, the newest N enabled versions from objectVersion on, as <file>/0
// (the newest) … <file>/N-1. Error messages name the object as the Azure
// provider does ("objectType:secret, objectName:db-pass, objectVersion:")
// and never carry a value or key material.
//
// SECURITY: the files of a certificate's secret hold its private key; it is
// in `files` and, on the way there, only in buffers that are wiped. The
// caller should wipe the files' contents once written.
BuiltMount BuildMount(const AzureMountParameters& params, const MountIdentity& identity,
                      ReadRound& round, const BuildOptions& options);

}  // namespace coffer::agent
