#pragma once

// Azure Resource Manager's limits on management requests
// (docs/service-limits.md): token buckets per subscription, per principal
// and per kind of request -- reads hold 250 tokens refilled at 25 a second,
// writes and deletes 200 refilled at 10 -- and for the subscription as a
// whole fifteen times those, which every principal draws from too. A
// request that finds either bucket empty is answered 429 with Retry-After;
// every other management response says what the principal has left in
// x-ms-ratelimit-remaining-subscription-{reads,writes,deletes}. They apply
// in the service limits' `azure` mode (Azure's numbers; `custom` sets only
// the vaults'). Several servers divide each bucket evenly among them
// (ServiceLimits::servers()).

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/clock.h"
#include "http/message.h"
#include "server/service_limits.h"

namespace coffer::server {

enum class ArmKind { kRead, kWrite, kDelete };

struct ArmBucketSize {
  int64_t tokens;      // the bucket's size
  int64_t per_second;  // tokens added back each second
};

// ArmLimits is thread-safe; management requests are not a hot path, so one
// mutex guards every bucket.
class ArmLimits {
 public:
  // Azure's numbers, per principal; the subscription's are kGlobalFactor
  // times these.
  static constexpr std::array<ArmBucketSize, 3> kPrincipal = {
      ArmBucketSize{250, 25}, ArmBucketSize{200, 10}, ArmBucketSize{200, 10}};
  static constexpr int64_t kGlobalFactor = 15;
  // Principals whose buckets are kept; beyond it, full buckets (principals
  // idle long enough to be back at the start) are forgotten, at most once a
  // second.
  static constexpr size_t kMaxPrincipals = 10000;

  // `limits` says whether they apply; both must outlive this.
  ArmLimits(const Clock& clock, const ServiceLimits& limits) : clock_(clock), limits_(limits) {}

  // KindOf: GET and HEAD read, DELETE deletes, every other method writes.
  static ArmKind KindOf(std::string_view method);
  static std::string_view HeaderOf(ArmKind kind);

  struct Charge {
    // Throttled: the whole seconds until a token is back (at least 1);
    // nothing was taken.
    std::optional<int64_t> retry_after;
    int64_t remaining = 0;  // the principal's tokens left after this request
  };
  // Take one token of `kind` for `principal` (an object id); nullopt when
  // the limits do not apply.
  std::optional<Charge> Take(std::string_view principal, ArmKind kind);

  // TrackedPrincipals is how many principals have buckets now.
  size_t TrackedPrincipals();

  // ARM's answer to a throttled request.
  static http::Response Throttled(ArmKind kind, std::string_view subscription,
                                  int64_t retry_after_seconds);

  struct Size {
    double tokens;
    double per_second;
  };

 private:
  struct Bucket {
    double tokens = -1;  // < 0: never used (full)
    int64_t at_us = 0;
  };
  // Refill brings `b` to now for a bucket of `size`.
  static void Refill(Bucket& b, Size size, int64_t now_us);
  void Forget(int64_t now_us, int servers);  // REQUIRES(mu_)

  const Clock& clock_;
  const ServiceLimits& limits_;
  std::mutex mu_;
  std::unordered_map<std::string, std::array<Bucket, 3>> principals_;  // GUARDED_BY(mu_)
  std::array<Bucket, 3> subscription_{};                               // GUARDED_BY(mu_)
  int64_t forgot_at_us_ = 0;                                           // GUARDED_BY(mu_)
};

}  // namespace coffer::server
