#include "server/arm_limits.h"

#include <algorithm>
#include <cmath>

#include "common/strings.h"

namespace coffer::server {
namespace {

constexpr std::array<std::string_view, 3> kKindNames = {"read", "write", "delete"};

ArmBucketSize Global(ArmBucketSize s) {
  return {s.tokens * ArmLimits::kGlobalFactor, s.per_second * ArmLimits::kGlobalFactor};
}

// This server's part of a bucket when `servers` share the installation's:
// as much as each, refilled as fast (at least one token).
ArmLimits::Size Part(ArmBucketSize s, int servers) {
  return {std::max(1.0, static_cast<double>(s.tokens) / servers),
          static_cast<double>(s.per_second) / servers};
}

}  // namespace

ArmKind ArmLimits::KindOf(std::string_view method) {
  if (method == "GET" || method == "HEAD") {
    return ArmKind::kRead;
  }
  return method == "DELETE" ? ArmKind::kDelete : ArmKind::kWrite;
}

std::string_view ArmLimits::HeaderOf(ArmKind kind) {
  switch (kind) {
    case ArmKind::kRead:
      return "x-ms-ratelimit-remaining-subscription-reads";
    case ArmKind::kWrite:
      return "x-ms-ratelimit-remaining-subscription-writes";
    case ArmKind::kDelete:
      return "x-ms-ratelimit-remaining-subscription-deletes";
  }
  return "";
}

void ArmLimits::Refill(Bucket& b, Size size, int64_t now_us) {
  if (b.tokens < 0) {
    b.tokens = size.tokens;
  } else if (now_us > b.at_us) {
    b.tokens = std::min(size.tokens,
                        b.tokens + static_cast<double>(now_us - b.at_us) * size.per_second / 1e6);
  }
  b.tokens = std::min(b.tokens, size.tokens);
  b.at_us = std::max(b.at_us, now_us);
}

void ArmLimits::Forget(int64_t now_us, int servers) {
  for (auto it = principals_.begin(); it != principals_.end();) {
    bool full = true;
    for (size_t k = 0; k < 3; ++k) {
      const Size size = Part(kPrincipal[k], servers);
      Refill(it->second[k], size, now_us);
      full = full && it->second[k].tokens >= size.tokens;
    }
    it = full ? principals_.erase(it) : std::next(it);
  }
}

std::optional<ArmLimits::Charge> ArmLimits::Take(std::string_view principal, ArmKind kind) {
  if (!limits_.azure()) {
    return std::nullopt;
  }
  const size_t k = static_cast<size_t>(kind);
  const int64_t now = clock_.NowMicros();
  // Behind a load balancer each of n servers holds a bucket n times smaller.
  const int servers = limits_.servers();
  const Size own_size = Part(kPrincipal[k], servers);
  const Size all_size = Part(Global(kPrincipal[k]), servers);
  std::lock_guard<std::mutex> lock(mu_);
  // At most once a second: when many principals are busy at once, a scan
  // on every request would cost more than the buckets save.
  if (principals_.size() >= kMaxPrincipals && now - forgot_at_us_ >= 1'000'000) {
    forgot_at_us_ = now;
    Forget(now, servers);
  }
  Bucket& own = principals_[AsciiLower(principal)][k];
  Bucket& all = subscription_[k];
  Refill(own, own_size, now);
  Refill(all, all_size, now);
  Charge out;
  if (own.tokens < 1 || all.tokens < 1) {
    // The wait until both have a whole token again.
    double wait =
        std::max((1 - own.tokens) / own_size.per_second, (1 - all.tokens) / all_size.per_second);
    out.retry_after = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(wait)));
  } else {
    own.tokens -= 1;
    all.tokens -= 1;
  }
  out.remaining = static_cast<int64_t>(std::floor(own.tokens));
  return out;
}

size_t ArmLimits::TrackedPrincipals() {
  std::lock_guard<std::mutex> lock(mu_);
  return principals_.size();
}

http::Response ArmLimits::Throttled(ArmKind kind, std::string_view subscription,
                                    int64_t retry_after_seconds) {
  const size_t k = static_cast<size_t>(kind);
  http::Response r = http::ErrorResponse(
      429, "SubscriptionRequestsThrottled",
      "Number of '" + std::string(kKindNames[k]) + "' requests for subscription '" +
          std::string(subscription) + "' actually exceeded the limit of '" +
          std::to_string(kPrincipal[k].tokens) + "' tokens refilled at '" +
          std::to_string(kPrincipal[k].per_second) + "' per second. Please try again after '" +
          std::to_string(retry_after_seconds) + "' seconds.");
  r.SetHeader("Retry-After", std::to_string(retry_after_seconds));
  return r;
}

}  // namespace coffer::server
