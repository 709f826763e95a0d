#pragma once
// Smoothed round-trip time per path (RFC 6298 weights).
#include <algorithm>

#include "core/types.hpp"

namespace rendr::core {

class RttEstimator {
 public:
  void add_sample(Duration sample) {
    if (sample < Duration::zero()) return;
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

 private:
  bool has_sample_ = false;
  Duration srtt_{};
  Duration rttvar_{};
  Duration min_rtt_{};
};

}  // namespace rendr::core
