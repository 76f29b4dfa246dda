#include "events/expiry.h"

#include <algorithm>
#include <chrono>

#include "common/strings.h"
#include "crypto/primitives.h"

namespace coffer::events {

namespace {
constexpr int kBatch = 500;
}

StatusOr<int> ExpiryScheduler::RunOnce() {
  int64_t now = clock_.NowSeconds();
  int recorded = 0;
  for (storage::ObjectKind kind : {storage::ObjectKind::kSecret, storage::ObjectKind::kKey,
                                   storage::ObjectKind::kCertificate}) {
    const std::string object_type(storage::ObjectKindName(kind));
    // A key's rotation policy or a certificate's policy may move its
    // notice: look as far ahead as the longest lead, and record each when
    // its own lead is reached.
    std::map<std::string, int64_t> leads;
    if (kind != storage::ObjectKind::kSecret && leads_) {
      ASSIGN_OR_RETURN(leads, leads_(kind));
    }
    int64_t longest = near_seconds_;
    for (const auto& [key, lead] : leads) {
      longest = std::max(longest, lead);
    }
    auto near = [&](const storage::ExpiringSecret& s) {
      auto it = leads.find(AsciiLower(s.vault) + "/" + AsciiLower(s.name));
      return s.exp - (it == leads.end() ? near_seconds_ : it->second) <= now;
    };
    RETURN_IF_ERROR(Record(kind, object_type + "NearExpiry", now + longest, near, recorded));
    RETURN_IF_ERROR(Record(kind, object_type + "Expired", now, nullptr, recorded));
  }
  return recorded;
}

Status ExpiryScheduler::Record(storage::ObjectKind kind, const std::string& type, int64_t horizon,
                               const std::function<bool(const storage::ExpiringSecret&)>& due,
                               int& recorded) {
  while (true) {
    ASSIGN_OR_RETURN(auto batch, store_.ListExpiringObjects(kind, type, horizon, kBatch));
    int recorded_now = 0;
    for (const auto& s : batch) {
      if (due && !due(s)) {
        continue;  // within the horizon, but its own lead is not reached
      }
      storage::ChangeRecord c;
      c.event_id = crypto::RandomUuid();
      c.time_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
      c.vault = s.vault;
      c.type = type;
      c.object_type = std::string(storage::ObjectKindName(kind));
      c.name = s.name;
      c.version = s.version;
      c.nbf = s.nbf;
      c.exp = s.exp;
      ASSIGN_OR_RETURN(bool fresh, store_.RecordNotice(c));
      recorded_now += fresh ? 1 : 0;
    }
    recorded += recorded_now;
    // A full batch of which nothing was recorded would come back the same:
    // the rest waits for the next run, when more of it is due.
    if (batch.size() < static_cast<size_t>(kBatch) || recorded_now == 0) {
      break;
    }
  }
  return OkStatus();
}

}  // namespace coffer::events
