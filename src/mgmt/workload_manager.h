#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/json.h"
#include "http/message.h"
#include "mgmt/arm.h"
#include "mgmt/arm_routes.h"
#include "storage/store.h"

namespace coffer::mgmt {

struct WorkloadConfig {
  std::string subscription_id;
  std::string tenant_id;
  // The App Service style token endpoint, e.g. https://localhost:8443/msi/token.
  std::string identity_endpoint;
  // Returns a workload's current identity header (auth::IdentityHeaders).
  std::function<std::string(const storage::WorkloadRecord&)> identity_header;
  // Called with the object id of each principal deleted here, so that its
  // tokens stop working on the next request.
  std::function<void(const std::string&)> on_principal_deleted;
};

// WorkloadManager is the ARM-shaped management plane for workload resources,
// the things that run code and hold managed identities (docs/identities.md):
//   Microsoft.Web/sites/{name}                   an app (App Service style)
//   Microsoft.Compute/virtualMachines/{name}     a node (IMDS style)
// with the same operations for both:
//   PUT|PATCH|GET|DELETE /subscriptions/{s}/resourceGroups/{rg}/providers/{type}/{name}
//   GET .../resourceGroups/{rg}/providers/{type}, GET /subscriptions/{s}/providers/{type}
//   POST .../{name}/listIdentityEndpoint        IDENTITY_ENDPOINT and IDENTITY_HEADER
//   POST .../{name}/regenerateIdentityHeader    revokes the old header
// Each carries Azure's `identity` block. A system-assigned identity is
// created with the workload (or when the type gains it) and deleted with it
// (or when the type drops it), in the same transaction. User-assigned
// identities must exist when assigned and outlive the workload.
// Authorization of the request is the caller's job; attaching a
// user-assigned identity the workload does not hold yet also needs
// kAssignIdentityAction on that identity, which Handle asks `linked`.
// Thread-safe.
class WorkloadManager {
 public:
  WorkloadManager(WorkloadConfig config, storage::Store& store, const Clock& clock);

  // The workload operations of the management plane's route table.
  std::vector<ArmRoute> Routes();

  // A resource type served here.
  struct Kind {
    const char* provider;   // "Microsoft.Web"
    const char* type;       // "sites"
    const char* full_type;  // "Microsoft.Web/sites"
  };

 private:
  http::Response Put(const http::Request& request, const Kind& kind, const std::string& rg,
                     const std::string& name, const LinkedCheck& linked);
  http::Response List(const ArmCall& call, const Kind& kind);
  // GET, PUT, PATCH and DELETE of one workload.
  http::Response Resource(const ArmCall& call, const Kind& kind);
  http::Response Act(const ArmCall& call, const Kind& kind, std::string_view action);
  // The workload {rg}/{name} of `kind` (nullopt when absent);
  // kInvalidArgument for a malformed group or name.
  StatusOr<std::optional<storage::WorkloadRecord>> FindNamed(const ArmCall& call, const Kind& kind);
  Status NotFound(const ArmCall& call, const Kind& kind) const;
  http::Response Delete(const storage::WorkloadRecord& workload);
  http::Response Action(const std::string& action, storage::WorkloadRecord workload);
  StatusOr<std::optional<storage::WorkloadRecord>> Find(const std::string& resource_id);
  // `principals`: the directory, to show user-assigned identities' ids.
  Json ToArm(const storage::WorkloadRecord& workload,
             const std::vector<storage::PrincipalRecord>& principals) const;

  const WorkloadConfig config_;
  // Route patterns and actions built from the kinds; the table views them.
  std::vector<std::unique_ptr<std::string>> patterns_;
  storage::Store& store_;
  const Clock& clock_;
};

}  // namespace coffer::mgmt
