#pragma once
// BBR (draft-ietf-ccwg-bbr, simplified; docs/design.md "BBR"): a model-based congestion
// controller. It estimates the path's bottleneck bandwidth (the largest delivery rate of the
// last kBandwidthWindowRounds round trips) and its propagation delay (the smallest RTT of the
// last kMinRttWindow, refreshed by ProbeRTT), paces at a gain times that bandwidth and bounds
// what is in flight by a gain times their product (the BDP). The gains cycle through the
// states Startup (find the bandwidth fast), Drain (empty the queue Startup built), ProbeBW
// (cruise at the estimate, probe 25 % above it, drain 25 % below) and ProbeRTT.
//
// Loss is not read as congestion by itself (random loss would hold the window at a few packets
// per RTT, as it holds NewReno and CUBIC): the model sees a real rate drop as smaller delivery
// samples and a persistent queue as a larger RTT against a bounded window. Losses still count:
// a loss lowers the window by what was lost, and the first round trip of a recovery period
// conserves packets (no more goes out than the ACKs free), as BBRv1 does.
#include <cstdint>
#include <optional>

#include "core/recovery/congestion_controller.hpp"
#include "core/recovery/windowed_max_filter.hpp"

namespace rendr::core::recovery {

class Bbr final : public CongestionController {
 public:
  enum class State : std::uint8_t { startup, drain, probe_bw, probe_rtt };

  static constexpr double kStartupPacingGain = 2.77;  // 4 ln 2, draft-ietf-ccwg-bbr
  static constexpr double kStartupCwndGain = 2.0;
  static constexpr double kDrainPacingGain = 0.35;  // BBRv3's: drains Startup's queue in a round
  static constexpr double kCwndGain = 2.0;          // ProbeBW: room for delayed / stretched ACKs
  static constexpr double kProbeUpGain = 1.25;
  static constexpr double kProbeDownGain = 0.75;
  static constexpr int kCyclePhases = 8;  // up, down, then six at 1
  static constexpr std::uint64_t kBandwidthWindowRounds = 10;
  static constexpr Duration kMinRttWindow = std::chrono::seconds(10);
  static constexpr Duration kProbeRttDuration = std::chrono::milliseconds(200);
  static constexpr std::uint64_t kMinWindowPackets = 4;  // also ProbeRTT's window
  // Startup ends when the bandwidth estimate grew less than 25 % in three rounds in a row.
  static constexpr double kFullBandwidthGrowth = 1.25;
  static constexpr int kFullBandwidthRounds = 3;

  explicit Bbr(const RecoveryConfig& config);
  std::string_view name() const override { return "bbr"; }

  void on_packet_sent(std::size_t bytes, Time now) override;
  void on_rate_sample(const RateSample& sample) override { sample_ = sample; }
  void on_packets_acked(std::span<const AckedPacket> acked, const RttStats& rtt, Time now) override;
  void on_packets_lost(std::span<const LostPacket> lost, Time now) override;
  void on_persistent_congestion(Time now) override;
  void on_spurious_congestion_event() override;
  void set_max_datagram_size(std::size_t bytes) override;

  std::uint64_t congestion_window() const override { return cwnd_; }
  std::uint64_t bytes_in_flight() const override { return bytes_in_flight_; }
  std::uint64_t pacing_rate(const RttStats& rtt) const override;
  // UINT64_MAX in Startup (as a loss-based controller's first slow start), then the window
  // the model aims at (cwnd gain x BDP plus the ACK-aggregation allowance).
  std::uint64_t slow_start_threshold() const override;
  bool in_recovery(Time sent_at) const override {
    return recovery_start_ && sent_at <= *recovery_start_;
  }
  std::uint64_t bandwidth_estimate() const override { return bandwidth_.best(); }

  State state() const { return state_; }
  // The propagation-delay estimate (zero before the first sample).
  Duration min_rtt() const { return min_rtt_.value_or(Duration::zero()); }
  double pacing_gain() const;
  std::uint64_t round_count() const { return round_count_; }
  bool full_bandwidth_reached() const { return full_bandwidth_reached_; }

 private:
  std::uint64_t bdp(double gain) const;
  std::uint64_t target_window() const;
  std::uint64_t min_window() const { return kMinWindowPackets * mss_; }
  void update_round();
  void update_bandwidth();
  void update_ack_aggregation(std::uint64_t newly_acked, Time now);
  void update_min_rtt(Duration sample, Time now);
  void check_full_bandwidth();
  void check_drain(Time now);
  void update_probe_bw_cycle(Time now);
  void enter_probe_bw(Time now);
  void update_probe_rtt(Time now);
  void set_window(std::uint64_t newly_acked);
  std::uint64_t window_pacing_rate(const RttStats& rtt) const;
  void update_pacing_rate(const RttStats& rtt);

  std::uint64_t mss_;
  std::uint64_t max_window_;
  std::uint64_t initial_window_;
  std::uint64_t cwnd_;
  std::uint64_t bytes_in_flight_ = 0;
  State state_ = State::startup;
  RateSample sample_;              // of the ACK being processed
  std::uint64_t pacing_rate_ = 0;  // bytes/s; 0 until the first ACK
  bool round_start_ = false;

  // Rounds: a round ends when a packet sent after it began is acknowledged.
  std::uint64_t delivered_ = 0;
  std::uint64_t next_round_delivered_ = 0;
  std::uint64_t round_count_ = 0;

  WindowedMaxFilter bandwidth_{kBandwidthWindowRounds};  // bytes/s
  std::uint64_t full_bandwidth_ = 0;
  int full_bandwidth_count_ = 0;
  bool full_bandwidth_reached_ = false;

  std::optional<Duration> min_rtt_;
  Time min_rtt_stamp_{};
  bool min_rtt_expired_ = false;  // by the ACK being processed

  // ACK aggregation: bytes acknowledged beyond what the estimate explains, as extra window.
  WindowedMaxFilter extra_acked_{kBandwidthWindowRounds};
  std::optional<Time> aggregation_start_;
  std::uint64_t aggregation_acked_ = 0;

  int cycle_phase_ = 0;
  Time cycle_start_{};
  bool lost_in_phase_ = false;

  std::optional<Time> probe_rtt_done_;
  bool probe_rtt_round_done_ = false;

  // Recovery: packet conservation for its first round, the window before it restored after.
  std::optional<Time> recovery_start_;
  bool conserving_ = false;
  std::uint64_t conservation_round_ = 0;
  std::uint64_t prior_cwnd_ = 0;
  struct Undo {
    std::uint64_t cwnd = 0;
    std::optional<Time> recovery_start;
  };
  std::optional<Undo> undo_;
};

}  // namespace rendr::core::recovery
