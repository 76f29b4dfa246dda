#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/status.h"
#include "storage/store.h"

namespace coffer::auth {

// One device authorization (RFC 8628) as the store keeps it: no device code
// and no user code, only their SHA-256.
struct DeviceFlow {
  enum class State { kPending, kApproved, kDeclined, kRedeemed };
  std::string client_id;
  std::string resource;  // the access token's audience
  std::string scope;     // the scopes asked, as given
  int64_t expires = 0;
  State state = State::kPending;
  std::string object_id;  // the user who approved
  int64_t auth_time = 0;  // when they signed in
  // The user's sessions_valid_from then: a change since ends the approval.
  int64_t sessions_valid_from = 0;
};

struct NewDeviceFlow {
  std::string device_code;  // 32 random bytes, base64url
  std::string user_code;    // XXXX-XXXX of BCDFGHJKLMNPQRSTVWXZ
  int64_t expires_in = 0;
  int64_t interval = 0;
};

// DeviceFlows keeps the device-code sign-ins in progress in one meta
// document of the store (kMetaKey), changed only by UpdateMeta, so that any
// server sharing the store can show the page, record the user's answer and
// answer the poll. Expired flows are dropped on every write.
//
// Thread-safe. `store` and `clock` must outlive it.
class DeviceFlows {
 public:
  static constexpr char kMetaKey[] = "device_code_flows";
  static constexpr int64_t kLifetimeSeconds = 900;
  static constexpr int64_t kIntervalSeconds = 5;

  DeviceFlows(storage::Store& store, const Clock& clock, size_t max_flows = 1000);

  // Start records a new flow. kResourceExhausted when max_flows are pending.
  StatusOr<NewDeviceFlow> Start(const std::string& client_id, const std::string& resource,
                                const std::string& scope);
  // Find returns the pending flow a user code names (in any case, with or
  // without its dash and spaces). kNotFound if none is pending.
  StatusOr<DeviceFlow> Find(std::string_view user_code);
  // Decide records the user's answer to a pending flow (kNotFound if it is
  // not pending any more).
  Status Decide(std::string_view user_code, bool approved, const std::string& object_id = "",
                int64_t auth_time = 0, int64_t sessions_valid_from = 0);
  // Redeem answers a poll with `device_code` by `client_id`: the flow as it
  // stood. An approved flow is marked redeemed in the same write, so it is
  // answered approved exactly once. kNotFound for an unknown code, another
  // client's, or one already redeemed. An expired flow is returned as it
  // stood (its `expires` tells).
  StatusOr<DeviceFlow> Redeem(const std::string& device_code, const std::string& client_id);

  // The canonical form of a user code as typed (upper case, no separators);
  // empty if it cannot be one.
  static std::string NormalizeUserCode(std::string_view typed);

 private:
  storage::Store& store_;
  const Clock& clock_;
  const size_t max_flows_;
};

}  // namespace coffer::auth
