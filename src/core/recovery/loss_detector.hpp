#pragma once
// RFC 9002 loss detection for one datagram path (one packet-number space): the sent-packet
// map, RTT samples from ACKs, packet- and time-threshold loss, the probe timeout (PTO) and
// persistent congestion. It drives the path's congestion controller and hands lost DATA ranges
// to the flow's retransmit queue.
//
// Adaptations to rendr:
//   - one packet-number space per path and direction, and the path's handshake is complete
//     before it carries numbered packets, so there are no Initial/Handshake spaces and the ACK
//     delay is always honoured (capped at max_ack_delay);
//   - a spurious loss (a packet declared lost is acknowledged later) raises the packet or the
//     time threshold to the reordering seen (at most kMaxPacketThreshold, 2x RTT), and when all
//     losses behind the last congestion event were spurious the window reduction is undone;
//   - the number of consecutive PTOs is exposed so that liveness can declare a path dead after
//     several (instead of a silence floor).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "core/recovery/config.hpp"
#include "core/recovery/congestion_controller.hpp"
#include "core/recovery/delivery_rate.hpp"
#include "core/recovery/rtt_stats.hpp"
#include "core/recovery/sent_packets.hpp"
#include "core/retransmit_queue.hpp"
#include "core/types.hpp"
#include "wire/frame.hpp"

namespace rendr::core::recovery {

class LossDetector {
 public:
  static constexpr std::uint64_t kMaxPacketThreshold = 32;
  static constexpr std::uint32_t kMaxTimeThresholdEighths = 16;  // 2x RTT

  struct AckOutcome {
    bool invalid = false;         // acknowledged a packet number never sent: protocol error
    std::size_t newly_acked = 0;  // packets newly acknowledged (in flight or not)
    std::size_t newly_lost = 0;   // packets declared lost while processing it
    bool rtt_sampled = false;
    std::uint32_t acked_control = 0;          // OR of the acknowledged packets' control bits
    std::optional<PacketNumber> ack_largest;  // largest ACK_RANGES largest acknowledged
  };

  LossDetector(const RecoveryConfig& config, std::unique_ptr<CongestionController> controller);

  // A packet of `bytes` (whole datagram) carrying `content` left at `now`; returns its number.
  PacketNumber on_packet_sent(std::size_t bytes, const PacketContent& content, Time now);
  // The peer's ACK_RANGES for this path. Lost DATA ranges go to `lost`.
  AckOutcome on_ack_received(const wire::AckRanges& ack, Time now, RetransmitQueue& lost);
  // The loss-detection timer fired (call when now >= next_timeout()): declares packets lost by
  // the time threshold, or fires the PTO (then probes_owed() > 0).
  void on_timeout(Time now, RetransmitQueue& lost);
  // When on_timeout is next needed; nullopt: nothing in flight.
  std::optional<Time> next_timeout() const { return timer_; }

  // Ack-eliciting packets the flow should send regardless of the congestion window, after a
  // PTO (one or two; new data if there is any, else a PING). Each ack-eliciting packet sent
  // counts one off.
  std::size_t probes_owed() const { return probes_owed_; }
  // PTOs in a row with no acknowledgement in between (0 after any ACK of a new packet).
  std::uint32_t consecutive_ptos() const { return pto_count_; }
  // Control bits of packets declared lost since the last call (the flow re-sends those).
  std::uint32_t take_lost_control() { return std::exchange(lost_control_, 0); }
  // When an ACK last acknowledged a new packet (liveness); nullopt: never.
  std::optional<Time> last_ack_time() const { return last_ack_time_; }
  // Since when an ack-eliciting packet has waited for an acknowledgement with none arriving:
  // the later of the oldest outstanding packet's send time and the last ACK of a new packet.
  // Unlike the PTO timer (armed from the newest packet), packets sent meanwhile do not move
  // it, so a path that keeps sending into a blackhole is still judged by its first unanswered
  // packet (liveness). Path-MTU probes are left out. nullopt: nothing ack-eliciting is in
  // flight.
  std::optional<Time> unacknowledged_since() const;

