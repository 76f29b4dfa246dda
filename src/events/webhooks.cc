#include "events/webhooks.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <limits>

#include "common/encoding.h"
#include "common/log.h"
#include "common/strings.h"
#include "common/unique_fd.h"
#include "crypto/primitives.h"
#include "http/message.h"

namespace coffer::events {

namespace {

constexpr size_t kMaxQueued = 100000;
// Event Grid's retry schedule, in units of the base back-off (10 s).
constexpr int64_t kSchedule[] = {1, 3, 6, 30, 60, 180, 360};

std::string LaneKey(const std::string& vault, const std::string& name) {
  return AsciiLower(vault) + "/" + AsciiLower(name);
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

WebhookDispatcher::WebhookDispatcher(storage::Store& store, VaultNaming naming,
                                     WebhookSender sender, SigningKeyFor key_for, UrlSeal seal,
                                     WebhookOptions options)
    : store_(store),
      naming_(std::move(naming)),
      sender_(std::move(sender)),
      key_for_(std::move(key_for)),
      seal_(std::move(seal)),
      options_(std::move(options)) {}

WebhookDispatcher::~WebhookDispatcher() {
  Stop();
}

Status WebhookDispatcher::Start() {
  RETURN_IF_ERROR(Reload());
  for (int i = 0; i < std::max(1, options_.threads); ++i) {
    threads_.emplace_back([this] { Worker(); });
  }
  return OkStatus();
}

void WebhookDispatcher::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) {
      t.join();
    }
  }
  threads_.clear();
}

Status WebhookDispatcher::Reload() {
  ASSIGN_OR_RETURN(auto records, store_.ListEventSubscriptions(""));
  std::vector<std::shared_ptr<const Subscription>> subs;
  for (const auto& r : records) {
    auto s = std::make_shared<Subscription>();
    auto props = seal_.Unseal(r);
    Status parsed = props.ok() ? ParseSubscription(*props, *s) : props.status();
    if (!parsed.ok()) {
      COFFER_LOG(kWarning) << "event subscription " << r.vault << "/" << r.name
                           << " is not usable: " << parsed.message();
      continue;
    }
    // SECURITY: an endpoint that has not proved it wants the events gets none.
    if (!IsValidated(ReadValidation(*props))) {
      continue;
    }
    s->vault = r.vault;
    s->name = r.name;
    s->start_seq = r.start_seq;
    s->key_generation = r.key_generation;
    subs.push_back(std::move(s));
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, Lane> next;
  for (auto& s : subs) {
    std::string key = LaneKey(s->vault, s->name);
    auto it = lanes_.find(key);
    Lane lane;
    if (it != lanes_.end()) {
      lane = std::move(it->second);
      lanes_.erase(it);
    } else {
      lane.id = next_lane_id_++;
    }
    lane.subscription = std::move(s);
    next.emplace(std::move(key), std::move(lane));
  }
  for (const auto& [key, gone] : lanes_) {
    queued_ -= gone.queued();  // a deleted subscription's deliveries go with it
  }
  lanes_ = std::move(next);
  return OkStatus();
}

size_t WebhookDispatcher::OnChanges(const std::vector<storage::ChangeRecord>& changes) {
  int64_t now = Now();
  std::vector<DeadLetterNote> full;
  size_t matched = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& c : changes) {
      for (auto& [key, lane] : lanes_) {
        if (!lane.subscription->Matches(c)) {
          continue;
        }
        ++matched;
        Delivery d;
        d.change = c;
        d.due_ms = now;
        d.first_ms = now;
        if (lane.queued() >= options_.max_queued_per_subscription || queued_ >= kMaxQueued) {
          d.last_outcome = "the delivery queue is full";
          stats_.dead_lettered++;
          stats_.dead_letter_reasons["DeliveryQueueFull"]++;
          full.push_back({lane.subscription, std::move(d), "DeliveryQueueFull"});
          continue;
        }
        lane.ready.push_back(std::move(d));
        queued_++;
      }
    }
  }
  cv_.notify_all();
  for (const auto& note : full) {
    DeadLetter(note);
  }
  return matched;
}

Status WebhookDispatcher::CheckTarget(const std::string& url) const {
  RETURN_IF_ERROR(CheckLiteralTarget(url, options_.targets));
  auto address = ResolveTarget(url, options_.targets, options_.resolver);
  if (!address.ok()) {
    return InvalidArgumentError("properties.destination.properties.endpointUrl is refused: " +
                                    std::string(address.status().message()) + ".",
                                "InvalidRequest");
  }
  return OkStatus();
}

