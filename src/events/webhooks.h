#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/json.h"
#include "common/status.h"
#include "events/event_format.h"
#include "events/subscription.h"
#include "events/webhook_target.h"
#include "events/webhook_validation.h"
#include "http/message.h"
#include "storage/store.h"

namespace coffer::events {

struct WebhookOptions {
  // Delivery threads, shared by every subscription.
  int threads = 4;
  // Deliveries in flight to one subscription at once; one while its last
  // attempt failed. Subscriptions whose last attempt failed together hold at
  // most half the threads, so endpoints that hang or fail cannot take every
  // thread from those that answer.
  int max_in_flight = 2;
  // The first retry waits this long; later ones follow Event Grid's schedule
  // (10 s, 30 s, 1 min, 5 min, 10 min, 30 min, 1 h, then hourly) scaled by
  // base_backoff_ms / 10,000.
  int64_t base_backoff_ms = 10000;
  // Per attempt (connection, request and response).
  int timeout_seconds = 30;
  // A subscription's time budget: once its attempts took `budget_ms` within
  // a window of `budget_window_ms`, its next attempt waits for the next
  // window (the events stay queued; their time to live runs on).
  int64_t budget_window_ms = 60000;
  int64_t budget_ms = 30000;
  // Events queued for one subscription (new and awaiting retry); more are
  // dead-lettered as DeliveryQueueFull.
  size_t max_queued_per_subscription = 10000;
  std::string dead_letter_path;  // JSON lines, created 0600
  // Which addresses deliveries and validations may reach.
  TargetPolicy targets;
  // Empty: the system resolver.
  HostResolver resolver;
  // This server's host name, the CloudEvents WebHook-Request-Origin.
  std::string origin = "localhost";
  // Milliseconds since the epoch, for retries, time to live and budgets;
  // empty: the system clock. Tests move it.
  std::function<int64_t()> now_ms;
  // Whether deliveries live in the store (Store::QueueDeliveries): written
  // before they are attempted, updated after each failed attempt, removed
  // when delivered or dead-lettered, and attempted only between Lead() and
  // Follow(). Without it they live in memory only and are attempted from
  // Start() on.
  bool persist = false;
};

// One request to a webhook endpoint.
struct WebhookRequest {
  std::string method = "POST";
  std::string url;
  // The numeric address the URL's host was resolved to and checked against
  // the target policy. SECURITY: the sender connects to this address and
  // never resolves the host itself (DNS rebinding); the Host header, SNI and
  // certificate check still use the URL's host.
  std::string connect_address;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  int timeout_seconds = 30;
};

// Writes the deliveries one page of the feed made, and the page's position,
// in one transaction (Store::QueueDeliveries); returns the position stored
// before, at or below which deliveries were queued already.
using PersistDeliveries =
    std::function<StatusOr<int64_t>(const std::vector<storage::PendingDelivery>& deliveries)>;

// Sends one request; returns the response (body bounded), or an error when
// none came.
using WebhookSender = std::function<StatusOr<http::Response>(const WebhookRequest& request)>;
// The HMAC key of a subscription (derived from the server's master key and
// the subscription's key generation, never stored).
using SigningKeyFor = std::function<std::string(const std::string& vault, const std::string& name,
                                                int64_t generation)>;

// WebhookDispatcher delivers each change to the webhooks of the validated
// subscriptions it matches: signed, retried with back-off, and written to
// the dead-letter file when it cannot be delivered. Delivery runs on its own
// threads and never blocks a request. Each subscription has its own queue,
// in-flight limit and time budget (WebhookOptions), and the threads serve
// the subscriptions in turn, so a slow endpoint delays only its own events.
// Every attempt resolves the endpoint's host, refuses it unless every
// address is allowed (webhook_target.h), and connects to the address it
// checked.
//
// With WebhookOptions::persist, the deliveries outlive the process: each is a
// row of the store (PendingDelivery) from the moment it is queued until it
// is delivered or dead-lettered, so the next process to lead continues its
// schedule (docs/ha.md). Only the leader attempts: Lead() loads the rows,
// Follow() stops attempting and leaves them to the next leader.
//
// Thread-safe.
class WebhookDispatcher {
 public:
  WebhookDispatcher(storage::Store& store, VaultNaming naming, WebhookSender sender,
                    SigningKeyFor key_for, UrlSeal seal, WebhookOptions options);
  ~WebhookDispatcher();

  Status Start();
  void Stop();
  // Re-reads the subscriptions: after one was created, changed, validated or
  // deleted, and after a vault was purged (its subscriptions went with it).
  // Pending deliveries follow: a deleted (or not validated) subscription
  // gets no more attempts.
  Status Reload();
  // Queues the changes for the subscriptions they match; returns how many
  // deliveries that made (queued or dead-lettered at once).
  size_t OnChanges(const std::vector<storage::ChangeRecord>& changes);
  // The same with the deliveries written first: `persist` gets them (when
  // the changes matched any subscription); only once it succeeded are the
  // deliveries above the position it returns queued, and the ones over a
  // queue bound dead-lettered. When it fails, nothing is queued and its
  // error is returned: the page may be handed on again.
  StatusOr<size_t> OnChanges(const std::vector<storage::ChangeRecord>& changes,
                             const PersistDeliveries& persist);
  // Lead makes this dispatcher the one that attempts (with persist): it
  // re-reads the subscriptions and queues the store's pending deliveries of
  // those it serves, in their schedule (their attempts, due times and first
  // times as stored; at most the queue bounds, the rest stay in the store).
  // The store's error, attempting nothing, when they cannot be read.
  Status Lead();
  // Follow stops attempting (another process leads): queued deliveries are
  // dropped from memory and stay in the store. Attempts in flight finish
  // and record their outcome.
  void Follow();

