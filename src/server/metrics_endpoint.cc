// The server's metrics and readiness (docs/deployment.md, Observability).

#include "common/json.h"
#include "common/log.h"
#include "common/strings.h"
#include "server/server.h"

namespace coffer::server {

void CofferServer::Observe(const http::Request& request, const http::Response& response,
                           const AuditNote& note, int64_t start_us) {
  std::string vault = VaultFromHost(request.host);
  // SECURITY: only a vault that exists becomes a label; any other Host
  // would let a caller add series without end.
  if (!vault.empty() && registry_->TryGetCached(vault) == nullptr) {
    vault.clear();
  }
  metrics_->Request(note.operation, vault, response.status,
                    static_cast<double>(NowMicros() - start_us) / 1e6, note.denial);
}

http::Response CofferServer::Readiness() {
  // Ready when storage answers and the audit log writes: a write would
  // otherwise be refused (docs/audit.md).
  Status storage = store_->GetMeta("tenant_id").status();
  Status audit = audit_ ? audit_->health().last_write : OkStatus();
  // A server applying its seed is not ready: clients would see half of it.
  const bool seeding = seeding_.load();
  const bool ready = storage.ok() && audit.ok() && !seeding;
  Json body = {{"status", ready ? "ready" : "not ready"},
               {"storage", storage.ok() ? "ok" : "unavailable"},
               {"audit", !audit_ ? "off" : (audit.ok() ? "ok" : "failing")}};
  if (seeding) {
    body["seed"] = "applying";
  }
  return http::JsonResponse(ready ? 200 : 503, body.dump());
}

uint16_t CofferServer::metrics_port() const {
  return metrics_http_ ? metrics_http_->port() : 0;
}

Status CofferServer::StartMetricsListener() {
  if (config_.metrics_listen.empty()) {
    return OkStatus();
  }
  // ADDR:PORT: an IP address ([...] for IPv6) and a port, 0 for any free one.
  const std::string& value = config_.metrics_listen;
  size_t colon = value.rfind(':');
  std::string address = colon == std::string::npos ? "" : value.substr(0, colon);
  std::string port_text = colon == std::string::npos ? "" : value.substr(colon + 1);
  if (address.size() > 2 && address.front() == '[' && address.back() == ']') {
    address = address.substr(1, address.size() - 2);
  }
  uint64_t port = 0;
  bool port_ok = !port_text.empty() && port_text.size() <= 5 &&
                 port_text.find_first_not_of("0123456789") == std::string::npos &&
                 (port = std::stoull(port_text)) <= 65535;
  if (address.empty() || !port_ok) {
    return InvalidArgumentError("--metrics-listen must be ADDR:PORT (e.g. 127.0.0.1:9464), not '" +
                                value.substr(0, 100) + "'");
  }
  if (port != 0 && port == port_) {
    return InvalidArgumentError("--metrics-listen must not be the public port");
  }
  net::ServerOptions so;
  so.addresses = {address};
  so.port = static_cast<uint16_t>(port);
  so.tls = false;
  // SECURITY: its answers are counts and names, no credential; it takes
  // none (every path but three is 404).
  so.plain_any_address = true;
  so.io_threads = 1;
  so.worker_threads = 1;
  so.max_body_bytes = 0;
  ASSIGN_OR_RETURN(metrics_http_,
                   net::HttpServer::Create(
                       so,
                       [this](http::Request& r) {
                         if (r.method == "GET" && r.target == "/metrics") {
                           ServerMetrics::Figures f;
                           f.tokens_issued = token_service_->issued();
                           f.watch_streams = watches_->size();
                           f.leader = store_->Leads();
                           if (audit_) {
                             auto health = audit_->health();
                             f.audit = true;
                             f.audit_queued = health.queued;
                             f.audit_write_failing = !health.last_write.ok();
                             f.audit_write_latency = audit_->write_latency().Read();
                           }
                           if (commit_latency_ != nullptr) {
                             f.storage_commit_latency = commit_latency_->Read();
                           }
                           if (webhooks_) {
                             f.webhooks = webhooks_->stats();
                           }
                           http::Response res;
                           res.status = 200;
                           res.SetHeader("Content-Type", "text/plain; version=0.0.4");
                           res.body = metrics_->Render(f);
                           return res;
                         }
                         if (r.method == "GET" && r.target == "/healthz") {
                           return http::JsonResponse(200, R"({"status":"ok"})");
                         }
                         if (r.method == "GET" && r.target == "/readyz") {
                           return Readiness();
                         }
                         return http::ErrorResponse(
                             404, "NotFound",
                             "This listener serves GET /metrics, /healthz and /readyz.");
                       },
                       nullptr));
  COFFER_LOG(kInfo) << "metrics on port " << metrics_http_->port() << " of " << address;
  return OkStatus();
}

}  // namespace coffer::server