HandshakeResult WebhookDispatcher::Validate(const Subscription& s,
                                            const std::string& validation_url) {
  auto address = ResolveTarget(s.endpoint_url, options_.targets, options_.resolver);
  if (!address.ok()) {
    return {HandshakeResult::Outcome::kFailed, std::string(address.status().message())};
  }
  std::string code = crypto::RandomUuid();
  HandshakeMessage m =
      s.cloud_events
          ? CloudEventsValidationRequest(options_.origin, validation_url)
          : EventGridValidationRequest(s.name, naming_.resource_id(s.vault), code, validation_url);
  WebhookRequest request;
  request.method = m.method;
  request.url = s.endpoint_url;
  request.connect_address = *address;
  request.headers = std::move(m.headers);
  request.body = std::move(m.body);
  request.timeout_seconds = options_.timeout_seconds;
  auto response = sender_(request);
  if (!response.ok()) {
    // The detail goes to the log only: to the caller it would tell which
    // hosts and ports this server can reach.
    COFFER_LOG(kWarning) << "validating event subscription " << s.vault << "/" << s.name
                         << ": no answer: " << response.status().message();
    return {HandshakeResult::Outcome::kFailed,
            "the endpoint did not answer the validation request (no connection, or no answer "
            "within " +
                std::to_string(options_.timeout_seconds) + " s)"};
  }
  return s.cloud_events ? JudgeCloudEventsValidation(*response, options_.origin)
                        : JudgeEventGridValidation(*response, code);
}

int64_t WebhookDispatcher::BackoffMs(int attempts) const {
  size_t i =
      std::min<size_t>(static_cast<size_t>(std::max(attempts, 1)) - 1, std::size(kSchedule) - 1);
  return kSchedule[i] * options_.base_backoff_ms;
}

int64_t WebhookDispatcher::Now() const {
  return options_.now_ms ? options_.now_ms() : NowMs();
}

int WebhookDispatcher::LimitFor(const Lane& lane) const {
  return lane.failing ? 1 : std::max(1, options_.max_in_flight);
}

std::string WebhookDispatcher::SignatureHeader(const std::string& key, int64_t unix_seconds,
                                               const std::string& body) {
  std::string t = std::to_string(unix_seconds);
  return "t=" + t + ",v1=" + HexEncode(crypto::HmacSha256(key, t + "." + body));
}

std::optional<WebhookDispatcher::Picked> WebhookDispatcher::PickLocked(int64_t now,
                                                                       int64_t* wake_ms) {
  const int failing_cap = std::max(1, options_.threads / 2);
  Lane* best = nullptr;
  const std::string* best_key = nullptr;
  for (auto& [key, lane] : lanes_) {
    while (!lane.later.empty() && lane.later.top().due_ms <= now) {
      lane.ready.push_back(lane.later.top());
      lane.later.pop();
    }
    if (lane.ready.empty()) {
      if (!lane.later.empty()) {
        *wake_ms = std::min(*wake_ms, lane.later.top().due_ms);
      }
      continue;
    }
    // A lane at its limit is woken by the completion that frees it.
    if (lane.in_flight >= LimitFor(lane) || (lane.failing && failing_in_flight_ >= failing_cap)) {
      continue;
    }
    if (now - lane.window_start_ms >= options_.budget_window_ms) {
      lane.window_start_ms = now;
      lane.spent_ms = 0;
    }
    if (lane.spent_ms >= options_.budget_ms) {
      *wake_ms = std::min(*wake_ms, lane.window_start_ms + options_.budget_window_ms);
      continue;
    }
    if (best == nullptr || lane.served < best->served) {
      best = &lane;
      best_key = &key;
    }
  }
  if (best == nullptr) {
    return std::nullopt;
  }
  Picked p;
  p.key = *best_key;
  p.lane_id = best->id;
  p.subscription = best->subscription;
  p.delivery = std::move(best->ready.front());
  best->ready.pop_front();
  queued_--;
  best->in_flight++;
  best->served = ++turn_;
  if (best->failing) {
    failing_in_flight_++;
    p.counted_failing = true;
  }
  return p;
}

void WebhookDispatcher::Worker() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    int64_t now = Now();
    int64_t wake = std::numeric_limits<int64_t>::max();
    std::optional<Picked> picked = PickLocked(now, &wake);
    if (!picked) {
      if (wake == std::numeric_limits<int64_t>::max()) {
        cv_.wait(lock);
      } else {
        cv_.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(wake - now, 1)));
      }
      continue;
    }
    lock.unlock();
    Attempt(std::move(*picked));
    lock.lock();
  }
}

