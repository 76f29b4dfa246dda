#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/json.h"
#include "common/status.h"
#include "events/event_format.h"
#include "storage/store.h"

namespace coffer::events {

// An event subscription as the dispatcher uses it, parsed from
// EventSubscriptionRecord::properties_json (docs/events.md).
struct Subscription {
  std::string vault;
  std::string name;
  std::string endpoint_url;
  std::vector<std::string> included_types;  // full names; empty: every Key Vault type
  std::string subject_begins_with;
  std::string subject_ends_with;
  bool cloud_events = false;  // CloudEventSchemaV1_0 instead of EventGridSchema
  int max_delivery_attempts = 30;
  int event_ttl_minutes = 1440;
  int64_t start_seq = 0;
  int64_t key_generation = 1;

  bool Matches(const storage::ChangeRecord& change) const;
};

// ParseSubscription validates ARM `properties` of an event subscription and
// fills `out` (vault, name and seq fields are left alone). kInvalidArgument
// names the bad field.
Status ParseSubscription(const Json& properties, Subscription& out);

// UrlSeal keeps webhook URLs sealed in the store (they often carry a code,
// which Event Grid also never shows): AES-256-GCM under a key derived from
// the master key, bound to the vault and subscription names.
class UrlSeal {
 public:
  explicit UrlSeal(std::string key) : key_(std::move(key)) {}
  // base64 of the sealed URL.
  std::string Seal(const std::string& vault, const std::string& name, const std::string& url) const;
  // kDataLoss when the text was not sealed by this key for this subscription.
  StatusOr<std::string> Open(const std::string& vault, const std::string& name,
                             const std::string& sealed) const;
  // The stored properties with destination.properties.endpointUrl restored.
  StatusOr<Json> Unseal(const storage::EventSubscriptionRecord& record) const;

 private:
  std::string key_;
};

struct WebhookOptions {
  int threads = 2;
  // The first retry waits this long; later ones follow Event Grid's
  // schedule (10 s, 30 s, 1 min, 5 min, 10 min, 30 min, 1 h, then hourly)
  // scaled by base_backoff_ms / 10,000.
  int64_t base_backoff_ms = 10000;
  int timeout_seconds = 30;
  std::string dead_letter_path;  // JSON lines, created 0600
};

// Sends one POST; returns the HTTP status, or an error when no response came.
using WebhookSender = std::function<StatusOr<int>(
    const std::string& url, const std::vector<std::pair<std::string, std::string>>& headers,
    const std::string& body, int timeout_seconds)>;
// The HMAC key of a subscription (derived from the server's master key and
// the subscription's key generation, never stored).
using SigningKeyFor = std::function<std::string(const std::string& vault, const std::string& name,
                                                int64_t generation)>;

// WebhookDispatcher delivers each change to the webhooks of the
// subscriptions it matches: signed, retried with back-off, and written to
// the dead-letter file when it cannot be delivered. Delivery runs on its own
// threads and never blocks a request.
//
// Thread-safe.
class WebhookDispatcher {
 public:
  WebhookDispatcher(storage::Store& store, VaultNaming naming, WebhookSender sender,
                    SigningKeyFor key_for, UrlSeal seal, WebhookOptions options);
  ~WebhookDispatcher();

  Status Start();
  void Stop();
  // Re-reads the subscriptions: after one was created, changed or deleted,
  // and after a vault was purged (its subscriptions went with it). Pending
  // deliveries follow: a deleted subscription gets no more attempts.
  Status Reload();
  // The hub's listener.
  void OnChanges(const std::vector<storage::ChangeRecord>& changes);

  struct Stats {
    uint64_t delivered = 0;
    uint64_t failed_attempts = 0;
    uint64_t dead_lettered = 0;
  };
  Stats stats();

  // SignatureHeader computes the Coffer-Signature header's value for a body
  // sent at `unix_seconds`: "t=<seconds>,v1=<hex HMAC-SHA256(key, t + '.' + body)>".
  static std::string SignatureHeader(const std::string& key, int64_t unix_seconds,
                                     const std::string& body);

 private:
  struct Delivery {
    std::shared_ptr<const Subscription> subscription;
    storage::ChangeRecord change;
    int attempts = 0;  // made so far
    int64_t due_ms = 0;
    int64_t first_ms = 0;
    std::string last_outcome;
    int last_status = 0;
  };
  struct Later {
    bool operator()(const Delivery& a, const Delivery& b) const { return a.due_ms > b.due_ms; }
  };
  void Worker();
  void Attempt(Delivery d);
  void DeadLetter(const Delivery& d, const std::string& reason);
  int64_t BackoffMs(int attempts) const;

  storage::Store& store_;
  const VaultNaming naming_;
  const WebhookSender sender_;
  const SigningKeyFor key_for_;
  const UrlSeal seal_;
  const WebhookOptions options_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::shared_ptr<const Subscription>> subscriptions_;     // guarded by mu_
  std::priority_queue<Delivery, std::vector<Delivery>, Later> queue_;  // guarded by mu_
  bool stopping_ = false;                                              // guarded by mu_
  Stats stats_;                                                        // guarded by mu_
  std::mutex dead_letter_mu_;
  std::vector<std::thread> threads_;
};

}  // namespace coffer::events
