#include "agent/csi_provider.h"

#include <utility>

#include "common/log.h"

namespace coffer::agent {

StatusOr<CsiMountResponse> ServeCsiMount(const CsiMountRequest& request, VaultReader& reader,
                                         const CsiProviderOptions& options) {
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
  std::shared_ptr<ReadRound> round = reader.SharedRound(options.share_window);
  BuiltMount built = BuildMount(params, identity, *round, bo);
  if (!built.status.ok()) {
    return Status(built.status.code(),
                  "failed to mount objects for pod " + params.pod_namespace + "/" +
                      params.pod_name + ": " + std::string(built.status.message()),
                  std::string(built.status.reason()));
  }
  CsiMountResponse response;
  for (const ObjectResult& o : built.objects) {
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
    StatusOr<CsiMountResponse> response = ServeCsiMount(request, reader, options);
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
