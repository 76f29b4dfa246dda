#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "common/clock.h"
#include "common/histogram.h"
#include "events/webhooks.h"
#include "server/denial.h"

namespace coffer::server {

// ServerMetrics counts what the server answers, named after Key Vault's
// Azure Monitor metrics (ServiceApiHit, ServiceApiLatency, ServiceApiResult,
// Availability), and renders them with the other components' figures in
// Prometheus' text format (docs/deployment.md lists every series).
// Thread-safe.
class ServerMetrics {
 public:
  explicit ServerMetrics(const Clock& clock) : clock_(clock) {}

  // One answered request: its activity (the operation its route names, e.g.
  // "SecretGet"; "" when it names none), the vault ("" on the authority
  // host, and for a vault that does not exist: a Host is the caller's to
  // choose, and labels must stay few), its HTTP status, how long it took,
  // and why it was refused, if it was.
  void Request(std::string_view activity, std::string_view vault, int status, double seconds,
               Denial denial = Denial::kNone);

  // What other components report at the time of a scrape.
  struct Figures {
    uint64_t tokens_issued = 0;
    uint64_t watch_streams = 0;
    bool leader = false;  // Store::Leads(): this server does the once-per-installation work
    bool audit = false;   // whether the audit log is on
    uint64_t audit_queued = 0;
    bool audit_write_failing = false;
    LatencyHistogram::Snapshot audit_write_latency;
    LatencyHistogram::Snapshot storage_commit_latency;
    events::WebhookDispatcher::Stats webhooks;
  };
  std::string Render(const Figures& figures) const;

 private:
  using Histogram = LatencyHistogram::Snapshot;
  using Key = std::pair<std::string, std::string>;  // activity, vault

  const Clock& clock_;
  mutable std::mutex mu_;
  std::map<Key, uint64_t> hits_;                                           // GUARDED_BY(mu_)
  std::map<std::tuple<std::string, std::string, int>, uint64_t> results_;  // GUARDED_BY(mu_)
  std::map<Key, Histogram> latency_;                                       // GUARDED_BY(mu_)
  std::map<Denial, uint64_t> denials_;                                     // GUARDED_BY(mu_)
  // Availability over the last whole minute, as Azure Monitor reports it:
  // requests not failed by the service (below 500) over all requests.
  int64_t minute_ = 0;                         // GUARDED_BY(mu_)
  uint64_t minute_total_ = 0, minute_ok_ = 0;  // GUARDED_BY(mu_)
  uint64_t last_total_ = 0, last_ok_ = 0;      // GUARDED_BY(mu_)
};

}  // namespace coffer::server
