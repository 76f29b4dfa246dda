#pragma once

#include <functional>
#include <map>
#include <string>

#include "common/clock.h"
#include "common/status.h"
#include "storage/store.h"

namespace coffer::events {

// ExpiryScheduler finds the current secret, key and certificate versions
// that are near expiry (30 days before `exp`, as Key Vault, or what a key's
// rotation policy's Notify action or a certificate policy's EmailContacts
// action says) or expired and records each notice once, in the change feed:
// SecretNearExpiry, SecretExpired, KeyNearExpiry, KeyExpired,
// CertificateNearExpiry and CertificateExpired events.
class ExpiryScheduler {
 public:
  // How long before expiry each object of a kind whose policy says so is
  // near expiry, in seconds, by "<vault>/<name>" in lower case; objects not
  // in it use `near_seconds`. Asked for keys and certificates.
  using NoticeLeads =
      std::function<StatusOr<std::map<std::string, int64_t>>(storage::ObjectKind kind)>;

  ExpiryScheduler(storage::Store& store, const Clock& clock, int64_t near_seconds = 30 * 86400,
                  NoticeLeads leads = nullptr)
      : store_(store), clock_(clock), near_seconds_(near_seconds), leads_(std::move(leads)) {}

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
  const NoticeLeads leads_;
};

}  // namespace coffer::events
