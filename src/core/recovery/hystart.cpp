#include "core/recovery/hystart.hpp"

#include <algorithm>

namespace rendr::core::recovery {

void HyStart::start_round(Time now) {
  round_start_ = now;
  last_round_min_ = current_round_min_;
  current_round_min_.reset();
  samples_ = 0;
}

HyStart::Phase HyStart::on_ack(Time newest_acked_sent_at, Duration latest_rtt, Time now) {
  if (stopped_) return Phase::slow_start;
  if (phase_ == Phase::finished) return phase_;
  if (!round_start_) {
    start_round(now);
  } else if (newest_acked_sent_at > *round_start_) {
    start_round(now);
    if (phase_ == Phase::conservative && ++css_rounds_ >= kCssRounds) {
      phase_ = Phase::finished;
      return phase_;
    }
  }
  current_round_min_ = current_round_min_ ? std::min(*current_round_min_, latest_rtt) : latest_rtt;
  ++samples_;
  if (samples_ < kRttSamplesPerRound) return phase_;

  if (phase_ == Phase::slow_start && last_round_min_) {
    const Duration threshold =
        std::clamp(*last_round_min_ / kMinRttDivisor, kMinRttThreshold, kMaxRttThreshold);
    if (*current_round_min_ >= *last_round_min_ + threshold) {
      css_baseline_ = current_round_min_;
      css_rounds_ = 0;
      phase_ = Phase::conservative;
    }
  } else if (phase_ == Phase::conservative && *current_round_min_ < *css_baseline_) {
    // The delay rise was not a queue after all.
    css_baseline_.reset();
    phase_ = Phase::slow_start;
  }
  return phase_;
}

}  // namespace rendr::core::recovery
