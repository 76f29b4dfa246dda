#include "common/histogram.h"

namespace coffer {

void LatencyHistogram::Snapshot::Add(double seconds) {
  size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) {
    ++i;
  }
  ++counts[i];
  ++count;
  sum += seconds;
}

void LatencyHistogram::Observe(double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  data_.Add(seconds);
}

LatencyHistogram::Snapshot LatencyHistogram::Read() const {
  std::lock_guard<std::mutex> lock(mu_);
  return data_;
}

}  // namespace coffer
