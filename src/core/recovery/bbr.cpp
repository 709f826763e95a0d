#include "core/recovery/bbr.hpp"

#include <algorithm>
#include <chrono>
#include <limits>

namespace rendr::core::recovery {

namespace {

// Paced slightly below the estimate so that the bottleneck's queue drains on average.
constexpr double kPacingMargin = 0.99;

double seconds(Duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

Bbr::Bbr(const RecoveryConfig& config)
    : mss_(config.max_datagram_size),
      max_window_(config.maximum_window_bytes),
      initial_window_(std::max<std::uint64_t>(config.initial_window_packets, kMinWindowPackets) *
                      config.max_datagram_size),
      cwnd_(initial_window_) {}

void Bbr::on_packet_sent(std::size_t bytes, Time) {
  bytes_in_flight_ += bytes;
}

double Bbr::pacing_gain() const {
  switch (state_) {
    case State::startup:
      return kStartupPacingGain;
    case State::drain:
      return kDrainPacingGain;
    case State::probe_bw:
      if (cycle_phase_ == 0) return kProbeUpGain;
      if (cycle_phase_ == 1) return kProbeDownGain;
      return 1.0;
    case State::probe_rtt:
      return 1.0;
  }
  return 1.0;
}

std::uint64_t Bbr::window_pacing_rate(const RttStats& rtt) const {
  const double srtt = seconds(rtt.smoothed());
  if (srtt <= 0) return 0;
  return static_cast<std::uint64_t>(kStartupPacingGain * static_cast<double>(cwnd_) / srtt);
}

std::uint64_t Bbr::pacing_rate(const RttStats& rtt) const {
  return pacing_rate_ > 0 ? pacing_rate_ : window_pacing_rate(rtt);
}

void Bbr::update_pacing_rate(const RttStats& rtt) {
  const std::uint64_t bw = bandwidth_.best();
  // No delivery sample yet: the window per (handshake or initial) RTT, at the Startup gain.
  const std::uint64_t rate =
      bw == 0 ? window_pacing_rate(rtt)
              : static_cast<std::uint64_t>(pacing_gain() * kPacingMargin * static_cast<double>(bw));
  // Until the pipe is full, a sample may say less than the path carries (the first ones come
  // from a handshake's or a probe's few packets): Startup never paces slower than it already
  // did (draft-ietf-ccwg-bbr, BBRSetPacingRateWithGain), the window per RTT at first.
  if (pacing_rate_ == 0) pacing_rate_ = window_pacing_rate(rtt);
  if (full_bandwidth_reached_ || rate > pacing_rate_) pacing_rate_ = rate;
}

std::uint64_t Bbr::bdp(double gain) const {
  if (!min_rtt_ || bandwidth_.best() == 0) return initial_window_;
  return static_cast<std::uint64_t>(gain * static_cast<double>(bandwidth_.best()) *
                                    seconds(*min_rtt_));
}

std::uint64_t Bbr::target_window() const {
  const double gain = state_ == State::startup ? kStartupCwndGain : kCwndGain;
  return std::max(bdp(gain) + extra_acked_.best(), min_window());
}

std::uint64_t Bbr::slow_start_threshold() const {
  if (state_ == State::startup) return std::numeric_limits<std::uint64_t>::max();
  return target_window();
}

void Bbr::on_packets_acked(std::span<const AckedPacket> acked, const RttStats& rtt, Time now) {
  std::uint64_t newly_acked = 0;
  for (const AckedPacket& p : acked) {
    bytes_in_flight_ -= std::min<std::uint64_t>(bytes_in_flight_, p.bytes);
    newly_acked += p.bytes;
  }
  delivered_ += newly_acked;
  if (!acked.empty()) {
    // The newest packet's round trip, delay at the receiver included (as Linux's BBR takes it).
    Time newest = acked.front().sent_at;
    for (const AckedPacket& p : acked)
      newest = std::max(newest, p.sent_at);
    update_min_rtt(now - newest, now);
  }
  update_round();
  if (conserving_ && round_count_ > conservation_round_) {
    // One round of packet conservation is over: back to the window the model allows.
    conserving_ = false;
    cwnd_ = std::max(cwnd_, prior_cwnd_);
  }
  update_bandwidth();
  update_ack_aggregation(newly_acked, now);
  check_full_bandwidth();
  check_drain(now);
  update_probe_bw_cycle(now);
  update_probe_rtt(now);
  set_window(newly_acked);
  update_pacing_rate(rtt);
  sample_ = RateSample{};
}

void Bbr::update_round() {
  round_start_ = false;
  if (sample_.newly_acked > 0 && sample_.prior_delivered >= next_round_delivered_) {
    next_round_delivered_ = delivered_;
    ++round_count_;
    round_start_ = true;
  }
}

void Bbr::update_bandwidth() {
  const std::uint64_t rate = sample_.rate();
  if (rate == 0) return;
  // An application-limited sample shows what was offered, not what the path carries: it may
  // raise the estimate, never lower it.
  if (sample_.app_limited && rate < bandwidth_.best()) return;
  bandwidth_.update(rate, round_count_);
}

void Bbr::update_ack_aggregation(std::uint64_t newly_acked, Time now) {
  const std::uint64_t bw = bandwidth_.best();
  if (bw == 0 || newly_acked == 0) return;
  std::uint64_t expected = 0;
  if (aggregation_start_) {
    expected =
        static_cast<std::uint64_t>(static_cast<double>(bw) * seconds(now - *aggregation_start_));
  }
  // ACKs no faster than the estimate: a new epoch of measuring how far they run ahead of it.
  if (!aggregation_start_ || aggregation_acked_ <= expected) {
    aggregation_start_ = now;
    aggregation_acked_ = 0;
    expected = 0;
  }
  aggregation_acked_ += newly_acked;
  const std::uint64_t extra = std::min(aggregation_acked_ - expected, cwnd_);
  extra_acked_.update(extra, round_count_);
}

void Bbr::update_min_rtt(Duration sample, Time now) {
  // An estimate older than its window is replaced by the current sample, and ProbeRTT (next)
  // drains the queue so that the samples that follow show the path's own delay.
  min_rtt_expired_ = min_rtt_ && now - min_rtt_stamp_ > kMinRttWindow;
  if (!min_rtt_ || sample < *min_rtt_ || min_rtt_expired_) {
    min_rtt_ = sample;
    min_rtt_stamp_ = now;
  }
}

void Bbr::check_full_bandwidth() {
  if (full_bandwidth_reached_ || !round_start_ || sample_.app_limited) return;
  const std::uint64_t bw = bandwidth_.best();
  if (static_cast<double>(bw) >= static_cast<double>(full_bandwidth_) * kFullBandwidthGrowth) {
    full_bandwidth_ = bw;
    full_bandwidth_count_ = 0;
    return;
  }
  if (++full_bandwidth_count_ >= kFullBandwidthRounds) full_bandwidth_reached_ = true;
}

void Bbr::check_drain(Time now) {
  if (state_ == State::startup && full_bandwidth_reached_) state_ = State::drain;
  if (state_ == State::drain && bytes_in_flight_ <= bdp(1.0)) enter_probe_bw(now);
}

void Bbr::enter_probe_bw(Time now) {
  state_ = State::probe_bw;
  // Start cruising (not probing down right after Drain emptied the queue).
  cycle_phase_ = 2;
  cycle_start_ = now;
  lost_in_phase_ = false;
}

void Bbr::update_probe_bw_cycle(Time now) {
  if (state_ != State::probe_bw) return;
  const bool full_length = min_rtt_ && now - cycle_start_ > *min_rtt_;
  bool next = full_length;
  if (cycle_phase_ == 0) {
    // Probing up lasts until the queue it builds shows (a loss) or the inflight it aimed at.
    next = full_length && (lost_in_phase_ || bytes_in_flight_ >= bdp(kProbeUpGain));
  } else if (cycle_phase_ == 1) {
    next = full_length || bytes_in_flight_ <= bdp(1.0);
  }
  if (!next) return;
  cycle_phase_ = (cycle_phase_ + 1) % kCyclePhases;
  cycle_start_ = now;
  lost_in_phase_ = false;
}

void Bbr::update_probe_rtt(Time now) {
  if (state_ != State::probe_rtt && min_rtt_expired_) {
    // The RTT estimate was old: let the queue drain (a few packets in flight) to measure anew.
    state_ = State::probe_rtt;
    prior_cwnd_ = std::max(prior_cwnd_, cwnd_);
    probe_rtt_done_.reset();
    probe_rtt_round_done_ = false;
  }
  if (state_ != State::probe_rtt) return;
  if (!probe_rtt_done_) {
    if (bytes_in_flight_ <= min_window()) {
      probe_rtt_done_ = now + kProbeRttDuration;
      next_round_delivered_ = delivered_;
    }
    return;
  }
  if (round_start_) probe_rtt_round_done_ = true;
  if (!probe_rtt_round_done_ || now < *probe_rtt_done_) return;
  min_rtt_stamp_ = now;
  cwnd_ = std::max(cwnd_, prior_cwnd_);
  prior_cwnd_ = 0;
  if (full_bandwidth_reached_) {
    enter_probe_bw(now);
  } else {
    state_ = State::startup;
  }
}

void Bbr::set_window(std::uint64_t newly_acked) {
  const std::uint64_t target = target_window();
  if (conserving_) {
    // No more in flight than before the ACK (what it freed may go again).
    cwnd_ = std::max(cwnd_, bytes_in_flight_ + newly_acked);
  } else if (full_bandwidth_reached_) {
    cwnd_ = std::min(cwnd_ + newly_acked, target);
  } else if (cwnd_ < target || delivered_ < initial_window_) {
    cwnd_ += newly_acked;
  }
  cwnd_ = std::max(cwnd_, min_window());
  if (state_ == State::probe_rtt) cwnd_ = std::min(cwnd_, min_window());
  cwnd_ = std::min(cwnd_, std::max(max_window_, min_window()));
}

void Bbr::on_packets_lost(std::span<const LostPacket> lost, Time now) {
  if (lost.empty()) return;
  std::uint64_t lost_bytes = 0;
  Time newest_sent = lost.front().sent_at;
  for (const LostPacket& p : lost) {
    bytes_in_flight_ -= std::min<std::uint64_t>(bytes_in_flight_, p.bytes);
    lost_bytes += p.bytes;
    newest_sent = std::max(newest_sent, p.sent_at);
  }
  lost_in_phase_ = true;
  const std::uint64_t before = cwnd_;
  // What was lost no longer counts in flight; it does not come back into the window either.
  cwnd_ = std::max(cwnd_ > lost_bytes ? cwnd_ - lost_bytes : 0, min_window());
  if (in_recovery(newest_sent)) return;
  // A new recovery period: for one round, send only as the ACKs free room.
  undo_ = Undo{before, recovery_start_};
  prior_cwnd_ = conserving_ ? std::max(prior_cwnd_, before) : before;
  recovery_start_ = now;
  conserving_ = true;
  conservation_round_ = round_count_;
  next_round_delivered_ = delivered_;
  cwnd_ = std::max(bytes_in_flight_ + mss_, min_window());
}

void Bbr::on_persistent_congestion(Time now) {
  // Every packet of several PTOs was lost: nothing in flight is known to be delivered. Start
  // from the minimum and regrow by what is acknowledged, up to what the model allows.
  prior_cwnd_ = std::max(prior_cwnd_, cwnd_);
  cwnd_ = min_window();
  recovery_start_ = now;
  conserving_ = false;
  undo_.reset();
}

void Bbr::on_spurious_congestion_event() {
  if (!undo_) return;
  cwnd_ = std::max(cwnd_, undo_->cwnd);
  recovery_start_ = undo_->recovery_start;
  conserving_ = false;
  undo_.reset();
}

void Bbr::set_max_datagram_size(std::size_t bytes) {
  if (bytes == 0 || bytes == mss_) return;
  // The initial window is a count of datagrams; the model's window is bytes of its estimate.
  const bool initial = cwnd_ == initial_window_;
  initial_window_ = initial_window_ / mss_ * bytes;
  if (initial) cwnd_ = initial_window_;
  mss_ = bytes;
  cwnd_ = std::max(cwnd_, min_window());
}

}  // namespace rendr::core::recovery
