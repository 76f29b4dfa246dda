#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/json.h"
#include "common/status.h"
#include "http/message.h"

namespace coffer::mgmt {

// Rules every ARM-shaped resource of the management plane shares.

// CheckArmTags accepts ARM's tags: an object of at most 50 string values,
// names of at most 512 and values of at most 256 characters.
Status CheckArmTags(const Json& tags);

// CheckArmRequest answers what ARM answers before it looks at a resource:
// 400 MissingApiVersionParameter without an api-version, 404
// SubscriptionNotFound for another subscription (segment 1 of the path).
// nullopt when the request may go on.
std::optional<http::Response> CheckArmRequest(const http::Request& request,
                                              const std::string& subscription_id);

// ResourceGroupOf returns the resource group of a resource id, or "".
std::string ResourceGroupOf(const std::string& resource_id);

// NameOf returns the last segment of a resource id.
std::string NameOf(const std::string& resource_id);

// ValidResourceGroup applies ARM's rule: 1-90 characters of letters,
// digits, '_', '-', '.', '(' and ')', not ending in '.'.
bool ValidResourceGroup(const std::string& name);

// LinkedCheck answers whether the caller of a request may perform `action`
// on `scope`, a resource the request links to rather than the one it names
// (Azure's linked authorization: a user-assigned identity attached to a
// workload, the other assignable scopes of a role definition). OkStatus when
// it may; kPermissionDenied with reason "LinkedAuthorizationFailed", naming
// the action and the linked scope, when it may not. The management plane
// makes one per request; handlers call it for every resource they link.
using LinkedCheck = std::function<Status(std::string_view action, std::string_view scope)>;

// The action Azure checks on each user-assigned identity newly attached to
// a workload (Managed Identity Operator grants it).
inline constexpr char kAssignIdentityAction[] =
    "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action";

// ETag is the ETag header of a resource at `version` (a record's version).
std::string ETag(int64_t version);

// CheckPreconditions applies ARM's conditional headers to a write of a
// resource whose current version is `version` (nullopt: it does not exist):
// If-Match (an ETag or "*") and If-None-Match ("*": create only).
// kFailedPrecondition with reason "PreconditionFailed" (HTTP 412) when they
// do not hold. Call it inside the store's mutation, so that the check and
// the write are one.
Status CheckPreconditions(const http::Request& request, std::optional<int64_t> version);

// A CheckPreconditions bound to one request.
using Precondition = std::function<Status(std::optional<int64_t> version)>;
Precondition PreconditionOf(const http::Request& request);

// ArmError answers an error Status with its HTTP status and ARM's error
// body; the status's reason, when set, is the code.
http::Response ArmError(const Status& status);

}  // namespace coffer::mgmt
