#pragma once
// Round-trip estimate of one datagram path, as RFC 9002 §5 computes it: latest, minimum,
// smoothed and variation, with the peer's ACK delay subtracted from a sample when that does not
// take it below the minimum (§5.3).
//
// Not core/rtt.hpp's RttEstimator: that one takes samples that already exclude the peer's
// delay (a PONG is answered at once), keeps no latest sample and its minimum would be taken
// after the delay adjustment, which RFC 9002 forbids. The flow may still feed the path's
// RttEstimator from here for quality decisions.
#include <algorithm>

#include "core/types.hpp"

namespace rendr::core::recovery {

class RttStats {
 public:
  explicit RttStats(Duration initial_rtt) : smoothed_(initial_rtt), rttvar_(initial_rtt / 2) {}

  // One sample: `latest` from a newly acknowledged largest packet, `ack_delay` as the peer
  // reported it, already capped at max_ack_delay by the caller.
  void update(Duration latest, Duration ack_delay) {
    latest = std::max(latest, Duration::zero());
    latest_ = latest;
    if (!has_sample_) {
      has_sample_ = true;
      min_ = latest;
      smoothed_ = latest;
      rttvar_ = latest / 2;
      return;
    }
    min_ = std::min(min_, latest);
    Duration adjusted = latest;
    if (latest >= min_ + ack_delay) adjusted = latest - ack_delay;
    const Duration delta = smoothed_ > adjusted ? smoothed_ - adjusted : adjusted - smoothed_;
    rttvar_ = (3 * rttvar_ + delta) / 4;
    smoothed_ = (7 * smoothed_ + adjusted) / 8;
  }
  // Persistent congestion: the estimate no longer describes the path (RFC 9002 §5.2 allows
  // resetting min_rtt then).
  void reset_min_to_latest() { min_ = latest_; }

  bool has_sample() const { return has_sample_; }
  Duration latest() const { return latest_; }
  Duration min() const { return min_; }
  Duration smoothed() const { return smoothed_; }
  Duration rttvar() const { return rttvar_; }

 private:
  bool has_sample_ = false;
  Duration latest_{};
  Duration min_{};
  Duration smoothed_;
  Duration rttvar_;
};

}  // namespace rendr::core::recovery
