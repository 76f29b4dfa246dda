#pragma once

#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

namespace coffer::net {

// ConnectionLimits counts a server's open connections, in all and per client
// address (http::ClientAddressKey: an IPv6 client's /64 is one address), and
// refuses a connection that would exceed either cap. A connection is counted
// for as long as its Slot lives.
//
// Thread-safe. It must outlive every Slot it hands out.
class ConnectionLimits {
 public:
  // Slot is one counted connection; destroying it (or moving a new one in)
  // releases the count. An empty Slot counts nothing.
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept;
    Slot& operator=(Slot&& other) noexcept;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot();

    explicit operator bool() const { return limits_ != nullptr; }

   private:
    friend class ConnectionLimits;
    Slot(ConnectionLimits* limits, std::string key) : limits_(limits), key_(std::move(key)) {}
    void Release();

    ConnectionLimits* limits_ = nullptr;
    std::string key_;
  };

  // 0 for either cap means no cap.
  ConnectionLimits(size_t max_total, size_t max_per_address)
      : max_total_(max_total), max_per_address_(max_per_address) {}
  ConnectionLimits(const ConnectionLimits&) = delete;
  ConnectionLimits& operator=(const ConnectionLimits&) = delete;

  // TryAcquire counts a new connection from `address`, or returns an empty
  // Slot (counting nothing) when the total or the address is at its cap.
  Slot TryAcquire(const std::string& address);

  size_t total() const;
  size_t for_address(const std::string& address) const;

 private:
  void Release(const std::string& key);

  const size_t max_total_;
  const size_t max_per_address_;
  mutable std::mutex mu_;
  size_t total_ = 0;                                 // GUARDED_BY(mu_)
  std::unordered_map<std::string, size_t> per_key_;  // GUARDED_BY(mu_); no zero counts
};

}  // namespace coffer::net