  // CheckTarget refuses (kInvalidArgument, saying why and which operator
  // flag would allow it) an endpoint URL whose host is, or resolves to, an
  // address the target policy does not allow, or does not resolve.
  Status CheckTarget(const std::string& url) const;
  // Validate runs the endpoint validation handshake for `subscription`
  // (webhook_validation.h) on the calling thread, bounded by the attempt
  // timeout; `validation_url` is offered for manual validation.
  HandshakeResult Validate(const Subscription& subscription, const std::string& validation_url);

  // Attempts by outcome, and dead letters by their deadLetterReason
  // (NonRetryableResponse, MaxDeliveryAttemptsExceeded, TimeToLiveExceeded,
  // DeliveryQueueFull).
  struct Stats {
    uint64_t delivered = 0;        // answered 200-204
    uint64_t failed_attempts = 0;  // rejected + unreachable + refused
    uint64_t rejected = 0;         // the endpoint answered with another status
    uint64_t unreachable = 0;      // no answer: no connection, a timeout, a broken response
    uint64_t refused = 0;          // the target policy refused the address, or no address
    uint64_t dead_lettered = 0;
    std::map<std::string, uint64_t> dead_letter_reasons;
  };
  Stats stats();

  // SignatureHeader computes the Coffer-Signature header's value for a body
  // sent at `unix_seconds`: "t=<seconds>,v1=<hex HMAC-SHA256(key, t + '.' + body)>".
  static std::string SignatureHeader(const std::string& key, int64_t unix_seconds,
                                     const std::string& body);

 private:
  struct Delivery {
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
  // One subscription's deliveries and budget.
  struct Lane {
    uint64_t id = 0;  // a lane re-created under the same key is another lane
    std::shared_ptr<const Subscription> subscription;
    std::deque<Delivery> ready;                                         // due, oldest first
    std::priority_queue<Delivery, std::vector<Delivery>, Later> later;  // retries, by due time
    int in_flight = 0;
    bool failing = false;  // the last attempt failed
    int64_t window_start_ms = 0;
    int64_t spent_ms = 0;  // attempt time within the window
    uint64_t served = 0;   // when it was last given a thread: the least recent goes first
    size_t queued() const { return ready.size() + later.size(); }
  };
  struct Picked {
    std::string key;
    uint64_t lane_id = 0;
    uint64_t term = 0;
    std::shared_ptr<const Subscription> subscription;
    Delivery delivery;
    bool counted_failing = false;
  };
  struct DeadLetterNote {
    std::shared_ptr<const Subscription> subscription;
    Delivery delivery;
    std::string reason;
  };

  void Worker();
  // Picks the next delivery under mu_, or sets `*wake_ms` to when one may be due.
  std::optional<Picked> PickLocked(int64_t now, int64_t* wake_ms);
  void Attempt(Picked p);
  // Counts a failed attempt of `d` and decides what follows: true when it
  // ends (`dead` set when dead-lettered, or its lane is gone), false when it
  // is retried (queued again on `lane` in this term). mu_ held.
  bool FailedLocked(const Picked& p, Lane* lane, const StatusOr<http::Response>& response,
                    bool refused, Delivery& d, std::optional<DeadLetterNote>& dead);
  // The store row of a delivery to `s`.
  static storage::PendingDelivery Row(const Subscription& s, const Delivery& d);
  // Records what an attempt ended in (persist only): `row` updated, or
  // removed when `done`. Not under mu_.
  void Record(const storage::PendingDelivery& row, bool done);
  // Whether `lane`, or all lanes together, hold as many as the bounds allow.
  // mu_ held.
  bool FullLocked(const Lane& lane) const;
  // Drops every queued delivery from memory. mu_ held.
  void ClearQueuesLocked();
  // Every pending delivery in the store, in its order.
  StatusOr<std::vector<storage::PendingDelivery>> StoredDeliveries();
  // Queues stored rows in their lanes' schedules, within the bounds, and
  // raises known_through_. Returns how many. mu_ held.
  size_t LoadLocked(std::vector<storage::PendingDelivery>& rows);
  // Queues the stored rows of `wanted` (lane, change seq): deliveries
  // another leader queued after this one loaded the store.
  Status Adopt(const std::set<std::pair<std::string, int64_t>>& wanted);
  void DeadLetter(const DeadLetterNote& note);
  int64_t BackoffMs(int attempts) const;
  int LimitFor(const Lane& lane) const;
  int64_t Now() const;

  storage::Store& store_;
  const VaultNaming naming_;
  const WebhookSender sender_;
  const SigningKeyFor key_for_;
  const UrlSeal seal_;
  const WebhookOptions options_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Lane> lanes_;  // guarded by mu_; by "<vault>/<name>", lower-case
  uint64_t next_lane_id_ = 1;          // guarded by mu_
  uint64_t turn_ = 0;                  // guarded by mu_
  size_t queued_ = 0;                  // guarded by mu_; over all lanes
  int failing_in_flight_ = 0;          // guarded by mu_
  bool stopping_ = false;              // guarded by mu_
  bool leading_ = false;               // guarded by mu_; always true without persist
  uint64_t term_ = 0;                  // guarded by mu_; one per Lead()
  // The highest change seq of a delivery this leader loaded from the store
  // or queued itself; one above it that the store says is queued already
  // was queued by another leader since. Guarded by mu_.
  int64_t known_through_ = 0;
  Stats stats_;  // guarded by mu_
  std::mutex dead_letter_mu_;
  std::vector<std::thread> threads_;
};

}  // namespace coffer::events
