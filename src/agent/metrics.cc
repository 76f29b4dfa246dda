#include "agent/metrics.h"

#include <cmath>
#include <cstdio>

#include "common/strings.h"
#include "net/http_server.h"

namespace coffer::agent {
namespace {

// Label values are object names and error codes: escape as the exposition
// format asks.
std::string Escape(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

constexpr char kCommon[] = "provider=\"coffer\",os_type=\"linux\"";

}  // namespace

AgentMetrics::AgentMetrics() {
  // The driver's ExponentialBucketsRange(0.1, 2, 11).
  double factor = std::pow(2.0 / 0.1, 1.0 / 10);
  for (int i = 0; i < 11; ++i) {
    reconcile_duration_.bounds.push_back(0.1 * std::pow(factor, i));
  }
  reconcile_duration_.counts.assign(11, 0);
  // The Azure provider's keyvault_request buckets.
  keyvault_bounds_ = {0.1, 0.2, 0.3, 0.4, 0.5, 1, 1.5, 2, 2.5, 3, 5, 10, 15, 30};
}

void AgentMetrics::Observe(Histogram& h, double value) {
  for (size_t i = 0; i < h.bounds.size(); ++i) {
    if (value <= h.bounds[i]) {
      ++h.counts[i];
      break;
    }
  }
  ++h.count;
  h.sum += value;
}

void AgentMetrics::NodePublish(const std::string& error_type) {
  std::lock_guard<std::mutex> lock(mu_);
  if (error_type.empty()) {
    ++publish_;
  } else {
    ++publish_errors_[error_type];
  }
}

void AgentMetrics::RotationReconcile(bool rotated, const std::string& error_type, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  if (error_type.empty()) {
    ++reconcile_[rotated ? 1 : 0];
  } else {
    ++reconcile_errors_[error_type];
  }
  Observe(reconcile_duration_, seconds);
}

void AgentMetrics::KeyvaultRequest(const std::string& object_type, const std::string& object_name,
                                   const std::string& error, double seconds) {
  std::string labels = "object_type=\"" + Escape(object_type) + "\",object_name=\"" +
                       Escape(object_name) + "\",error=\"" + Escape(error) + "\"";
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, added] = keyvault_.try_emplace(labels);
  if (added) {
    it->second.bounds = keyvault_bounds_;
    it->second.counts.assign(keyvault_bounds_.size(), 0);
  }
  Observe(it->second, seconds);
}

void AgentMetrics::RenderHistogram(std::string& out, const std::string& name,
                                   const std::string& labels, const Histogram& h) {
  uint64_t cumulative = 0;
  std::string sep = labels.empty() ? "" : ",";
  for (size_t i = 0; i < h.bounds.size(); ++i) {
    cumulative += h.counts[i];
    out += name + "_bucket{" + labels + sep + "le=\"" + Number(h.bounds[i]) + "\"} " +
           std::to_string(cumulative) + "\n";
  }
  out += name + "_bucket{" + labels + sep + "le=\"+Inf\"} " + std::to_string(h.count) + "\n";
  out += name + "_sum{" + labels + "} " + Number(h.sum) + "\n";
  out += name + "_count{" + labels + "} " + std::to_string(h.count) + "\n";
}

std::string AgentMetrics::Render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  out += "# HELP node_publish_total The number of successful mounts.\n";
  out += "# TYPE node_publish_total counter\n";
  out += "node_publish_total{" + std::string(kCommon) + "} " + std::to_string(publish_) + "\n";
  out += "# HELP node_publish_error_total The number of failed mounts.\n";
  out += "# TYPE node_publish_error_total counter\n";
  for (const auto& [type, n] : publish_errors_) {
    out += "node_publish_error_total{" + std::string(kCommon) + ",error_type=\"" + Escape(type) +
           "\"} " + std::to_string(n) + "\n";
  }
  out += "# HELP rotation_reconcile_total The number of successful refreshes of mounts.\n";
  out += "# TYPE rotation_reconcile_total counter\n";
  for (int rotated = 0; rotated < 2; ++rotated) {
    out += "rotation_reconcile_total{" + std::string(kCommon) + ",rotated=\"" +
           (rotated ? "true" : "false") + "\"} " + std::to_string(reconcile_[rotated]) + "\n";
  }
  out += "# HELP rotation_reconcile_error_total The number of failed refreshes of mounts.\n";
  out += "# TYPE rotation_reconcile_error_total counter\n";
  for (const auto& [type, n] : reconcile_errors_) {
    out += "rotation_reconcile_error_total{" + std::string(kCommon) + ",error_type=\"" +
           Escape(type) + "\",rotated=\"false\"} " + std::to_string(n) + "\n";
  }
  out += "# HELP rotation_reconcile_duration_sec How long refreshes of mounts took.\n";
  out += "# TYPE rotation_reconcile_duration_sec histogram\n";
  RenderHistogram(out, "rotation_reconcile_duration_sec", "os_type=\"linux\"", reconcile_duration_);
  out += "# HELP keyvault_request How long reads from the vault took.\n";
  out += "# TYPE keyvault_request histogram\n";
  for (const auto& [labels, h] : keyvault_) {
    RenderHistogram(out, "keyvault_request", labels + "," + kCommon, h);
  }
  return out;
}

StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(AgentMetrics& metrics,
                                                              uint16_t port) {
  net::ServerOptions so;
  so.addresses = {"127.0.0.1"};
  so.port = port;
  so.tls = false;
  so.io_threads = 1;
  so.worker_threads = 1;
  so.max_body_bytes = 0;
  ASSIGN_OR_RETURN(
      std::unique_ptr<net::HttpServer> server,
      net::HttpServer::Create(
          so,
          [&metrics](http::Request& req) {
            http::Response res;
            if (req.method != "GET" || (req.segments != std::vector<std::string>{"metrics"})) {
              res.status = 404;
              res.body = "not found: GET /metrics\n";
              return res;
            }
            res.headers.push_back({"Content-Type", "text/plain; version=0.0.4"});
            res.body = metrics.Render();
            return res;
          },
          nullptr));
  server->Start();
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(server)));
}

MetricsServer::MetricsServer(std::unique_ptr<net::HttpServer> http) : http_(std::move(http)) {}

MetricsServer::~MetricsServer() {
  http_->Stop();
}

uint16_t MetricsServer::port() const {
  return http_->port();
}

std::string ErrorType(const Status& status) {
  if (!status.reason().empty()) {
    return std::string(status.reason());
  }
  return std::string(StatusCodeName(status.code()));
}

}  // namespace coffer::agent
