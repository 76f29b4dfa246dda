#include "server/metrics.h"

#include <array>
#include <cstdio>

namespace coffer::server {
namespace {

constexpr auto& kBounds = LatencyHistogram::kBounds;

// Label values are the server's own names (operations, vault names that
// exist, status codes); quoting still escapes what the format requires.
std::string Label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
    }
    out += c == '\n' ? ' ' : c;
  }
  return out;
}

std::string Number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

// The lines of one histogram's series `name` with `labels` ("" or
// `a="x",b="y"`).
void AppendHistogram(std::string& out, const std::string& name, const std::string& labels,
                     const LatencyHistogram::Snapshot& h) {
  const std::string sep = labels.empty() ? "" : ",";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kBounds.size(); ++i) {
    cumulative += h.counts[i];
    out += name + "_bucket{" + labels + sep + "le=\"" + Number(kBounds[i]) + "\"} " +
           std::to_string(cumulative) + "\n";
  }
  out += name + "_bucket{" + labels + sep + "le=\"+Inf\"} " + std::to_string(h.count) + "\n";
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += name + "_sum" + braces + " " + Number(h.sum) + "\n";
  out += name + "_count" + braces + " " + std::to_string(h.count) + "\n";
}

void AppendHeader(std::string& out, const char* name, const char* type, const char* help) {
  out += std::string("# HELP ") + name + " " + help + "\n";
  out += std::string("# TYPE ") + name + " " + type + "\n";
}

}  // namespace

void ServerMetrics::Request(std::string_view activity, std::string_view vault, int status,
                            double seconds, Denial denial) {
  const int64_t minute = clock_.NowSeconds() / 60;
  Key key{activity.empty() ? "Other" : std::string(activity), std::string(vault)};
  std::lock_guard<std::mutex> lock(mu_);
  ++hits_[key];
  ++results_[{key.first, key.second, status}];
  latency_[key].Add(seconds);
  if (denial != Denial::kNone) {
    ++denials_[denial];
  }
  if (minute != minute_) {
    // The minute that just ended is what Availability shows; a minute
    // without requests in between shows as none.
    bool next = minute == minute_ + 1;
    last_total_ = next ? minute_total_ : 0;
    last_ok_ = next ? minute_ok_ : 0;
    minute_ = minute;
    minute_total_ = minute_ok_ = 0;
  }
  ++minute_total_;
  if (status < 500) {
    ++minute_ok_;
  }
}

