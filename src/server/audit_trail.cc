// The audit record of every request, the audit of change notifications and
// the audit query API (docs/audit.md).

#include <charconv>
#include <chrono>
#include <map>

#include "audit/query.h"
#include "audit/record.h"
#include "authz/authorizer.h"
#include "common/json.h"
#include "common/log.h"
#include "common/strings.h"
#include "server/server.h"

namespace coffer::server {

namespace {

constexpr size_t kMaxCorrelationId = 128;
constexpr size_t kMaxClientInfo = 512;
constexpr size_t kMaxRequestUri = 2048;
constexpr size_t kMaxDescription = 512;
constexpr size_t kMaxQueryTop = 1000;

std::string Bounded(std::string_view s, size_t max) {
  return std::string(s.substr(0, max));
}

// "TLSv1.3" (OpenSSL's name) as Key Vault logs it: "TLS1_3".
std::string_view TlsName(std::string_view v) {
  if (v == "TLSv1.3") {
    return "TLS1_3";
  }
  if (v == "TLSv1.2") {
    return "TLS1_2";
  }
  return v;
}

// The message of an error body ({"error":{"message"}}), bounded.
std::string ErrorDescription(const http::Response& r) {
  if (r.status < 400 || r.body.empty() || r.stream) {
    return "";
  }
  auto body = ParseJson(r.body);
  if (!body || !body->is_object() || !body->contains("error") || !(*body)["error"].is_object()) {
    return "";
  }
  return Bounded(StringMember((*body)["error"], "message"), kMaxDescription);
}

// The notifications Key Vault audits, by change type.
const char* NotificationOperation(const std::string& type) {
  static constexpr const char* kNotifications[][2] = {
      {"SecretNearExpiry", "SecretNearExpiryEventGridNotification"},
      {"SecretExpired", "SecretExpiredEventGridNotification"},
      {"KeyNearExpiry", "KeyNearExpiryEventGridNotification"},
      {"KeyExpired", "KeyExpiredEventGridNotification"},
      {"CertificateNearExpiry", "CertificateNearExpiryEventGridNotification"},
      {"CertificateExpired", "CertificateExpiredEventGridNotification"},
      {"VaultAccessPolicyChanged", "VaultAccessPolicyChangedEventGridNotification"}};
  for (const auto& [event, operation] : kNotifications) {
    if (type == event) {
      return operation;
    }
  }
  return nullptr;
}

// An ISO 8601 UTC time as microseconds: the log's own form (fractional
// seconds, "Z") or a plainer ISO 8601 form (audit::ParseTimeFilter).
StatusOr<int64_t> ParseTimeParam(std::string_view text) {
  if (text.empty()) {
    return 0;
  }
  if (auto us = audit::ParseTimeFilter(text)) {
    return *us;
  }
  return InvalidArgumentError("'" + std::string(text.substr(0, 64)) +
                                  "' is not an ISO 8601 UTC time such as 2026-11-28T10:00:00Z.",
                              "BadParameter");
}

}  // namespace

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string CofferServer::VaultResourceId(const std::string& vault) const {
  if (auto open = registry_->TryGetCached(vault)) {
    return open->resource_id;
  }
  return "/subscriptions/" + info_.subscription_id + "/providers/Microsoft.KeyVault/vaults/" +
         AsciiLower(vault);
}

void CofferServer::Audit(const http::Request& request, http::Response& response,
                         const AuditNote& note, int64_t start_us, bool durable) {
  if (!audit_ || note.operation.empty()) {
    return;
  }
  // Every field is borrowed from the request, the note or a per-thread
  // buffer: the read path formats its record without allocating.
  thread_local std::string id;
  thread_local std::string uri;
  thread_local std::string claims;
  std::string description = ErrorDescription(response);
  audit::EntryView e;
  e.time_us = NowMicros();
  e.resource_id = note.resource_id;
  e.operation_name = note.operation;
  e.operation_version = request.Query("api-version").substr(0, 64);
  e.http_status = response.status;
  e.result_description = description;
  e.duration_ms = (e.time_us - start_us) / 1000;
  e.caller_ip = request.remote_address;
  e.correlation_id = request.Header("x-ms-client-request-id").substr(0, kMaxCorrelationId);
  if (note.caller) {
    if (note.caller->audit_claims) {
      e.claims_json = *note.caller->audit_claims;
    } else {
      claims = AuditClaims(*note.caller);
      e.claims_json = claims;
    }
  }
  std::string_view target = request.target;
  target = target.substr(0, target.find('?'));
  if (note.object_uri.empty()) {
    id.assign("https://").append(request.host).append(target);
    e.id = id;
  } else {
    e.id = note.object_uri;
  }
  uri.assign("https://").append(request.host).append(request.target);
  e.request_uri = std::string_view(uri).substr(0, kMaxRequestUri);
  e.client_info = request.Header("user-agent").substr(0, kMaxClientInfo);
  e.tls_version = TlsName(request.tls_version);
  e.is_rbac_authorized = note.rbac_authorized;
  e.is_access_policy_match = note.access_policy_match;
  e.applied_assignment_id = note.applied_assignment;
  if (!durable) {
    audit_->Append(e);
    return;
  }
  Status written = audit_->AppendDurable(e);
  if (!written.ok()) {
    // SECURITY: never acknowledge what the audit log does not hold.
    COFFER_LOG(kError) << "the audit log could not be written: " << written.ToString();
    response = http::ErrorResponse(
        503, "AuditLogUnavailable",
        "The audit log could not be written, so the request is not acknowledged; it may have "
        "been applied. Retry it.");
  }
}

size_t CofferServer::AuditNotifications(const std::vector<storage::ChangeRecord>& changes) {
  if (!audit_) {
    return 0;
  }
  size_t audited = 0;
  for (const auto& c : changes) {
    const char* op = NotificationOperation(c.type);
    if (op == nullptr) {
      continue;
    }
    audit::Entry e;
    e.time_us = NowMicros();
    e.resource_id = VaultResourceId(c.vault);
    e.operation_name = op;
    e.operation_version = "";
    e.http_status = 200;
    std::string path;
    if (auto kind = storage::ParseObjectKind(c.object_type)) {
      path =
          "/" + std::string(storage::ObjectCollectionName(*kind)) + "/" + c.name + "/" + c.version;
    }
    e.id = "https://" + AsciiLower(c.vault) + "." + AsciiLower(config_.dns_suffix) +
           vault_port_suffix_ + path;
    e.extra.emplace_back("eventId", c.event_id);
    audit_->Append(std::move(e));
    ++audited;
  }
  return audited;
}

http::Response CofferServer::AuditQueryRequest(const Caller& caller, const http::Request& request) {
  if (!audit_) {
    return http::ErrorResponse(404, "AuditDisabled", "This server runs without an audit log.");
  }
  audit::Filter filter;
  filter.vault = Bounded(request.Query("vault"), 128);
  filter.operation = Bounded(request.Query("operation"), 128);
  filter.caller = Bounded(request.Query("caller"), 128);
  filter.result = Bounded(request.Query("result"), 16);
  auto from = ParseTimeParam(request.Query("from"));
  auto to = ParseTimeParam(request.Query("to"));
  if (!from.ok() || !to.ok()) {
    return http::ErrorResponse(!from.ok() ? from.status() : to.status());
  }
  filter.from_us = *from;
  filter.to_us = *to;
  std::string_view top = request.Query("top");
  if (!top.empty()) {
    int64_t n = 0;
    auto [end, ec] = std::from_chars(top.data(), top.data() + top.size(), n);
    if (ec != std::errc() || end != top.data() + top.size() || n < 1 ||
        n > static_cast<int64_t>(kMaxQueryTop)) {
      return http::ErrorResponse(400, "BadParameter", "top must be from 1 to 1000.");
    }
    filter.top = static_cast<size_t>(n);
  }
  // Reading a resource's logs is Microsoft.Insights/logs/read at its scope
  // (Owner, Contributor, Reader, Monitoring Reader ...), decided once per
  // resource.
  std::map<std::string, bool> allowed;
  authz::Principal who{caller.object_id, caller.app_id, caller.tenant_id};
  auto may_read = [&](const Json& record) {
    std::string rid = StringMember(record, "resourceId");
    auto it = allowed.find(rid);
    if (it == allowed.end()) {
      bool ok = !rid.empty() &&
                authorizer_->CheckAction(who, "Microsoft.Insights/logs/read", rid).allowed;
      it = allowed.emplace(rid, ok).first;
    }
    return it->second;
  };
  auto records = audit::Query(audit_dir_, filter, may_read);
  if (!records.ok()) {
    return http::ErrorResponse(records.status());
  }
  Json out = Json::array();
  for (auto& r : *records) {
    out.push_back(std::move(r));
  }
  return http::JsonResponse(200, ToJson(Json{{"value", out}}));
}

}  // namespace coffer::server