void WebhookDispatcher::Attempt(Picked p) {
  // Delivered under the subscription as it was when picked: a changed one
  // has its new URL, key and filter.
  const Subscription& s = *p.subscription;
  Delivery& d = p.delivery;
  const bool matches = s.Matches(d.change);
  const int64_t started = Now();
  StatusOr<http::Response> response = Status(StatusCode::kCancelled, "not sent");
  bool refused = false;
  if (matches) {
    Json event = s.cloud_events ? CloudEvent(d.change, naming_)
                                : Json::array({EventGridEvent(d.change, naming_)});
    WebhookRequest request;
    request.url = s.endpoint_url;
    request.body = ToJson(event);
    request.timeout_seconds = options_.timeout_seconds;
    request.headers = {
        {"Content-Type", s.cloud_events ? "application/cloudevents+json; charset=utf-8"
                                        : "application/json; charset=utf-8"},
        {"aeg-event-type", "Notification"},
        {"aeg-subscription-name", AsciiUpper(s.name)},
        {"aeg-delivery-count", std::to_string(d.attempts)},
        {"aeg-data-version", "1"},
        {"aeg-metadata-version", "1"},
        {"Coffer-Signature", SignatureHeader(key_for_(s.vault, s.name, s.key_generation),
                                             started / 1000, request.body)}};
    if (s.cloud_events) {
      // CloudEvents' abuse protection: each delivery names the origin the
      // endpoint agreed to.
      request.headers.emplace_back("Origin", options_.origin);
    }
    auto address = ResolveTarget(s.endpoint_url, options_.targets, options_.resolver);
    if (address.ok()) {
      request.connect_address = *address;
      response = sender_(request);
    } else {
      COFFER_LOG(kWarning) << "event subscription " << s.vault << "/" << s.name
                           << ": delivery refused: " << address.status().message();
      response = address.status();
      refused = true;
    }
  }
  const int64_t spent = Now() - started;
  const bool ok = matches && response.ok() && response->status >= 200 && response->status <= 204;
  std::optional<DeadLetterNote> dead;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (p.counted_failing) {
      failing_in_flight_--;
    }
    auto it = lanes_.find(p.key);
    Lane* lane = it != lanes_.end() && it->second.id == p.lane_id ? &it->second : nullptr;
    if (lane != nullptr) {
      lane->in_flight--;
      lane->spent_ms += spent;
      if (matches) {
        lane->failing = !ok;
      }
    }
    cv_.notify_all();
    if (!matches) {
      return;  // the subscription's filter changed: not for it any more
    }
    d.attempts++;
    if (ok) {
      stats_.delivered++;
      return;
    }
    stats_.failed_attempts++;
    if (response.ok()) {
      stats_.rejected++;
    } else if (refused) {
      stats_.refused++;
    } else {
      stats_.unreachable++;
    }
    d.last_status = response.ok() ? response->status : 0;
    d.last_outcome = response.ok() ? "HTTP " + std::to_string(response->status)
                                   : std::string(response.status().message());
    std::string reason;
    if (response.ok() && (response->status == 400 || response->status == 413)) {
      reason = "NonRetryableResponse";
    } else if (d.attempts >= s.max_delivery_attempts) {
      reason = "MaxDeliveryAttemptsExceeded";
    } else if (Now() + BackoffMs(d.attempts) - d.first_ms >
               int64_t{s.event_ttl_minutes} * 60 * 1000) {
      reason = "TimeToLiveExceeded";
    }
    if (!reason.empty()) {
      stats_.dead_lettered++;
      stats_.dead_letter_reasons[reason]++;
      dead = DeadLetterNote{p.subscription, d, reason};
    } else if (lane != nullptr) {
      d.due_ms = Now() + BackoffMs(d.attempts);
      lane->later.push(std::move(d));
      queued_++;
    }
    // else the subscription is gone (deleted, or no longer validated): no
    // more attempts.
  }
  if (dead) {
    DeadLetter(*dead);
  }
}

void WebhookDispatcher::DeadLetter(const DeadLetterNote& note) {
  const Subscription& s = *note.subscription;
  const Delivery& d = note.delivery;
  Json line = {{"deadLetterReason", note.reason},
               {"deliveryAttempts", d.attempts},
               {"lastDeliveryOutcome", d.last_outcome},
               {"lastHttpStatusCode", d.last_status},
               {"publishTime", FormatEventTime(d.change.time_ms)},
               {"lastDeliveryAttemptTime", FormatEventTime(Now())},
               {"vaultName", s.vault},
               {"subscriptionName", s.name},
               {"event", s.cloud_events ? CloudEvent(d.change, naming_)
                                        : EventGridEvent(d.change, naming_)}};
  std::string text = ToJson(line) + "\n";
  COFFER_LOG(kWarning) << "event " << d.change.event_id << " for subscription " << s.vault << "/"
                       << s.name << " dead-lettered: " << note.reason;
  if (options_.dead_letter_path.empty()) {
    return;
  }
  std::lock_guard<std::mutex> lock(dead_letter_mu_);
  UniqueFd fd(
      ::open(options_.dead_letter_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!fd.valid()) {
    COFFER_LOG(kError) << "cannot open the dead-letter file " << options_.dead_letter_path;
    return;
  }
  ssize_t n = ::write(fd.get(), text.data(), text.size());
  if (n != static_cast<ssize_t>(text.size())) {
    COFFER_LOG(kError) << "writing the dead-letter file failed";
  }
  ::fsync(fd.get());
}

WebhookDispatcher::Stats WebhookDispatcher::stats() {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace coffer::events
