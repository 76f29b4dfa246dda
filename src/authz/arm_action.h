#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace coffer::authz {

// The management-plane action an ARM request performs and the resource it
// performs it on, named as Azure names them:
//   GET, HEAD               <provider>/<type>[/<child type>...]/read
//   PUT, PATCH              .../write
//   DELETE                  .../delete
//   POST .../{name}/{verb}  .../<verb>/action
// e.g. PUT .../vaults/v/accessPolicies/add is
// "Microsoft.KeyVault/vaults/accessPolicies/write" on that path. A GET of a
// collection reads the collection's type at its parent's scope.
struct ArmOperation {
  std::string action;
  std::string scope;  // the resource path, as requested, without a trailing '/'
  bool collection = false;
};

// ArmOperationOf maps a request on /subscriptions/... (`segments` are the
// decoded path segments). nullopt when the path names no provider
// resource.
std::optional<ArmOperation> ArmOperationOf(std::string_view method,
                                           const std::vector<std::string>& segments);

}  // namespace coffer::authz
