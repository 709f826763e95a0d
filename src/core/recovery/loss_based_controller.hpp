#pragma once
// What NewReno and CUBIC share (RFC 9002 §7): bytes-in-flight accounting, slow start (the first
// one left by HyStart++ when the RTT starts to grow, RFC 9406), one window reduction per
// recovery period, persistent congestion, undo of a spurious reduction, no growth while the
// window is not the limit (§7.8), and pacing at a multiple of cwnd/srtt.
// They differ only in how the window grows in congestion avoidance and shrinks on an event.
#include <cstdint>
#include <limits>
#include <optional>

#include "core/recovery/congestion_controller.hpp"
#include "core/recovery/hystart.hpp"

namespace rendr::core::recovery {

class LossBasedController : public CongestionController {
 public:
  explicit LossBasedController(const RecoveryConfig& config);

  void on_packet_sent(std::size_t bytes, Time now) override;
  void on_packets_acked(std::span<const AckedPacket> acked, const RttStats& rtt, Time now) override;
  void on_packets_lost(std::span<const LostPacket> lost, Time now) override;
  void on_persistent_congestion(Time now) override;
  void on_spurious_congestion_event() override;
  void set_max_datagram_size(std::size_t bytes) override;

  std::uint64_t congestion_window() const override { return cwnd_; }
  std::uint64_t bytes_in_flight() const override { return bytes_in_flight_; }
  std::uint64_t pacing_rate(const RttStats& rtt) const override;
  std::uint64_t slow_start_threshold() const override { return ssthresh_; }
  bool in_recovery(Time sent_at) const override {
    return recovery_start_ && sent_at <= *recovery_start_;
  }

  // Pacing gains (Linux's): twice the window per RTT in slow start, so pacing never holds the
  // window's growth back; 1.25 after, so the window, not pacing, is the usual limit.
  static constexpr double kSlowStartPacingGain = 2.0;
  static constexpr double kAvoidancePacingGain = 1.25;

 protected:
  // Congestion avoidance (cwnd >= ssthresh): `bytes` newly acknowledged.
  virtual void grow_in_avoidance(std::size_t bytes, const RttStats& rtt, Time now) = 0;
  // A congestion event at `now`: set ssthresh_ and cwnd_ (the base clamps cwnd_ to the
  // minimum window afterwards).
  virtual void reduce(Time now) = 0;
  // Save / restore the algorithm's own state around a reduction (spurious-event undo), and
  // forget it after a persistent-congestion collapse.
  virtual void save_undo_state() {}
  virtual void restore_undo_state() {}
  virtual void on_collapse() {}
  // An ACK arrived while the window was not the limit (no growth for it).
  virtual void on_window_unused(Time) {}

  std::uint64_t min_window() const { return min_packets_ * mss_; }
  bool in_slow_start() const { return cwnd_ < ssthresh_; }

  std::uint64_t mss_;
  std::uint64_t min_packets_;
  std::uint64_t max_window_;
  std::uint64_t cwnd_;
  std::uint64_t ssthresh_ = std::numeric_limits<std::uint64_t>::max();

 private:
  // Whether the last round used the window: the most in flight since the last ACK came within
  // three datagrams of cwnd (in slow start: at least half of it, as Linux's tcp_is_cwnd_limited).
  bool window_limited() const;

  HyStart hystart_;
  std::uint64_t bytes_in_flight_ = 0;
  std::uint64_t peak_in_flight_ = 0;
  std::optional<Time> recovery_start_;
  struct Undo {
    std::uint64_t cwnd = 0;
    std::uint64_t ssthresh = 0;
    std::optional<Time> recovery_start;
  };
  std::optional<Undo> undo_;
};

}  // namespace rendr::core::recovery
