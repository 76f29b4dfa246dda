#include "common/status.h"

namespace coffer {

std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "OK";
    case StatusCode::kCancelled:
      return "CANCELLED";
    case StatusCode::kUnknown:
      return "UNKNOWN";
    case StatusCode::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case StatusCode::kDeadlineExceeded:
      return "DEADLINE_EXCEEDED";
    case StatusCode::kNotFound:
      return "NOT_FOUND";
    case StatusCode::kAlreadyExists:
      return "ALREADY_EXISTS";
    case StatusCode::kPermissionDenied:
      return "PERMISSION_DENIED";
    case StatusCode::kResourceExhausted:
      return "RESOURCE_EXHAUSTED";
    case StatusCode::kFailedPrecondition:
      return "FAILED_PRECONDITION";
    case StatusCode::kAborted:
      return "ABORTED";
    case StatusCode::kOutOfRange:
      return "OUT_OF_RANGE";
    case StatusCode::kUnimplemented:
      return "UNIMPLEMENTED";
    case StatusCode::kInternal:
      return "INTERNAL";
    case StatusCode::kUnavailable:
      return "UNAVAILABLE";
    case StatusCode::kDataLoss:
      return "DATA_LOSS";
    case StatusCode::kUnauthenticated:
      return "UNAUTHENTICATED";
  }
  return "UNKNOWN";
}

std::string Status::ToString() const {
  if (ok()) {
    return "OK";
  }
  std::string out(StatusCodeName(code_));
  if (!reason_.empty()) {
    out += " (" + reason_ + ")";
  }
  out += ": " + message_;
  return out;
}

#define COFFER_DEFINE_ERROR_(Name, Code)                                    \
  Status Name(std::string message, std::string reason) {                    \
    return Status(StatusCode::Code, std::move(message), std::move(reason)); \
  }

COFFER_DEFINE_ERROR_(InvalidArgumentError, kInvalidArgument)
COFFER_DEFINE_ERROR_(NotFoundError, kNotFound)
COFFER_DEFINE_ERROR_(AlreadyExistsError, kAlreadyExists)
COFFER_DEFINE_ERROR_(PermissionDeniedError, kPermissionDenied)
COFFER_DEFINE_ERROR_(UnauthenticatedError, kUnauthenticated)
COFFER_DEFINE_ERROR_(FailedPreconditionError, kFailedPrecondition)
COFFER_DEFINE_ERROR_(ResourceExhaustedError, kResourceExhausted)
COFFER_DEFINE_ERROR_(UnavailableError, kUnavailable)
COFFER_DEFINE_ERROR_(InternalError, kInternal)
COFFER_DEFINE_ERROR_(DataLossError, kDataLoss)
COFFER_DEFINE_ERROR_(UnimplementedError, kUnimplemented)
COFFER_DEFINE_ERROR_(AbortedError, kAborted)

#undef COFFER_DEFINE_ERROR_

}  // namespace coffer