std::string ServerMetrics::Render(const Figures& f) const {
  std::string out;
  std::lock_guard<std::mutex> lock(mu_);
  out += "# HELP coffer_service_api_hit_total Requests answered (Key Vault's ServiceApiHit).\n";
  out += "# TYPE coffer_service_api_hit_total counter\n";
  for (const auto& [k, n] : hits_) {
    out += "coffer_service_api_hit_total{activity_name=\"" + Label(k.first) + "\",vault=\"" +
           Label(k.second) + "\"} " + std::to_string(n) + "\n";
  }
  out +=
      "# HELP coffer_service_api_result_total Requests by status (Key Vault's "
      "ServiceApiResult).\n";
  out += "# TYPE coffer_service_api_result_total counter\n";
  for (const auto& [k, n] : results_) {
    const auto& [activity, vault, status] = k;
    out += "coffer_service_api_result_total{activity_name=\"" + Label(activity) + "\",vault=\"" +
           Label(vault) + "\",status_code=\"" + std::to_string(status) + "\",status_code_class=\"" +
           std::to_string(status / 100) + "xx\"} " + std::to_string(n) + "\n";
  }
  out +=
      "# HELP coffer_service_api_latency_seconds Time to answer (Key Vault's "
      "ServiceApiLatency).\n";
  out += "# TYPE coffer_service_api_latency_seconds histogram\n";
  for (const auto& [k, h] : latency_) {
    AppendHistogram(out, "coffer_service_api_latency_seconds",
                    "activity_name=\"" + Label(k.first) + "\",vault=\"" + Label(k.second) + "\"",
                    h);
  }
  // Every reason, counted or not: a series that appears only after its
  // first denial hides the first denial from rate().
  AppendHeader(out, "coffer_authorization_denials_total", "counter",
               "Requests refused with 401 or 403, by reason.");
  for (Denial d : kDenials) {
    auto it = denials_.find(d);
    out += "coffer_authorization_denials_total{reason=\"" + std::string(DenialName(d)) + "\"} " +
           std::to_string(it == denials_.end() ? 0 : it->second) + "\n";
  }
  // The last whole minute: 1 when it had no requests (nothing failed).
  const int64_t now_minute = clock_.NowSeconds() / 60;
  uint64_t total =
      now_minute == minute_ + 1 ? minute_total_ : (now_minute == minute_ ? last_total_ : 0);
  uint64_t ok = now_minute == minute_ + 1 ? minute_ok_ : (now_minute == minute_ ? last_ok_ : 0);
  out +=
      "# HELP coffer_availability_ratio Requests of the last whole minute not failed by the "
      "service (Key Vault's Availability).\n";
  out += "# TYPE coffer_availability_ratio gauge\n";
  out += "coffer_availability_ratio " +
         Number(total == 0 ? 1.0 : static_cast<double>(ok) / static_cast<double>(total)) + "\n";
  out += "# HELP coffer_tokens_issued_total Access tokens issued.\n";
  out += "# TYPE coffer_tokens_issued_total counter\n";
  out += "coffer_tokens_issued_total " + std::to_string(f.tokens_issued) + "\n";
  out += "# HELP coffer_watch_streams Open watch streams.\n";
  out += "# TYPE coffer_watch_streams gauge\n";
  out += "coffer_watch_streams " + std::to_string(f.watch_streams) + "\n";
  out +=
      "# HELP coffer_leader 1 while this server does the installation's once-only work "
      "(docs/ha.md).\n";
  out += "# TYPE coffer_leader gauge\n";
  out += std::string("coffer_leader ") + (f.leader ? "1" : "0") + "\n";
  if (f.audit) {
    out += "# HELP coffer_audit_queued_records Audit records not yet written.\n";
    out += "# TYPE coffer_audit_queued_records gauge\n";
    out += "coffer_audit_queued_records " + std::to_string(f.audit_queued) + "\n";
    out += "# HELP coffer_audit_write_failing 1 while the audit log's last write failed.\n";
    out += "# TYPE coffer_audit_write_failing gauge\n";
    out += std::string("coffer_audit_write_failing ") + (f.audit_write_failing ? "1" : "0") + "\n";
    AppendHeader(out, "coffer_audit_write_latency_seconds", "histogram",
                 "Time to write a batch of audit records, with its fdatasync when one was due.");
    AppendHistogram(out, "coffer_audit_write_latency_seconds", "", f.audit_write_latency);
  }
  AppendHeader(out, "coffer_storage_commit_latency_seconds", "histogram",
               "Time of a storage write transaction, from BEGIN to the durable COMMIT.");
  AppendHistogram(out, "coffer_storage_commit_latency_seconds", "", f.storage_commit_latency);
  AppendHeader(out, "coffer_webhook_deliveries_total", "counter",
               "Webhook delivery attempts, by outcome.");
  const auto& w = f.webhooks;
  for (const auto& [outcome, n] :
       {std::pair{"delivered", w.delivered}, std::pair{"rejected", w.rejected},
        std::pair{"unreachable", w.unreachable}, std::pair{"refused", w.refused}}) {
    out += std::string("coffer_webhook_deliveries_total{outcome=\"") + outcome + "\"} " +
           std::to_string(n) + "\n";
  }
  AppendHeader(out, "coffer_webhook_dead_letters_total", "counter",
               "Events given up and written to the dead-letter file, by deadLetterReason.");
  for (const char* reason : {"NonRetryableResponse", "MaxDeliveryAttemptsExceeded",
                             "TimeToLiveExceeded", "DeliveryQueueFull"}) {
    auto it = w.dead_letter_reasons.find(reason);
    out += std::string("coffer_webhook_dead_letters_total{reason=\"") + reason + "\"} " +
           std::to_string(it == w.dead_letter_reasons.end() ? 0 : it->second) + "\n";
  }
  return out;
}

}  // namespace coffer::server
