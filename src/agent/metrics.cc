#include "agent/metrics.h"

#include <cmath>
#include <cstdio>
#include <ctime>
#include <functional>

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

void AgentMetrics::ObserveMount(const std::string& mount, const std::vector<ObjectGauge>& objects,
                                int64_t now, int64_t ttl_seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  ObservedMount& m = mounts_[mount];
  std::map<std::string, ObservedObject> next;
  for (const ObjectGauge& g : objects) {
    ObservedObject o{g, now};
    auto before = m.objects.find(g.file);
    if (before != m.objects.end() && before->second.gauge.version == g.version) {
      o.last_change = before->second.last_change;
    }
    next[g.file] = std::move(o);
  }
  m.objects = std::move(next);
  m.observed = now;
  m.ttl = ttl_seconds;
  for (auto it = mounts_.begin(); it != mounts_.end();) {
    if (it->second.ttl > 0 && now - it->second.observed > it->second.ttl) {
      it = mounts_.erase(it);
    } else {
      ++it;
    }
  }
}

std::string AgentMetrics::Render() const {
  return Render(static_cast<int64_t>(std::time(nullptr)));
}

std::string AgentMetrics::Render(int64_t now) const {
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
  RenderObjects(out, now);
  return out;
}

void AgentMetrics::RenderObjects(std::string& out, int64_t now) const {
  struct Family {
    const char* name;
    const char* help;
    std::function<std::optional<std::string>(const ObservedObject&, std::string& extra)> value;
  };
  const std::vector<Family> families = {
      {"keyvault_object_expiry_seconds",
       "Seconds until the mounted version of the object expires (negative: expired).",
       [now](const ObservedObject& o, std::string&) -> std::optional<std::string> {
         if (!o.gauge.expires_on.has_value()) {
           return std::nullopt;
         }
         return std::to_string(*o.gauge.expires_on - now);
       }},
      {"keyvault_object_version_info", "The version of the object in the mount.",
       [](const ObservedObject& o, std::string& extra) -> std::optional<std::string> {
         if (o.gauge.version.empty()) {
           return std::nullopt;
         }
         extra = ",version=\"" + Escape(o.gauge.version) + "\"";
         return "1";
       }},
      {"keyvault_object_last_change_timestamp_seconds",
       "When the agent last saw the object's version change (Unix seconds).",
       [](const ObservedObject& o, std::string&) -> std::optional<std::string> {
         return std::to_string(o.last_change);
       }},
      {"keyvault_object_disabled", "1 when the object's version was found disabled.",
       [](const ObservedObject& o, std::string&) -> std::optional<std::string> {
         return o.gauge.disabled ? "1" : "0";
       }},
      {"keyvault_object_optional_unavailable",
       "1 when an optional object is left out of its mount (missing, disabled or forbidden).",
       [](const ObservedObject& o, std::string& extra) -> std::optional<std::string> {
         if (!o.gauge.optional) {
           return std::nullopt;
         }
         extra = ",reason=\"" + Escape(o.gauge.unavailable) + "\"";
         return o.gauge.unavailable.empty() ? "0" : "1";
       }},
  };
  for (const Family& f : families) {
    out += std::string("# HELP ") + f.name + " " + f.help + "\n";
    out += std::string("# TYPE ") + f.name + " gauge\n";
    for (const auto& [mount, m] : mounts_) {
      for (const auto& [file, o] : m.objects) {
        std::string extra;
        std::optional<std::string> value = f.value(o, extra);
        if (!value.has_value()) {
          continue;
        }
        out += std::string(f.name) + "{mount=\"" + Escape(mount) + "\",object_type=\"" +
               Escape(o.gauge.object_type) + "\",object_name=\"" + Escape(o.gauge.object_name) +
               "\",file=\"" + Escape(file) + "\"" + extra + "," + kCommon + "} " + *value + "\n";
      }
    }
  }
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
