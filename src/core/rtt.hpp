#pragma once
// Smoothed round-trip time per path (RFC 6298 weights), and the minimum of the recent samples
// (a windowed minimum over one to two `recent_window`s), which jitter does not move.
#include <algorithm>

#include "core/types.hpp"

namespace rendr::core {

class RttEstimator {
 public:
  void add_sample(Duration sample, Time now) {
    if (sample < Duration::zero()) return;
    if (!has_sample_ || now - window_start_ >= kRecentWindow) {
      previous_window_min_ = has_sample_ ? window_min_ : sample;
      window_min_ = sample;
      window_start_ = now;
    }
    window_min_ = std::min(window_min_, sample);
    if (!has_sample_) {
      srtt_ = sample;
      rttvar_ = sample / 2;
      min_rtt_ = sample;
      has_sample_ = true;
      return;
    }
    const Duration delta = srtt_ > sample ? srtt_ - sample : sample - srtt_;
    rttvar_ = (3 * rttvar_ + delta) / 4;
    srtt_ = (7 * srtt_ + sample) / 8;
    min_rtt_ = std::min(min_rtt_, sample);
  }
  bool has_sample() const { return has_sample_; }
  Duration srtt() const { return srtt_; }
  Duration rttvar() const { return rttvar_; }
  Duration min_rtt() const { return min_rtt_; }
  Duration recent_min_rtt() const { return std::min(window_min_, previous_window_min_); }

 private:
  static constexpr Duration kRecentWindow = std::chrono::seconds(5);

  bool has_sample_ = false;
  Duration window_min_{};
  Duration previous_window_min_{};
  Time window_start_{};
  Duration srtt_{};
  Duration rttvar_{};
  Duration min_rtt_{};
};

}  // namespace rendr::core
