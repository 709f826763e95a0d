#include "core/recovery/cubic.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace rendr::core::recovery {

namespace {

double seconds(Duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

void Cubic::reduce(Time) {
  const double cwnd = static_cast<double>(cwnd_);
  // Fast convergence (RFC 9438 §4.7): a flow whose maximum keeps falling releases bandwidth.
  state_.w_max = cwnd < state_.w_max ? cwnd * (1.0 + kBeta) / 2.0 : cwnd;
  ssthresh_ = std::max(static_cast<std::uint64_t>(cwnd * kBeta), min_window());
  cwnd_ = ssthresh_;
  state_.epoch_start.reset();  // the next avoidance ACK starts the new epoch
}

void Cubic::grow_in_avoidance(std::size_t bytes, const RttStats& rtt, Time now) {
  const double mss = static_cast<double>(mss_);
  double cwnd = static_cast<double>(cwnd_);
  if (unused_since_) {
    if (state_.epoch_start) *state_.epoch_start += now - *unused_since_;
    unused_since_.reset();
  }
  if (!state_.epoch_start) {
    // A new epoch: after a reduction K is the time to regain W_max; leaving the first slow
    // start (no W_max yet) the curve starts at its plateau, here (§4.2, §4.8).
    state_.epoch_start = now;
    state_.cwnd_at_epoch_start = cwnd;
    if (state_.w_max <= cwnd) {
      state_.w_max = cwnd;
      state_.k_seconds = 0;
    } else {
      state_.k_seconds = std::cbrt((state_.w_max - cwnd) / mss / kC);
    }
    state_.w_est = cwnd;
  }
  // W_cubic one RTT ahead, in bytes, bounded to [cwnd, 1.5 cwnd] (§4.2).
  const double t = seconds(now - *state_.epoch_start) + seconds(rtt.smoothed());
  const double dt = t - state_.k_seconds;
  const double w_cubic = kC * dt * dt * dt * mss + state_.w_max;
  const double target = std::clamp(w_cubic, cwnd, 1.5 * cwnd);

  // Reno-friendly estimate (§4.3): alpha = 3(1-beta)/(1+beta) datagrams per window, 1 once
  // it passes the old maximum.
  const double alpha = state_.w_est >= state_.w_max ? 1.0 : 3.0 * (1.0 - kBeta) / (1.0 + kBeta);
  state_.w_est += alpha * mss * static_cast<double>(bytes) / cwnd;

  if (w_cubic < state_.w_est) {
    cwnd = std::max(cwnd, state_.w_est);  // Reno-friendly region
  } else {
    cwnd += (target - cwnd) * static_cast<double>(bytes) / cwnd;
  }
  cwnd_ = static_cast<std::uint64_t>(cwnd);
}

}  // namespace rendr::core::recovery
