#include "sdk/pipeline.h"

#include <algorithm>
#include <random>
#include <thread>

#include "sdk/wire.h"

namespace coffer {

bool Retryable(int status) {
  return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 ||
         status == 504;
}

StatusOr<HttpResponse> SendAuthorized(
    HttpTransport& transport, const RetryOptions& retry, const HttpRequest& request,
    const std::function<StatusOr<std::string>(bool refresh)>& authorization) {
  bool challenged = false;
  std::mt19937_64 rng(std::random_device{}());
  for (int attempt = 0;; ++attempt) {
    ASSIGN_OR_RETURN(std::string header, authorization(challenged));
    HttpRequest sent = request;
    sent.headers.emplace_back("Authorization", std::move(header));
    StatusOr<HttpResponse> res = transport.Send(sent);
    if (res.ok() && res->status == 401 && !challenged) {
      // The resource may have changed (or the token been revoked): read the
      // challenge once more and try again, once.
      challenged = true;
      --attempt;
      continue;
    }
    challenged = false;
    bool transient = res.ok() ? Retryable(res->status)
                              : (res.status().code() == StatusCode::kUnavailable ||
                                 res.status().code() == StatusCode::kDeadlineExceeded);
    if (!transient || attempt >= retry.max_retries) {
      return res;
    }
    std::chrono::milliseconds delay =
        res.ok() ? RetryAfter(*res) : std::chrono::milliseconds::zero();
    if (delay.count() <= 0) {
      // Exponential back-off with jitter, as the Azure SDKs' retry policy.
      auto base = retry.initial_delay.count() << std::min(attempt, 16);
      std::uniform_real_distribution<double> jitter(0.8, 1.2);
      delay =
          std::chrono::milliseconds(static_cast<int64_t>(static_cast<double>(base) * jitter(rng)));
    }
    std::this_thread::sleep_for(std::min(delay, retry.max_delay));
  }
}

}  // namespace coffer
