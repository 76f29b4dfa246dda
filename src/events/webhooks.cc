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
      options_(std::move(options)),
      leading_(!options_.persist) {}

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
  auto matched = OnChanges(changes, nullptr);
  return matched.ok() ? *matched : 0;
}

StatusOr<size_t> WebhookDispatcher::OnChanges(const std::vector<storage::ChangeRecord>& changes,
                                              const PersistDeliveries& persist) {
  int64_t now = Now();
  // What the changes make, by lane: decided on the subscriptions as they
  // are now, queued once `persist` made them durable.
  std::vector<std::pair<std::string, Delivery>> made;
  std::vector<storage::PendingDelivery> rows;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& c : changes) {
      for (auto& [key, lane] : lanes_) {
        if (!lane.subscription->Matches(c)) {
          continue;
        }
        Delivery d;
        d.change = c;
        d.due_ms = now;
        d.first_ms = now;
        if (persist) {
          rows.push_back(Row(*lane.subscription, d));
        }
        made.emplace_back(key, std::move(d));
      }
    }
  }
  int64_t queued_before = 0;
  if (persist && !made.empty()) {
    ASSIGN_OR_RETURN(queued_before, persist(rows));
  }
  std::vector<DeadLetterNote> full;
  std::vector<storage::PendingDelivery> unqueued;
  // Queued by another leader (a server that led a moment ago and did not
  // know it had lost the lease) after this one loaded the store: its rows
  // are taken from the store, or they would wait for the next takeover.
  std::set<std::pair<std::string, int64_t>> adopt;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [key, d] : made) {
      auto it = lanes_.find(key);
      // At or below the stored position: another leader queued it.
      if (it != lanes_.end() && d.change.seq <= queued_before) {
        if (leading_ && persist && d.change.seq > known_through_) {
          adopt.insert({key, d.change.seq});
        }
        continue;
      }
      if (it == lanes_.end()) {
        continue;
      }
      known_through_ = std::max(known_through_, d.change.seq);
      Lane& lane = it->second;
      if (FullLocked(lane)) {
        d.last_outcome = "the delivery queue is full";
        stats_.dead_lettered++;
        stats_.dead_letter_reasons["DeliveryQueueFull"]++;
        if (persist) {
          unqueued.push_back(Row(*lane.subscription, d));
        }
        full.push_back({lane.subscription, std::move(d), "DeliveryQueueFull"});
        continue;
      }
      if (!leading_) {
        continue;  // stored: the leader will load it
      }
      lane.ready.push_back(std::move(d));
      queued_++;
    }
  }
  cv_.notify_all();
  for (const auto& note : full) {
    DeadLetter(note);
  }
  for (const auto& row : unqueued) {
    Record(row, true);
  }
  if (!adopt.empty()) {
    Status adopted = Adopt(adopt);
    if (!adopted.ok()) {
      COFFER_LOG(kWarning) << "webhooks: the deliveries another server queued could not be read; "
                              "the next leader continues them: "
                           << adopted.ToString();
    }
  }
  return made.size();
}

bool WebhookDispatcher::FullLocked(const Lane& lane) const {
  return lane.queued() >= options_.max_queued_per_subscription || queued_ >= kMaxQueued;
}

void WebhookDispatcher::ClearQueuesLocked() {
  for (auto& [key, lane] : lanes_) {
    queued_ -= lane.queued();
    lane.ready.clear();
    lane.later = {};
  }
}

StatusOr<std::vector<storage::PendingDelivery>> WebhookDispatcher::StoredDeliveries() {
  constexpr int kPage = 1000;
  std::vector<storage::PendingDelivery> pending;
  std::optional<storage::Store::DeliveryCursor> after;
  while (true) {
    ASSIGN_OR_RETURN(auto page, store_.ListDeliveries(after, kPage));
    for (auto& row : page) {
      pending.push_back(std::move(row));
    }
    if (page.size() < static_cast<size_t>(kPage)) {
      return pending;
    }
    const auto& last = pending.back();
    after =
        storage::Store::DeliveryCursor{last.due_ms, last.vault_key, last.name_key, last.change.seq};
  }
}

