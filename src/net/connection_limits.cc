#include "net/connection_limits.h"

#include "http/client_address.h"

namespace coffer::net {

ConnectionLimits::Slot::Slot(Slot&& other) noexcept
    : limits_(other.limits_), key_(std::move(other.key_)) {
  other.limits_ = nullptr;
}

ConnectionLimits::Slot& ConnectionLimits::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    Release();
    limits_ = other.limits_;
    key_ = std::move(other.key_);
    other.limits_ = nullptr;
  }
  return *this;
}

ConnectionLimits::Slot::~Slot() {
  Release();
}

void ConnectionLimits::Slot::Release() {
  if (limits_ != nullptr) {
    limits_->Release(key_);
    limits_ = nullptr;
  }
}

ConnectionLimits::Slot ConnectionLimits::TryAcquire(const std::string& address) {
  std::string key = http::ClientAddressKey(address);
  std::lock_guard<std::mutex> lock(mu_);
  if (max_total_ != 0 && total_ >= max_total_) {
    return Slot();
  }
  auto it = per_key_.find(key);
  size_t held = it == per_key_.end() ? 0 : it->second;
  if (max_per_address_ != 0 && held >= max_per_address_) {
    return Slot();
  }
  ++total_;
  if (it == per_key_.end()) {
    per_key_.emplace(key, 1);
  } else {
    ++it->second;
  }
  return Slot(this, std::move(key));
}

void ConnectionLimits::Release(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  --total_;
  auto it = per_key_.find(key);
  if (it != per_key_.end() && --it->second == 0) {
    // Only addresses with open connections take memory.
    per_key_.erase(it);
  }
}

size_t ConnectionLimits::total() const {
  std::lock_guard<std::mutex> lock(mu_);
  return total_;
}

size_t ConnectionLimits::for_address(const std::string& address) const {
  std::string key = http::ClientAddressKey(address);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = per_key_.find(key);
  return it == per_key_.end() ? 0 : it->second;
}

}  // namespace coffer::net
