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
  for (auto [type, horizon] :
       {std::pair<const char*, int64_t>{"SecretNearExpiry", now + near_seconds_},
        {"SecretExpired", now}}) {
    while (true) {
      ASSIGN_OR_RETURN(auto due, store_.ListExpiringSecrets(type, horizon, kBatch));
      for (const auto& s : due) {
        storage::ChangeRecord c;
        c.event_id = crypto::RandomUuid();
        c.time_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
        c.vault = s.vault;
        c.type = type;
        c.object_type = "Secret";
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
  return recorded;
}

}  // namespace coffer::events
