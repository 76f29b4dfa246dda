#include "events/webhooks.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "common/encoding.h"
#include "common/log.h"
#include "common/strings.h"
#include "common/unique_fd.h"
#include "crypto/primitives.h"
#include "http/message.h"

namespace coffer::events {

namespace {

constexpr size_t kMaxTypes = 25;
constexpr size_t kMaxSubjectFilter = 1024;
constexpr size_t kMaxQueued = 100000;
// Event Grid's retry schedule, in units of the base back-off (10 s).
constexpr int64_t kSchedule[] = {1, 3, 6, 30, 60, 180, 360};

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status Bad(const std::string& message) {
  return InvalidArgumentError(message, "InvalidRequest");
}

const std::vector<std::string>& CofferTypes() {
  static const std::vector<std::string> kTypes = {
      "Coffer.KeyVault.SecretUpdated", "Coffer.KeyVault.SecretDeleted",
      "Coffer.KeyVault.SecretRecovered", "Coffer.KeyVault.SecretPurged"};
  return kTypes;
}

bool KnownType(const std::string& type) {
  return IsKeyVaultEventType(type) ||
         std::find(CofferTypes().begin(), CofferTypes().end(), type) != CofferTypes().end();
}

bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && EqualsIgnoreCase(s.substr(0, prefix.size()), prefix);
}

bool EndsWithIgnoreCase(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && EqualsIgnoreCase(s.substr(s.size() - suffix.size()), suffix);
}

StatusOr<int> IntIn(const Json& object, const char* name, int low, int high, int fallback) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) {
    return fallback;
  }
  if (!it->is_number_integer() || it->get<int64_t>() < low || it->get<int64_t>() > high) {
    return Bad(std::string("retryPolicy.") + name + " must be an integer from " +
               std::to_string(low) + " to " + std::to_string(high) + ".");
  }
  return static_cast<int>(it->get<int64_t>());
}

}  // namespace

bool Subscription::Matches(const storage::ChangeRecord& change) const {
  if (change.seq <= start_seq || !EqualsIgnoreCase(change.vault, vault)) {
    return false;
  }
  std::string type = EventType(change);
  if (included_types.empty()) {
    if (!IsKeyVaultEventType(type)) {
      return false;
    }
  } else if (std::find(included_types.begin(), included_types.end(), type) ==
             included_types.end()) {
    return false;
  }
  const std::string& subject = change.name.empty() ? change.vault : change.name;
  return StartsWithIgnoreCase(subject, subject_begins_with) &&
         EndsWithIgnoreCase(subject, subject_ends_with);
}

Status ParseSubscription(const Json& p, Subscription& out) {
  if (!p.is_object()) {
    return Bad("properties must be an object.");
  }
  auto dest = p.find("destination");
  if (dest == p.end() || !dest->is_object()) {
    return Bad("properties.destination is required.");
  }
  std::string endpoint_type = StringMember(*dest, "endpointType");
  if (!EqualsIgnoreCase(endpoint_type, "WebHook")) {
    return Bad(
        "properties.destination.endpointType must be 'WebHook'; Coffer delivers to "
        "webhooks only.");
  }
  auto dp = dest->find("properties");
  if (dp == dest->end() || !dp->is_object()) {
    return Bad("properties.destination.properties.endpointUrl is required.");
  }
  out.endpoint_url = StringMember(*dp, "endpointUrl");
  if (out.endpoint_url.empty() || !http::IsTrustworthyUrl(out.endpoint_url)) {
    return Bad(
        "properties.destination.properties.endpointUrl must be an https:// URL (or "
        "http:// to a loopback address) of at most 2,048 characters.");
  }
  out.included_types.clear();
  out.subject_begins_with.clear();
  out.subject_ends_with.clear();
  if (auto f = p.find("filter"); f != p.end() && !f->is_null()) {
    if (!f->is_object()) {
      return Bad("properties.filter must be an object.");
    }
    if (auto t = f->find("includedEventTypes"); t != f->end() && !t->is_null()) {
      if (!t->is_array() || t->size() > kMaxTypes) {
        return Bad("properties.filter.includedEventTypes must be an array of at most 25 types.");
      }
      for (const auto& type : *t) {
        if (!type.is_string() || !KnownType(type.get<std::string>())) {
          return Bad("properties.filter.includedEventTypes holds an unknown event type: " +
                     (type.is_string() ? type.get<std::string>().substr(0, 100)
                                       : std::string("(not a string)")) +
                     ".");
        }
        out.included_types.push_back(type.get<std::string>());
      }
    }
    for (auto [field, target] :
         {std::pair<const char*, std::string*>{"subjectBeginsWith", &out.subject_begins_with},
          {"subjectEndsWith", &out.subject_ends_with}}) {
      auto it = f->find(field);
      if (it == f->end() || it->is_null()) {
        continue;
      }
      if (!it->is_string() || it->get<std::string>().size() > kMaxSubjectFilter) {
        return Bad(std::string("properties.filter.") + field +
                   " must be a string of at most 1,024 characters.");
      }
      *target = it->get<std::string>();
    }
  }
  std::string schema = StringMember(p, "eventDeliverySchema");
  if (schema.empty() || EqualsIgnoreCase(schema, "EventGridSchema")) {
    out.cloud_events = false;
  } else if (EqualsIgnoreCase(schema, "CloudEventSchemaV1_0")) {
    out.cloud_events = true;
  } else {
    return Bad(
        "properties.eventDeliverySchema must be 'EventGridSchema' or "
        "'CloudEventSchemaV1_0'.");
  }
  out.max_delivery_attempts = 30;
  out.event_ttl_minutes = 1440;
  if (auto r = p.find("retryPolicy"); r != p.end() && !r->is_null()) {
    if (!r->is_object()) {
      return Bad("properties.retryPolicy must be an object.");
    }
    ASSIGN_OR_RETURN(out.max_delivery_attempts, IntIn(*r, "maxDeliveryAttempts", 1, 30, 30));
    ASSIGN_OR_RETURN(out.event_ttl_minutes, IntIn(*r, "eventTimeToLiveInMinutes", 1, 1440, 1440));
  }
  return OkStatus();
}