size_t WebhookDispatcher::LoadLocked(std::vector<storage::PendingDelivery>& rows) {
  size_t loaded = 0;
  for (auto& row : rows) {
    known_through_ = std::max(known_through_, row.change.seq);
    auto it = lanes_.find(row.vault_key + "/" + row.name_key);
    // A subscription not served here (not validated) keeps its rows;
    // one over the bounds keeps them for a later leader.
    if (it == lanes_.end() || FullLocked(it->second)) {
      continue;
    }
    Delivery d;
    d.change = std::move(row.change);
    d.attempts = row.attempts;
    d.due_ms = row.due_ms;
    d.first_ms = row.first_ms;
    d.last_outcome = std::move(row.last_outcome);
    d.last_status = row.last_status;
    it->second.later.push(std::move(d));
    queued_++;
    loaded++;
  }
  return loaded;
}

Status WebhookDispatcher::Lead() {
  RETURN_IF_ERROR(Reload());
  ASSIGN_OR_RETURN(auto pending, StoredDeliveries());
  size_t loaded = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ClearQueuesLocked();
    known_through_ = 0;
    loaded = LoadLocked(pending);
    leading_ = true;
    term_++;
  }
  cv_.notify_all();
  if (loaded > 0) {
    COFFER_LOG(kInfo) << "webhooks: continuing " << loaded << " pending deliveries";
  }
  return OkStatus();
}

Status WebhookDispatcher::Adopt(const std::set<std::pair<std::string, int64_t>>& wanted) {
  ASSIGN_OR_RETURN(auto stored, StoredDeliveries());
  std::vector<storage::PendingDelivery> rows;
  for (auto& row : stored) {
    if (wanted.count({row.vault_key + "/" + row.name_key, row.change.seq}) != 0) {
      rows.push_back(std::move(row));
    }
  }
  size_t loaded = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!leading_) {
      return OkStatus();
    }
    loaded = LoadLocked(rows);
  }
  cv_.notify_all();
  if (loaded > 0) {
    COFFER_LOG(kInfo) << "webhooks: continuing " << loaded
                      << " deliveries another server queued while it led";
  }
  return OkStatus();
}

void WebhookDispatcher::Follow() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!options_.persist) {
    return;  // the deliveries live here only
  }
  leading_ = false;
  ClearQueuesLocked();
}

storage::PendingDelivery WebhookDispatcher::Row(const Subscription& s, const Delivery& d) {
  storage::PendingDelivery row;
  row.vault_key = AsciiLower(s.vault);
  row.name_key = AsciiLower(s.name);
  row.change = d.change;
  row.attempts = d.attempts;
  row.due_ms = d.due_ms;
  row.first_ms = d.first_ms;
  row.last_outcome = d.last_outcome;
  row.last_status = d.last_status;
  return row;
}

void WebhookDispatcher::Record(const storage::PendingDelivery& row, bool done) {
  if (!options_.persist) {
    return;
  }
  Status s = done ? store_.DeleteDelivery(row.vault_key, row.name_key, row.change.seq)
                  : store_.UpdateDelivery(row);
  // Gone already: its subscription was deleted, or another leader ended it.
  if (!s.ok() && s.code() != StatusCode::kNotFound) {
    COFFER_LOG(kWarning) << "webhooks: recording the delivery of event " << row.change.event_id
                         << " failed: " << s.ToString();
  }
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
  if (!leading_) {
    return std::nullopt;  // Lead() wakes the threads
  }
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
  p.term = term_;
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
  storage::PendingDelivery row;  // what to record in the store
  bool done = true;
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
    // A change the subscription's filter no longer matches is not for it
    // any more: done.
    if (matches) {
      d.attempts++;
      if (ok) {
        stats_.delivered++;
      } else {
        done = FailedLocked(p, lane, response, refused, d, dead);
      }
    }
    row = Row(s, d);
  }
  if (dead) {
    DeadLetter(*dead);
  }
  Record(row, done);
}

bool WebhookDispatcher::FailedLocked(const Picked& p, Lane* lane,
                                     const StatusOr<http::Response>& response, bool refused,
                                     Delivery& d, std::optional<DeadLetterNote>& dead) {
  const Subscription& s = *p.subscription;
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
    return true;
  }
  if (lane == nullptr) {
    // The subscription is gone (deleted, or no longer validated): no more
    // attempts.
    return true;
  }
  d.due_ms = Now() + BackoffMs(d.attempts);
  // Another term's attempt is recorded, not queued: the leader that
  // followed it has loaded the row.
  if (leading_ && p.term == term_) {
    lane->later.push(d);
    queued_++;
  }
  return false;
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
