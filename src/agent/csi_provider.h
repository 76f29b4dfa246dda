#pragma once

// The Azure provider's Mount, served from Coffer: what the CSI provider
// socket answers (csi-driver.md §1–3). gRPC-free; csi/csi_server.h carries
// it over the wire.

#include <chrono>
#include <string>

#include "agent/csi/csi_server.h"
#include "agent/metrics.h"
#include "agent/mount_builder.h"
#include "agent/vault_reader.h"
#include "common/status.h"

namespace coffer::agent {

struct CsiProviderOptions {
  std::string vault_dns_suffix = "vault.localhost";
  // Mounts arriving within this window share one ReadRound (a burst of pod
  // starts or kubelet republishes reads each object once per principal).
  std::chrono::milliseconds share_window{2000};
  // BuildOptions::write_cert_and_key_in_separate_files.
  bool write_cert_and_key_in_separate_files = false;
};

// ServeCsiMount parses the request as the Azure provider does (attributes
// JSON with the pod keys, secrets JSON or `null`, permission "420"), reads
// the objects and returns every file and one object_version per file.
// Errors: kInvalidArgument for a malformed request or SecretProviderClass
// parameters, the first object's failure otherwise (all or nothing).
// With `metrics`, the mount's objects are observed for the per-object gauges
// under "<namespace>/<pod>", dropped after an hour without a refresh (the
// driver sends none once the pod is gone). An optional object with
// optionalFallback lastKnown keeps the content the driver wrote under the
// request's target path, read back only when that is a kubelet CSI volume
// (".../volumes/kubernetes.io~csi/<volume>/mount").
StatusOr<CsiMountResponse> ServeCsiMount(const CsiMountRequest& request, VaultReader& reader,
                                         const CsiProviderOptions& options,
                                         AgentMetrics* metrics = nullptr);

// MakeCsiMountHandler wraps ServeCsiMount for CsiProviderServer, counting
// node_publish_total / node_publish_error_total.
CsiMountHandler MakeCsiMountHandler(VaultReader& reader, AgentMetrics* metrics,
                                    CsiProviderOptions options);

}  // namespace coffer::agent
