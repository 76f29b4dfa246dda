#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <vector>

namespace coffer {

// LatencyHistogram counts durations in fixed buckets, in seconds, for the
// server's metrics (Prometheus histograms). The bounds are the same for every
// histogram, from half a millisecond to five seconds.
// Thread-safe.
class LatencyHistogram {
 public:
  static constexpr std::array<double, 12> kBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                     0.05,   0.1,   0.25,   0.5,   1.0,  5.0};

  // What was observed so far: per bound (not cumulative) with +Inf last, so
  // counts.size() == kBounds.size() + 1.
  struct Snapshot {
    std::vector<uint64_t> counts = std::vector<uint64_t>(kBounds.size() + 1, 0);
    uint64_t count = 0;
    double sum = 0;
    // Adds one duration.
    void Add(double seconds);
  };

  void Observe(double seconds);
  Snapshot Read() const;

 private:
  mutable std::mutex mu_;
  Snapshot data_;  // GUARDED_BY(mu_)
};

}  // namespace coffer
