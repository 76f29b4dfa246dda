#include "events/expiry.h"

#include <chrono>

#include "crypto/primitives.h"

namespace coffer::events {

namespace {
constexpr int kBatch = 500;
}

StatusOr<int> ExpiryScheduler::RunOnce() {
  int64_t now = clock_.NowSeconds();
  int recorded = 0;
  // Secrets and keys alike: "SecretNearExpiry", "KeyExpired", ...
  for (storage::ObjectKind kind : {storage::ObjectKind::kSecret, storage::ObjectKind::kKey}) {
    const std::string object_type(storage::ObjectKindName(kind));
    for (auto [event, horizon] :
         {std::pair<const char*, int64_t>{"NearExpiry", now + near_seconds_}, {"Expired", now}}) {
      RETURN_IF_ERROR(Record(kind, object_type + event, horizon, recorded));
    }
  }
  return recorded;
}

Status ExpiryScheduler::Record(storage::ObjectKind kind, const std::string& type, int64_t horizon,
                               int& recorded) {
  {
    while (true) {
      ASSIGN_OR_RETURN(auto due, store_.ListExpiringObjects(kind, type, horizon, kBatch));
      for (const auto& s : due) {
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
        recorded += fresh ? 1 : 0;
      }
      if (due.size() < static_cast<size_t>(kBatch)) {
        break;
      }
    }
  }
  return OkStatus();
}

}  // namespace coffer::events
