#include "server/metrics.h"

#include <array>
#include <cstdio>

namespace coffer::server {
namespace {

// Latency buckets, in seconds.
constexpr std::array<double, 12> kBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                            0.05,   0.1,   0.25,   0.5,   1.0,  5.0};

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

}  // namespace

void ServerMetrics::Request(std::string_view activity, std::string_view vault, int status,
                            double seconds) {
  const int64_t minute = clock_.NowSeconds() / 60;
  Key key{activity.empty() ? "Other" : std::string(activity), std::string(vault)};
  std::lock_guard<std::mutex> lock(mu_);
  ++hits_[key];
  ++results_[{key.first, key.second, status}];
  Histogram& h = latency_[key];
  if (h.counts.empty()) {
    h.counts.assign(kBounds.size() + 1, 0);
  }
  size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) {
    ++i;
  }
  ++h.counts[i];
  ++h.count;
  h.sum += seconds;
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
    const std::string labels =
        "activity_name=\"" + Label(k.first) + "\",vault=\"" + Label(k.second) + "\"";
    uint64_t cumulative = 0;
    for (size_t i = 0; i < kBounds.size(); ++i) {
      cumulative += h.counts[i];
      out += "coffer_service_api_latency_seconds_bucket{" + labels + ",le=\"" + Number(kBounds[i]) +
             "\"} " + std::to_string(cumulative) + "\n";
    }
    out += "coffer_service_api_latency_seconds_bucket{" + labels + ",le=\"+Inf\"} " +
           std::to_string(h.count) + "\n";
    out += "coffer_service_api_latency_seconds_sum{" + labels + "} " + Number(h.sum) + "\n";
    out += "coffer_service_api_latency_seconds_count{" + labels + "} " + std::to_string(h.count) +
           "\n";
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
  if (f.audit) {
    out += "# HELP coffer_audit_queued_records Audit records not yet written.\n";
    out += "# TYPE coffer_audit_queued_records gauge\n";
    out += "coffer_audit_queued_records " + std::to_string(f.audit_queued) + "\n";
    out += "# HELP coffer_audit_write_failing 1 while the audit log's last write failed.\n";
    out += "# TYPE coffer_audit_write_failing gauge\n";
    out += std::string("coffer_audit_write_failing ") + (f.audit_write_failing ? "1" : "0") + "\n";
  }
  return out;
}

}  // namespace coffer::server
