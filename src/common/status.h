#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace coffer {

// Canonical status codes, numbered as gRPC's and Abseil's so that a later
// conversion to either is a cast.
enum class StatusCode : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

std::string_view StatusCodeName(StatusCode code);

// Status is the result of an operation that can fail in an expected way.
//
// Besides the canonical code it may carry a `reason`: the service-specific
// error code a client sees (for Key Vault e.g. "SecretNotFound"). The message
// is for people; it must carry context and never a secret value or a token.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message, std::string reason = {})
      : code_(code), message_(std::move(message)), reason_(std::move(reason)) {}

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  std::string_view message() const { return message_; }
  std::string_view reason() const { return reason_; }

  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::string reason_;
};

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

// StatusOr<T> holds either a value or a non-OK status.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  // NOLINTNEXTLINE(google-explicit-constructor): mirrors absl::StatusOr.
  StatusOr(Status status) : rep_(std::move(status)) {
    if (std::get<Status>(rep_).ok()) {
      rep_ = Status(StatusCode::kInternal, "OK status given to StatusOr without a value");
    }
  }
  // NOLINTNEXTLINE(google-explicit-constructor)
  StatusOr(T value) : rep_(std::move(value)) {}

  bool ok() const { return std::holds_alternative<T>(rep_); }
  Status status() const { return ok() ? Status() : std::get<Status>(rep_); }

  // REQUIRES: ok().
  const T& value() const& { return std::get<T>(rep_); }
  T& value() & { return std::get<T>(rep_); }
  T&& value() && { return std::get<T>(std::move(rep_)); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

 private:
  std::variant<Status, T> rep_;
};

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
