#pragma once

// The node agent's Prometheus metrics, named as the Secrets Store CSI driver
// and the Azure provider name theirs (csi-driver.md §4.9), so that existing
// dashboards and alerts keep working. Rendered in the text exposition format
// (version 0.0.4). Thread-safe.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace coffer::net {
class HttpServer;
}

namespace coffer::agent {

class AgentMetrics {
 public:
  AgentMetrics();

  // A first mount (standalone mount or CSI Mount call) succeeded or failed.
  void NodePublish(const std::string& error_type);  // "" for success
  // A refresh of a mounted volume; `rotated` when its files changed.
  void RotationReconcile(bool rotated, const std::string& error_type, double seconds);
  // One upstream call (a read or a version list) and how long it took.
  void KeyvaultRequest(const std::string& object_type, const std::string& object_name,
                       const std::string& error, double seconds);

  // What one mount's objects are, for the per-object gauges (Coffer's,
  // named in the Azure provider's style). One per file of the mount.
  struct ObjectGauge {
    std::string file;  // the path in the mount: the key
    std::string object_type;
    std::string object_name;
    std::string version;                // "" when not read
    std::optional<int64_t> expires_on;  // Unix seconds
    bool disabled = false;              // the read found the version disabled
    bool optional = false;
    std::string unavailable;  // an optional object left out: why (an error type); "" when read
  };
  // ObserveMount replaces what the gauges say of `mount` (a standalone
  // mount's name, a CSI mount's "<namespace>/<pod>"). An object's last
  // change is `now` when its version differs from the one observed before.
  // A mount not observed again within `ttl_seconds` (0: never) is dropped,
  // so that pods that are gone stop being exported.
  void ObserveMount(const std::string& mount, const std::vector<ObjectGauge>& objects, int64_t now,
                    int64_t ttl_seconds);

  // Render at `now` (Unix seconds; the expiry gauges count from it).
  std::string Render() const;
  std::string Render(int64_t now) const;

 private:
  struct Histogram {
    std::vector<double> bounds;
    std::vector<uint64_t> counts;  // one per bound, not cumulative
    uint64_t count = 0;
    double sum = 0;
  };
  static void Observe(Histogram& h, double value);
  void RenderObjects(std::string& out, int64_t now) const;  // with mu_ held
  static void RenderHistogram(std::string& out, const std::string& name, const std::string& labels,
                              const Histogram& h);

  mutable std::mutex mu_;
  uint64_t publish_ = 0;                              // GUARDED_BY(mu_)
  std::map<std::string, uint64_t> publish_errors_;    // GUARDED_BY(mu_): by error_type
  uint64_t reconcile_[2] = {0, 0};                    // GUARDED_BY(mu_): by rotated
  std::map<std::string, uint64_t> reconcile_errors_;  // GUARDED_BY(mu_): by error_type
  Histogram reconcile_duration_;                      // GUARDED_BY(mu_)
  std::map<std::string, Histogram> keyvault_;         // GUARDED_BY(mu_): by label set
  std::vector<double> keyvault_bounds_;
  struct ObservedObject {
    ObjectGauge gauge;
    int64_t last_change = 0;
  };
  struct ObservedMount {
    std::map<std::string, ObservedObject> objects;  // by file
    int64_t observed = 0;
    int64_t ttl = 0;
  };
  std::map<std::string, ObservedMount> mounts_;  // GUARDED_BY(mu_)
};

// MetricsServer serves GET /metrics (plain HTTP) on 127.0.0.1.
class MetricsServer {
 public:
  // Start listens on `port` (0 picks a free one) and serves at once.
  // kUnavailable if the port cannot be bound.
  static StatusOr<std::unique_ptr<MetricsServer>> Start(AgentMetrics& metrics, uint16_t port);
  ~MetricsServer();
  uint16_t port() const;

 private:
  explicit MetricsServer(std::unique_ptr<net::HttpServer> http);
  std::unique_ptr<net::HttpServer> http_;
};

// ErrorType names a failure for the error_type label: the Key Vault error
// code when there is one ("Forbidden", "SecretNotFound"), else the canonical
// code's name.
std::string ErrorType(const Status& status);

}  // namespace coffer::agent
