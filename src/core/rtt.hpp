#pragma once
// Smoothed round-trip time per path (RFC 6298 weights), and the minimum of the recent *unloaded*
// samples (a windowed minimum over one to two windows), which neither jitter nor the path's own
// queueing moves: a sample taken while bulk data queued ahead of the probe measures the queue,
// not the path, and would make the busy path look worse than an idle one of the same quality.
// Handshake round trips are not `unloaded` either: they include the peer's key agreement.
#include <algorithm>

#include "core/types.hpp"

namespace rendr::core {

class RttEstimator {
 public:
  void add_sample(Duration sample, Time now, bool unloaded = true) {
    if (sample < Duration::zero()) return;
    if (unloaded) {
      if (!has_unloaded_ || now - window_start_ >= kRecentWindow) {
        previous_window_min_ = has_unloaded_ ? window_min_ : sample;
        window_min_ = sample;
        window_start_ = now;
      }
      window_min_ = std::min(window_min_, sample);
      has_unloaded_ = true;
    }
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
  bool has_unloaded_sample() const { return has_unloaded_; }
  Duration srtt() const { return srtt_; }
  Duration rttvar() const { return rttvar_; }
  Duration min_rtt() const { return min_rtt_; }
  Duration recent_min_rtt() const { return std::min(window_min_, previous_window_min_); }

 private:
  static constexpr Duration kRecentWindow = std::chrono::seconds(5);

  bool has_sample_ = false;
  bool has_unloaded_ = false;
  Duration window_min_{};
  Duration previous_window_min_{};
  Time window_start_{};
  Duration srtt_{};
  Duration rttvar_{};
  Duration min_rtt_{};
};

}  // namespace rendr::core