std::string UrlSeal::Seal(const std::string& vault, const std::string& name,
                          const std::string& url) const {
  return Base64Encode(crypto::AesGcmSeal(key_, url, AsciiLower(vault) + "/" + AsciiLower(name)));
}

StatusOr<std::string> UrlSeal::Open(const std::string& vault, const std::string& name,
                                    const std::string& sealed) const {
  auto bytes = Base64Decode(sealed);
  if (!bytes) {
    return DataLossError("the stored endpoint URL is not base64");
  }
  return crypto::AesGcmOpen(key_, *bytes, AsciiLower(vault) + "/" + AsciiLower(name));
}

StatusOr<Json> UrlSeal::Unseal(const storage::EventSubscriptionRecord& r) const {
  Json props = Json::parse(r.properties_json, nullptr, false);
  if (!props.is_object() || !props.contains("destination") || !props["destination"].is_object() ||
      !props["destination"].contains("properties") ||
      !props["destination"]["properties"].is_object()) {
    return DataLossError("stored event subscription properties are malformed");
  }
  Json& dp = props["destination"]["properties"];
  std::string sealed = StringMember(dp, "endpointUrlSealed");
  if (!sealed.empty()) {
    ASSIGN_OR_RETURN(std::string url, Open(r.vault, r.name, sealed));
    dp.erase("endpointUrlSealed");
    dp["endpointUrl"] = url;
  }
  return props;
}

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
    s->vault = r.vault;
    s->name = r.name;
    s->start_seq = r.start_seq;
    s->key_generation = r.key_generation;
    subs.push_back(std::move(s));
  }
  std::lock_guard<std::mutex> lock(mu_);
  subscriptions_ = std::move(subs);
  return OkStatus();
}

void WebhookDispatcher::OnChanges(const std::vector<storage::ChangeRecord>& changes) {
  int64_t now = NowMs();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& c : changes) {
      for (const auto& s : subscriptions_) {
        if (!s->Matches(c)) {
          continue;
        }
        Delivery d;
        d.subscription = s;
        d.change = c;
        d.due_ms = now;
        d.first_ms = now;
        if (queue_.size() >= kMaxQueued) {
          d.last_outcome = "the delivery queue is full";
          stats_.dead_lettered++;
          // Only when 100,000 deliveries wait: the file write under the
          // lock is the rare case.
          DeadLetter(d, "DeliveryQueueFull");
          continue;
        }
        queue_.push(std::move(d));
      }
    }
  }
  cv_.notify_all();
}

int64_t WebhookDispatcher::BackoffMs(int attempts) const {
  size_t i =
      std::min<size_t>(static_cast<size_t>(std::max(attempts, 1)) - 1, std::size(kSchedule) - 1);
  return kSchedule[i] * options_.base_backoff_ms;
}

