#pragma once

#include <functional>
#include <map>
#include <string>

#include "common/clock.h"
#include "common/status.h"
#include "storage/store.h"

namespace coffer::events {

// ExpiryScheduler finds the current secret and key versions that are near
// expiry (30 days before `exp`, as Key Vault, or for a key what its rotation
// policy's Notify action says) or expired and records each notice once, in
// the change feed: SecretNearExpiry, SecretExpired, KeyNearExpiry and
// KeyExpired events.
class ExpiryScheduler {
 public:
  // How long before expiry each key with a rotation policy is near expiry,
  // in seconds, by "<vault>/<name>" in lower case; keys not in it use
  // `near_seconds`.
  using KeyNoticeLeads = std::function<StatusOr<std::map<std::string, int64_t>>()>;

  ExpiryScheduler(storage::Store& store, const Clock& clock, int64_t near_seconds = 30 * 86400,
                  KeyNoticeLeads key_leads = nullptr)
      : store_(store),
        clock_(clock),
        near_seconds_(near_seconds),
        key_leads_(std::move(key_leads)) {}

  // Records the notices now due; returns how many.
  StatusOr<int> RunOnce();

 private:
  // Records the notices of `type` for objects of `kind` that expire by
  // `horizon` and for which `due` (when set) says so.
  Status Record(storage::ObjectKind kind, const std::string& type, int64_t horizon,
                const std::function<bool(const storage::ExpiringSecret&)>& due, int& recorded);

  storage::Store& store_;
  const Clock& clock_;
  const int64_t near_seconds_;
  const KeyNoticeLeads key_leads_;
};

}  // namespace coffer::events
