#pragma once
// Small statistics helpers for the benchmarks: percentiles, medians and stall (gap) tracking.
#include <chrono>
#include <vector>

namespace rendr::cli {

using Clock = std::chrono::steady_clock;

// Nearest-rank percentile (p in [0, 100]) of `values`; 0 for an empty set.
double percentile(std::vector<double> values, double p);
inline double median(std::vector<double> values) {
  return percentile(std::move(values), 50);
}
double max_of(const std::vector<double>& values);

double to_ms(Clock::duration d);
double to_us(Clock::duration d);

// Longest interval between consecutive events (e.g. receiver reads), from the first event on.
class GapTracker {
 public:
  void mark(Clock::time_point now) {
    if (seen_ && now - last_ > longest_) longest_ = now - last_;
    last_ = now;
    seen_ = true;
  }
  Clock::duration longest() const { return longest_; }

 private:
  bool seen_ = false;
  Clock::time_point last_{};
  Clock::duration longest_{};
};

}  // namespace rendr::cli
