#include "agent/csi_provider.h"

#include <ctime>
#include <string_view>
#include <utility>

#include "common/log.h"
#include "common/strings.h"

namespace coffer::agent {

namespace {

// A kubelet CSI volume's mount point, absolute and without "." or ".."
// segments: the only place an optional object's last content is read from.
bool IsCsiVolumeTarget(const std::string& path) {
  static constexpr std::string_view kVolumes = "/volumes/kubernetes.io~csi/";
  if (path.empty() || path[0] != '/' || !EndsWith(path, "/mount") ||
      path.find(kVolumes) == std::string::npos) {
    return false;
  }
  // No empty, "." or ".." segment.
  const std::string padded = path + "/";
  return padded.find("//") == std::string::npos && padded.find("/./") == std::string::npos &&
         padded.find("/../") == std::string::npos;
}

}  // namespace

StatusOr<CsiMountResponse> ServeCsiMount(const CsiMountRequest& request, VaultReader& reader,
                                         const CsiProviderOptions& options, AgentMetrics* metrics) {
  auto attributes = ParseStringMapJson(request.attributes, /*allow_null=*/false);
  if (!attributes.ok()) {
    return InvalidArgumentError("failed to unmarshal attributes: " +
                                std::string(attributes.status().message()));
  }
  auto secrets = ParseStringMapJson(request.secrets.empty() ? "null" : request.secrets,
                                    /*allow_null=*/true);
  if (!secrets.ok()) {
    return InvalidArgumentError("failed to unmarshal secrets: " +
                                std::string(secrets.status().message()));
  }
  uint32_t mode = 0644;
  if (!request.permission.empty()) {
    auto parsed = ParsePermission(request.permission);
    if (!parsed.ok()) {
      return InvalidArgumentError("failed to unmarshal file permission: " +
                                  std::string(parsed.status().message()));
    }
    mode = *parsed;
  }
  AzureParseOptions opts;
  opts.require_pod_info = true;
  ASSIGN_OR_RETURN(AzureMountParameters params,
                   ParseAzureProviderParameters(*attributes, *secrets, opts));
  ASSIGN_OR_RETURN(MountIdentity identity, IdentityOf(params));
  BuildOptions bo;
  bo.vault_dns_suffix = options.vault_dns_suffix;
  bo.default_mode = mode;
  bo.write_cert_and_key_in_separate_files = options.write_cert_and_key_in_separate_files;
  // Deprecated upstream, but still sent: where the driver wrote the volume,
  // so that an optional object can keep its content (optionalFallback
  // lastKnown). Only read back, only below it, following no link but the
  // volume's own ..data.
  if (IsCsiVolumeTarget(request.target_path)) {
    bo.previous_dir = request.target_path;
  }
  std::shared_ptr<ReadRound> round = reader.SharedRound(options.share_window);
  BuiltMount built = BuildMount(params, identity, *round, bo);
  if (!built.status.ok()) {
    return Status(built.status.code(),
                  "failed to mount objects for pod " + params.pod_namespace + "/" +
                      params.pod_name + ": " + std::string(built.status.message()),
                  std::string(built.status.reason()));
  }
  if (metrics != nullptr) {
    constexpr int64_t kStaleAfter = 3600;
    metrics->ObserveMount(params.pod_namespace + "/" + params.pod_name, GaugesOf(built.objects),
                          static_cast<int64_t>(std::time(nullptr)), kStaleAfter);
  }
  for (const ObjectResult& o : built.objects) {
    if (o.skipped) {
      COFFER_LOG(kWarning) << "CSI mount for pod " << params.pod_namespace << "/" << params.pod_name
                           << ": " << o.id << " is optional and "
                           << (o.kept ? "keeps the content last written" : "is left out") << ": "
                           << o.status.message();
    }
  }
  CsiMountResponse response;
  for (const ObjectResult& o : built.objects) {
    if (o.skipped && !o.kept) {
      continue;  // not in the volume
    }
    response.object_version.push_back({o.id, o.version});
  }
  for (PayloadFile& f : built.files) {
    response.files.push_back(
        {std::move(f.path), static_cast<int32_t>(f.mode), std::move(f.contents)});
  }
  if (response.object_version.empty()) {
    // The driver refuses a response without versions (csi-driver.md §1.5).
    response.object_version.push_back({"", ""});
  }
  return response;
}

CsiMountHandler MakeCsiMountHandler(VaultReader& reader, AgentMetrics* metrics,
                                    CsiProviderOptions options) {
  return [&reader, metrics, options](const CsiMountRequest& request) -> StatusOr<CsiMountResponse> {
    StatusOr<CsiMountResponse> response = ServeCsiMount(request, reader, options, metrics);
    if (metrics != nullptr) {
      metrics->NodePublish(response.ok() ? "" : ErrorType(response.status()));
    }
    if (!response.ok()) {
      COFFER_LOG(kWarning) << "CSI mount: " << response.status().message();
    }
    return response;
  };
}

}  // namespace coffer::agent
