#include "keyvault/vault_api.h"

namespace coffer::keyvault {
VaultRoutes::VaultRoutes(std::vector<VaultOperation> operations)
    : operations_(std::move(operations)), table_(http::RouteTable::EntriesOf(operations_), false) {}

VaultRoutes::Found VaultRoutes::Find(const http::Request& request) const {
  auto match = table_.Find(request.method, request.segments);
  Found found;
  found.status = match.status;
  found.allowed = std::move(match.allowed);
  if (match.status == 200) {
    found.operation = &operations_[match.index];
    found.params = std::move(match.params);
  }
  return found;
}

http::Response VaultRoutes::Unmatched(const Found& found) {
  if (found.status == 405) {
    http::Response r = http::ErrorResponse(
        405, "BadParameter",
        "The method is not allowed on this path; it allows " + found.allowed + ".");
    r.SetHeader("Allow", found.allowed);
    return r;
  }
  return http::ErrorResponse(404, "NotFound", "The requested path does not exist on this vault.");
}

}  // namespace coffer::keyvault
