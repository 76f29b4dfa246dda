#pragma once

#include <optional>
#include <string>

#include "server/authenticator.h"

namespace coffer::server {

// What a request's audit record needs besides the request and the response,
// filled in by the plane that handles it.
struct AuditNote {
  std::string operation;    // operationName; "" means no record
  std::string resource_id;  // the vault's (or ARM resource's) id
  std::string object_uri;   // properties.id
  std::optional<Caller> caller;
  std::optional<bool> rbac_authorized;
  std::optional<bool> access_policy_match;
  std::string applied_assignment;
};

}  // namespace coffer::server