  // The current probe timeout duration (without backoff).
  Duration pto_base() const;
  // What the PTO timer waits now (without backoff): pto_base(), less max_ack_delay while enough
  // ack-eliciting packets are outstanding that the peer acknowledges them without delay.
  Duration probe_timeout() const;
  std::uint64_t packet_threshold() const { return packet_threshold_; }
  // Time threshold as a multiple of max(smoothed, latest) RTT, in eighths (9 = 9/8).
  std::uint32_t time_threshold_eighths() const { return time_threshold_eighths_; }

  const RttStats& rtt() const { return rtt_; }
  // A round trip measured outside this path's packets (its handshake), as the first sample:
  // without one the first PTO waits about a second (initial_rtt), longer than a handshake
  // answer may take to be proven.
  void seed_rtt(Duration sample) {
    if (!rtt_.has_sample()) rtt_.update(sample, Duration::zero());
  }
  // The sender has no data to fill the window with: rate samples of the packets sent until
  // what is in flight now is delivered say so (DeliveryRateSampler::on_app_limited).
  void on_app_limited() { delivery_.on_app_limited(controller_->bytes_in_flight()); }
  const DeliveryRateSampler& delivery() const { return delivery_; }
  CongestionController& controller() { return *controller_; }
  const CongestionController& controller() const { return *controller_; }
  PacketNumber next_packet_number() const { return sent_.next_pn(); }
  std::size_t tracked_packets() const { return sent_.size(); }

  struct Counters {
    std::uint64_t packets_sent = 0;
    std::uint64_t packets_acked = 0;
    std::uint64_t packets_lost = 0;
    std::uint64_t spurious_losses = 0;
    std::uint64_t pto_fired = 0;
    std::uint64_t congestion_events = 0;  // recovery periods begun: the window answered a loss
    std::uint64_t congestion_events_undone = 0;
    std::uint64_t persistent_congestion = 0;
    std::uint64_t mtu_probes_lost = 0;  // not in packets_lost: no congestion signal
  };
  const Counters& counters() const { return counters_; }

 private:
  void detect_lost(Time now, RetransmitQueue& lost);
  void declare_lost(SentPacket& p, bool by_time, Time now, RetransmitQueue& lost);
  // A path-MTU probe is lost: reported to the flow (its control bit), forgotten.
  SentPackets::Map::iterator drop_lost_probe(SentPackets::Map::iterator it);
  bool persistent_congestion(const std::vector<LostPacket>& lost_now) const;
  void on_spurious_loss(const SentPacket& p);
  void set_timer();
  Duration loss_delay() const;

  RecoveryConfig config_;
  std::unique_ptr<CongestionController> controller_;
  RttStats rtt_;
  DeliveryRateSampler delivery_;
  SentPackets sent_;
  std::optional<PacketNumber> largest_acked_;
  std::optional<Time> loss_time_;
  std::optional<Time> timer_;
  std::optional<Time> last_eliciting_sent_;
  std::optional<Time> first_rtt_sample_at_;
  std::optional<Time> last_ack_time_;
  std::uint32_t pto_count_ = 0;
  std::size_t probes_owed_ = 0;
  std::uint64_t packet_threshold_;
  std::uint32_t time_threshold_eighths_ = 9;
  std::uint32_t lost_control_ = 0;
  // Spurious-event undo: packets declared lost in the latest congestion event (its number is
  // counters_.congestion_events; 0: none yet), and how many of them were acknowledged since.
  bool event_undoable_ = false;
  std::uint64_t event_lost_ = 0;
  std::uint64_t event_spurious_ = 0;
  Counters counters_;
  // Scratch for one ACK or one detection pass (kept to avoid allocating per ACK).
  std::vector<AckedPacket> acked_scratch_;
  std::vector<LostPacket> lost_scratch_;
};

}  // namespace rendr::core::recovery
