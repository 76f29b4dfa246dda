// Time travel (docs/testing-with-coffer.md): an administrator moves a
// vault's clock forward, or every vault's. What is stored moves into the
// past instead (Store::ShiftTime), so expiry, near-expiry, rotation,
// renewal, retention and purges all follow by their ordinary rules, while
// tokens, TLS and the audit log keep real time.

#include <string>

#include "common/json.h"
#include "common/log.h"
#include "common/strings.h"
#include "server/server.h"

namespace coffer::server {
namespace {

StatusOr<Json> StoredTotals(storage::Store& store) {
  ASSIGN_OR_RETURN(std::optional<std::string> stored, store.GetMeta(storage::kTimeShiftMetaKey));
  if (!stored.has_value()) {
    return Json::object();
  }
  auto totals = ParseJson(*stored, 2);
  if (!totals || !totals->is_object()) {
    return InternalError("the stored time shifts are not a JSON object");
  }
  return *std::move(totals);
}

}  // namespace

http::Response CofferServer::TimeShiftRequest(const http::Request& request, AuditNote& note) {
  const bool enabled = config_.dev || config_.allow_time_shift;
  if (request.method == "GET") {
    auto totals = StoredTotals(*store_);
    if (!totals.ok()) {
      return http::ErrorResponse(totals.status());
    }
    return http::JsonResponse(200, Json{{"enabled", enabled}, {"vaults", *totals}}.dump());
  }
  // POST /coffer/v1/time-shift?vault=NAME&seconds=N, or ?all=true&seconds=N:
  // in the query, so that the audit record's requestUri says what moved.
  if (!enabled) {
    return http::ErrorResponse(
        403, "TimeShiftDisabled",
        "Time travel is off on this server: it is on with --dev, or with --allow-time-shift.");
  }
  const std::string vault(request.Query("vault"));
  const std::string all(request.Query("all"));
  const std::string seconds_text(request.Query("seconds"));
  if (vault.empty() == all.empty() || (!all.empty() && all != "true")) {
    return http::ErrorResponse(400, "BadParameter",
                               "Name one vault (vault=NAME) or every vault (all=true).");
  }
  int64_t seconds = 0;
  if (!ParseInt64(seconds_text, &seconds)) {
    return http::ErrorResponse(400, "BadParameter",
                               "seconds must be a whole number of seconds forward.");
  }
  std::string vault_name;
  if (!vault.empty()) {
    auto record = store_->GetVault(vault);
    if (!record.ok()) {
      return http::ErrorResponse(record.status());
    }
    note.resource_id = record->ResourceId();
    vault_name = record->name;
  }
  auto moved = store_->ShiftTime(vault, seconds);
  if (!moved.ok()) {
    return http::ErrorResponse(moved.status());
  }
  AfterTimeShift();
  auto totals = StoredTotals(*store_);
  if (!totals.ok()) {
    return http::ErrorResponse(totals.status());
  }
  COFFER_LOG(kInfo) << "time shift: " << (vault.empty() ? "every vault" : "vault '" + vault + "'")
                    << " moved " << seconds << " s forward (" << *moved << " version(s))";
  Json out = {{"seconds", seconds}, {"versionsMoved", *moved}, {"vaults", *totals}};
  out["vault"] = vault.empty() ? Json(nullptr) : Json(vault_name);
  return http::JsonResponse(200, out.dump());
}

void CofferServer::AfterTimeShift() {
  // What this server remembers of the objects and vaults predates the shift.
  secrets_->InvalidateAll();
  vault_keys_->InvalidateAll();
  registry_->InvalidateAll();
  // What became due runs now rather than at the next tick.
  {
    std::lock_guard<std::mutex> lock(purge_mu_);
    schedules_due_ = true;
  }
  purge_cv_.notify_all();
}

}  // namespace coffer::server
