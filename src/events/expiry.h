#pragma once

#include <string>

#include "common/clock.h"
#include "common/status.h"
#include "storage/store.h"

namespace coffer::events {

// ExpiryScheduler finds the current secret and key versions that are near
// expiry (30 days before `exp`, as Key Vault) or expired and records each
// notice once, in the change feed: SecretNearExpiry, SecretExpired,
// KeyNearExpiry and KeyExpired events.
class ExpiryScheduler {
 public:
  ExpiryScheduler(storage::Store& store, const Clock& clock, int64_t near_seconds = 30 * 86400)
      : store_(store), clock_(clock), near_seconds_(near_seconds) {}

  // Records the notices now due; returns how many.
  StatusOr<int> RunOnce();

 private:
  // Records the notices of `type` due by `horizon` for objects of `kind`.
  Status Record(storage::ObjectKind kind, const std::string& type, int64_t horizon, int& recorded);

  storage::Store& store_;
  const Clock& clock_;
  const int64_t near_seconds_;
};

}  // namespace coffer::events