std::string WebhookDispatcher::SignatureHeader(const std::string& key, int64_t unix_seconds,
                                               const std::string& body) {
  std::string t = std::to_string(unix_seconds);
  return "t=" + t + ",v1=" + HexEncode(crypto::HmacSha256(key, t + "." + body));
}

void WebhookDispatcher::Worker() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (queue_.empty()) {
      cv_.wait(lock);
      continue;
    }
    int64_t now = NowMs();
    if (queue_.top().due_ms > now) {
      cv_.wait_for(lock, std::chrono::milliseconds(queue_.top().due_ms - now));
      continue;
    }
    Delivery d = queue_.top();
    queue_.pop();
    lock.unlock();
    Attempt(std::move(d));
    lock.lock();
  }
}

void WebhookDispatcher::Attempt(Delivery d) {
  {
    // Deliver under the subscription as it is now: a deleted one gets
    // nothing more; a changed one gets its new URL, key and filter.
    std::lock_guard<std::mutex> lock(mu_);
    std::shared_ptr<const Subscription> current;
    for (const auto& s : subscriptions_) {
      if (EqualsIgnoreCase(s->vault, d.subscription->vault) &&
          EqualsIgnoreCase(s->name, d.subscription->name)) {
        current = s;
      }
    }
    if (current == nullptr || !current->Matches(d.change)) {
      return;
    }
    d.subscription = std::move(current);
  }
  const Subscription& s = *d.subscription;
  Json event = s.cloud_events ? CloudEvent(d.change, naming_)
                              : Json::array({EventGridEvent(d.change, naming_)});
  std::string body = ToJson(event);
  int64_t now_ms = NowMs();
  std::vector<std::pair<std::string, std::string>> headers = {
      {"Content-Type", s.cloud_events ? "application/cloudevents+json; charset=utf-8"
                                      : "application/json; charset=utf-8"},
      {"aeg-event-type", "Notification"},
      {"aeg-subscription-name", AsciiUpper(s.name)},
      {"aeg-delivery-count", std::to_string(d.attempts)},
      {"aeg-data-version", "1"},
      {"aeg-metadata-version", "1"},
      {"Coffer-Signature",
       SignatureHeader(key_for_(s.vault, s.name, s.key_generation), now_ms / 1000, body)}};
  auto status = sender_(s.endpoint_url, headers, body, options_.timeout_seconds);
  d.attempts++;
  if (status.ok() && *status >= 200 && *status <= 204) {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.delivered++;
    return;
  }
  d.last_status = status.ok() ? *status : 0;
  d.last_outcome = status.ok() ? "HTTP " + std::to_string(*status) : status.status().message();
  std::string reason;
  if (status.ok() && (*status == 400 || *status == 413)) {
    reason = "NonRetryableResponse";
  } else if (d.attempts >= s.max_delivery_attempts) {
    reason = "MaxDeliveryAttemptsExceeded";
  } else if (NowMs() + BackoffMs(d.attempts) - d.first_ms >
             int64_t{s.event_ttl_minutes} * 60 * 1000) {
    reason = "TimeToLiveExceeded";
  }
  std::lock_guard<std::mutex> lock(mu_);
  stats_.failed_attempts++;
  if (!reason.empty()) {
    stats_.dead_lettered++;
    DeadLetter(d, reason);
    return;
  }
  d.due_ms = NowMs() + BackoffMs(d.attempts);
  queue_.push(std::move(d));
  cv_.notify_one();
}

void WebhookDispatcher::DeadLetter(const Delivery& d, const std::string& reason) {
  const Subscription& s = *d.subscription;
  Json line = {{"deadLetterReason", reason},
               {"deliveryAttempts", d.attempts},
               {"lastDeliveryOutcome", d.last_outcome},
               {"lastHttpStatusCode", d.last_status},
               {"publishTime", FormatEventTime(d.change.time_ms)},
               {"lastDeliveryAttemptTime", FormatEventTime(NowMs())},
               {"vaultName", s.vault},
               {"subscriptionName", s.name},
               {"event", s.cloud_events ? CloudEvent(d.change, naming_)
                                        : EventGridEvent(d.change, naming_)}};
  std::string text = ToJson(line) + "\n";
  COFFER_LOG(kWarning) << "event " << d.change.event_id << " for subscription " << s.vault << "/"
                       << s.name << " dead-lettered: " << reason;
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
