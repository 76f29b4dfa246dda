#pragma once

#include <string>

#include "common/json.h"
#include "http/message.h"

namespace coffer::keyvault {

// SecretPermission names the access-policy permission a secrets request
// needs, as Key Vault's: "get", "list", "set", "delete", "recover",
// "backup", "restore" or "purge". "" when the request is not a secrets
// operation (the API then answers 404 or 405 without touching data).
std::string SecretPermission(const http::Request& request);

// AccessPolicyAllows reports whether one of a vault's access policies
// (VaultSettings::access_policies, parsed once per vault load) grants `permission` (or "all") on
// secrets to the principal `object_id` of `tenant_id`. Permission names compare case-insensitively,
// as Key Vault's do.
bool AccessPolicyAllows(const Json& policies, const std::string& tenant_id,
                        const std::string& object_id, const std::string& permission);

}  // namespace coffer::keyvault
