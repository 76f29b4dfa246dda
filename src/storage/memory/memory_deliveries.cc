// Pending webhook deliveries of the memory store, as SqlStore keeps them
// (sql/sql_deliveries.cc).

#include <algorithm>
#include <charconv>

#include "storage/memory/memory_store.h"

namespace coffer::storage {

namespace {

std::tuple<int64_t, std::string, std::string, int64_t> Order(const PendingDelivery& d) {
  return {d.due_ms, d.vault_key, d.name_key, d.change.seq};
}

}  // namespace

StatusOr<int64_t> MemoryStore::QueueDeliveries(const std::string& position_key, int64_t position,
                                               const std::vector<PendingDelivery>& deliveries) {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t before = 0;
  auto it = meta_.find(position_key);
  if (it != meta_.end()) {
    const std::string& text = it->second;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), before);
    if (ec != std::errc() || end != text.data() + text.size()) {
      before = 0;
    }
  }
  for (const PendingDelivery& d : deliveries) {
    if (d.change.seq > before) {
      deliveries_.emplace(std::make_tuple(d.vault_key, d.name_key, d.change.seq), d);
    }
  }
  if (position > before) {
    meta_[position_key] = std::to_string(position);
  }
  return before;
}

StatusOr<std::vector<PendingDelivery>> MemoryStore::ListDeliveries(
    const std::optional<DeliveryCursor>& after, int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<PendingDelivery> out;
  for (const auto& [key, d] : deliveries_) {
    if (!after ||
        Order(d) > std::make_tuple(after->due_ms, after->vault_key, after->name_key, after->seq)) {
      out.push_back(d);
    }
  }
  std::sort(out.begin(), out.end(),
            [](const PendingDelivery& a, const PendingDelivery& b) { return Order(a) < Order(b); });
  if (out.size() > static_cast<size_t>(std::max(limit, 0))) {
    out.resize(static_cast<size_t>(std::max(limit, 0)));
  }
  return out;
}

Status MemoryStore::UpdateDelivery(const PendingDelivery& delivery) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = deliveries_.find({delivery.vault_key, delivery.name_key, delivery.change.seq});
  if (it == deliveries_.end()) {
    return NotFoundError("the delivery is no longer pending");
  }
  PendingDelivery& d = it->second;
  if (delivery.attempts > d.attempts) {
    d.attempts = delivery.attempts;
    d.due_ms = delivery.due_ms;
    d.last_outcome = delivery.last_outcome;
    d.last_status = delivery.last_status;
  }
  return OkStatus();
}

Status MemoryStore::DeleteDelivery(const std::string& vault_key, const std::string& name_key,
                                   int64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  if (deliveries_.erase({vault_key, name_key, seq}) == 0) {
    return NotFoundError("the delivery is no longer pending");
  }
  return OkStatus();
}

}  // namespace coffer::storage
