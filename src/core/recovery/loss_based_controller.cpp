#include "core/recovery/loss_based_controller.hpp"

#include <algorithm>
#include <chrono>

#include "core/recovery/bbr.hpp"
#include "core/recovery/cubic.hpp"
#include "core/recovery/new_reno.hpp"

namespace rendr::core::recovery {

std::unique_ptr<CongestionController> make_congestion_controller(const RecoveryConfig& config) {
  switch (config.congestion) {
    case CongestionAlgorithm::new_reno:
      return std::make_unique<NewReno>(config);
    case CongestionAlgorithm::cubic:
      return std::make_unique<Cubic>(config);
    case CongestionAlgorithm::bbr:
      return std::make_unique<Bbr>(config);
  }
  return std::make_unique<Cubic>(config);
}

LossBasedController::LossBasedController(const RecoveryConfig& config)
    : mss_(config.max_datagram_size),
      min_packets_(std::max<std::uint64_t>(config.minimum_window_packets, 1)),
      max_window_(config.maximum_window_bytes),
      cwnd_(std::max<std::uint64_t>(config.initial_window_packets, min_packets_) * mss_) {}

void LossBasedController::on_packet_sent(std::size_t bytes, Time) {
  bytes_in_flight_ += bytes;
  peak_in_flight_ = std::max(peak_in_flight_, bytes_in_flight_);
}

bool LossBasedController::window_limited() const {
  if (in_slow_start()) return 2 * peak_in_flight_ >= cwnd_;
  return peak_in_flight_ + 3 * mss_ >= cwnd_;
}

void LossBasedController::on_packets_acked(std::span<const AckedPacket> acked, const RttStats& rtt,
                                           Time now) {
  const bool limited = window_limited();
  if (!limited && !acked.empty()) on_window_unused(now);
  // HyStart++ watches the first slow start (only: RFC 9406 §4.3), one RTT sample per ACK.
  HyStart::Phase phase = HyStart::Phase::slow_start;
  if (!acked.empty() && in_slow_start() && ssthresh_ == std::numeric_limits<std::uint64_t>::max()) {
    phase = hystart_.on_ack(acked.back().sent_at, rtt.latest(), now);
    if (phase == HyStart::Phase::finished) ssthresh_ = cwnd_;  // avoidance, without a loss
  }
  for (const AckedPacket& p : acked) {
    bytes_in_flight_ -= std::min<std::uint64_t>(bytes_in_flight_, p.bytes);
    // No growth for packets sent before the reduction, nor while the window is not the limit
    // (an application-limited sender would otherwise inflate it without testing it).
    if (in_recovery(p.sent_at) || !limited) continue;
    if (in_slow_start()) {
      cwnd_ +=
          phase == HyStart::Phase::conservative ? p.bytes / HyStart::kCssGrowthDivisor : p.bytes;
    } else {
      grow_in_avoidance(p.bytes, rtt, now);
    }
  }
  cwnd_ = std::clamp(cwnd_, min_window(), std::max(max_window_, min_window()));
  peak_in_flight_ = bytes_in_flight_;
}

void LossBasedController::on_packets_lost(std::span<const LostPacket> lost, Time now) {
  if (lost.empty()) return;
  Time newest_sent = lost.front().sent_at;
  for (const LostPacket& p : lost) {
    bytes_in_flight_ -= std::min<std::uint64_t>(bytes_in_flight_, p.bytes);
    newest_sent = std::max(newest_sent, p.sent_at);
  }
  // One reduction per recovery period (RFC 9002 §7.3.2).
  if (in_recovery(newest_sent)) return;
  undo_ = Undo{cwnd_, ssthresh_, recovery_start_};
  save_undo_state();
  recovery_start_ = now;
  reduce(now);
  cwnd_ = std::max(cwnd_, min_window());
  hystart_.stop();
}

void LossBasedController::on_persistent_congestion(Time now) {
  cwnd_ = min_window();
  // Unlike RFC 9002's pseudocode (which clears it), the recovery period restarts here: ACKs
  // of packets sent before the collapse say nothing about the path as it is now.
  recovery_start_ = now;
  undo_.reset();
  on_collapse();
}

void LossBasedController::on_spurious_congestion_event() {
  if (!undo_) return;
  cwnd_ = std::max(cwnd_, undo_->cwnd);
  ssthresh_ = undo_->ssthresh;
  recovery_start_ = undo_->recovery_start;
  undo_.reset();
  restore_undo_state();
}

void LossBasedController::set_max_datagram_size(std::size_t bytes) {
  if (bytes == 0 || bytes == mss_) return;
  // Keep the window's size in datagrams.
  cwnd_ = cwnd_ / mss_ * bytes;
  mss_ = bytes;
  cwnd_ = std::max(cwnd_, min_window());
}

std::uint64_t LossBasedController::pacing_rate(const RttStats& rtt) const {
  const auto srtt_us =
      std::chrono::duration_cast<std::chrono::microseconds>(rtt.smoothed()).count();
  const double gain = in_slow_start() ? kSlowStartPacingGain : kAvoidancePacingGain;
  if (srtt_us <= 0) return 0;  // an RTT below a microsecond: pacing would not hold anything
  return static_cast<std::uint64_t>(static_cast<double>(cwnd_) * gain * 1e6 /
                                    static_cast<double>(srtt_us));
}

}  // namespace rendr::core::recovery
