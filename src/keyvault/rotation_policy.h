#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/json.h"
#include "common/status.h"

namespace coffer::keyvault {

// A key's rotation policy (docs/keys.md): lifetime actions Rotate and Notify
// with a trigger each (timeAfterCreate: Rotate only; timeBeforeExpiry), and
// the expiry a rotation gives the new version (attributes.expiryTime).
// Durations are ISO 8601 ("P90D", "P1Y2M", "PT48H"); a year counts 365 days
// and a month 30.

// ParseIsoDuration returns the seconds of an ISO 8601 duration, or
// kInvalidArgument (BadParameter).
StatusOr<int64_t> ParseIsoDuration(std::string_view text);

// ValidateRotationPolicy checks a PUT body and returns the policy to store:
// action types in Key Vault's spelling, a Notify 30 days before expiry
// added when none is given (as Key Vault does), `created` kept from
// `current` (the stored policy, if any) and `updated` set to `now`.
// kInvalidArgument (BadParameter) names what is wrong: more than one action
// of a type, not exactly one trigger, timeAfterCreate on Notify, a trigger
// under 7 days, an expiryTime under 28 days.
StatusOr<Json> ValidateRotationPolicy(const Json& body, const std::optional<Json>& current,
                                      int64_t now);

// The policy a key without one has.
Json DefaultRotationPolicy();

// RotationDue says when the policy's Rotate action falls due for a latest
// version created at `created` that expires at `exp`; nullopt when it has
// no Rotate action, or it rotates before expiry and the version has none.
std::optional<int64_t> RotationDue(const Json& policy, int64_t created, std::optional<int64_t> exp);

// NotifyLead is how long before expiry the policy's Notify action fires
// (its timeBeforeExpiry), in seconds; nullopt when it has none.
std::optional<int64_t> NotifyLead(const Json& policy);

// The expiry a version made by rotation at `now` gets: now + expiryTime, or
// nullopt when the policy sets none.
std::optional<int64_t> RotatedExpiry(const Json& policy, int64_t now);

}  // namespace coffer::keyvault
