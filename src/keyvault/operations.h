#pragma once

#include <string_view>

#include "authz/permissions.h"
#include "http/message.h"

namespace coffer::keyvault {

// The data-plane operation a request asks for, and the object it names.
struct RequestedOperation {
  const authz::DataOperation* op = nullptr;  // nullptr: not an operation
  std::string_view object;                   // secret name, or "" for vault-wide operations
};

// ClassifyRequest maps a Key Vault data-plane request to its operation
// (authz::DataOperations(): one access-policy permission and one RBAC
// dataAction each). `op` is nullptr when the request is no operation; the
// API then answers 404 or 405 without touching data. `object` views into
// `request`.
RequestedOperation ClassifyRequest(const http::Request& request);

}  // namespace coffer::keyvault
