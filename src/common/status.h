#pragma once

#include <string>

#include "coffer/status.h"

namespace coffer {

inline Status OkStatus() {
  return Status();
}
Status InvalidArgumentError(std::string message, std::string reason = {});
Status NotFoundError(std::string message, std::string reason = {});
Status AlreadyExistsError(std::string message, std::string reason = {});
Status PermissionDeniedError(std::string message, std::string reason = {});
Status UnauthenticatedError(std::string message, std::string reason = {});
Status FailedPreconditionError(std::string message, std::string reason = {});
Status ResourceExhaustedError(std::string message, std::string reason = {});
Status UnavailableError(std::string message, std::string reason = {});
Status InternalError(std::string message, std::string reason = {});
Status DataLossError(std::string message, std::string reason = {});
Status UnimplementedError(std::string message, std::string reason = {});
Status AbortedError(std::string message, std::string reason = {});

}  // namespace coffer

#define COFFER_CONCAT_INNER_(a, b) a##b
#define COFFER_CONCAT_(a, b) COFFER_CONCAT_INNER_(a, b)

// RETURN_IF_ERROR(expr): returns the status of `expr` from the current
// function when it is not OK.
#define RETURN_IF_ERROR(expr) RETURN_IF_ERROR_IMPL_(COFFER_CONCAT_(coffer_status_, __LINE__), expr)
#define RETURN_IF_ERROR_IMPL_(tmp, expr) \
  do {                                   \
    ::coffer::Status tmp = (expr);       \
    if (!tmp.ok())                       \
      return tmp;                        \
  } while (false)

// ASSIGN_OR_RETURN(lhs, expr): evaluates a StatusOr expression, returns its
// status on error, else assigns (or declares) lhs from its value. Like
// Abseil's, it must not be used as the body of an unbraced if/else.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(COFFER_CONCAT_(coffer_statusor_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok())                               \
    return tmp.status();                       \
  lhs = std::move(tmp).value()
