#pragma once

#include <optional>
#include <string>

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

// ArmError answers an error Status with its HTTP status and ARM's error
// body; the status's reason, when set, is the code.
http::Response ArmError(const Status& status);

}  // namespace coffer::mgmt
