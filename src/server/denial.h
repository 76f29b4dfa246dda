#pragma once

#include <array>
#include <string_view>

#include "authz/authorizer.h"

namespace coffer::server {

// Why a request was refused (401 or 403), as the metrics count it:
// coffer_authorization_denials_total{reason}. A closed set, so that the
// series stay few whatever callers send.
enum class Denial {
  kNone,
  // Authentication (401).
  kMissingToken,      // no Authorization header, or not a Bearer token
  kInvalidToken,      // malformed, not signed by this service, another issuer or tenant
  kExpiredToken,      // past its expiry, or not yet valid
  kWrongAudience,     // issued for another resource (e.g. the management plane's)
  kUnknownPrincipal,  // its principal was deleted
  kSessionRevoked,    // a user's: disabled, or issued before a password change or revocation
  // Authorization (403), with the decision reasons of authz::Reason.
  kNoAccessPolicy,
  kAccessPolicyLacksPermission,
  kNoRoleAssignment,
  kRoleLacksAction,
  kConditionNotMet,
  kNotAdministrator,  // a directory or administration API, for a non-administrator
  kLinkedScope,       // allowed on the resource, not on a scope it links (ARM)
};

inline constexpr std::array<Denial, 13> kDenials = {
    Denial::kMissingToken,     Denial::kInvalidToken,
    Denial::kExpiredToken,     Denial::kWrongAudience,
    Denial::kUnknownPrincipal, Denial::kSessionRevoked,
    Denial::kNoAccessPolicy,   Denial::kAccessPolicyLacksPermission,
    Denial::kNoRoleAssignment, Denial::kRoleLacksAction,
    Denial::kConditionNotMet,  Denial::kNotAdministrator,
    Denial::kLinkedScope};

// The metric label of a denial ("" for kNone).
inline std::string_view DenialName(Denial d) {
  switch (d) {
    case Denial::kNone:
      return "";
    case Denial::kMissingToken:
      return "missing_token";
    case Denial::kInvalidToken:
      return "invalid_token";
    case Denial::kExpiredToken:
      return "expired_token";
    case Denial::kWrongAudience:
      return "wrong_audience";
    case Denial::kUnknownPrincipal:
      return "unknown_principal";
    case Denial::kSessionRevoked:
      return "session_revoked";
    case Denial::kNoAccessPolicy:
      return "no_access_policy";
    case Denial::kAccessPolicyLacksPermission:
      return "access_policy_lacks_permission";
    case Denial::kNoRoleAssignment:
      return "no_role_assignment";
    case Denial::kRoleLacksAction:
      return "role_lacks_action";
    case Denial::kConditionNotMet:
      return "condition_not_met";
    case Denial::kNotAdministrator:
      return "not_administrator";
    case Denial::kLinkedScope:
      return "linked_scope";
  }
  return "";
}

// The denial of an authorization decision that did not allow.
inline Denial DenialOf(authz::Reason reason) {
  switch (reason) {
    case authz::Reason::kNoAccessPolicy:
      return Denial::kNoAccessPolicy;
    case authz::Reason::kAccessPolicyLacksPermission:
      return Denial::kAccessPolicyLacksPermission;
    case authz::Reason::kNoRoleAssignment:
      return Denial::kNoRoleAssignment;
    case authz::Reason::kRoleLacksAction:
      return Denial::kRoleLacksAction;
    case authz::Reason::kConditionNotMet:
      return Denial::kConditionNotMet;
    case authz::Reason::kAccessPolicyMatch:
    case authz::Reason::kRoleAssignmentMatch:
      break;
  }
  return Denial::kNone;
}

}  // namespace coffer::server
