#pragma once
// The PathTransport of a datagram path (udpflow): both halves of its loss recovery, its
// congestion controller and its pacer, behind the seam core/transport.hpp describes.
//
// How the flow uses it (all sans-I/O, time injected):
//   Sending, per packet the flow builds for this path:
//     - send_allowance() / next_send_time() / probes_owed(): may a packet go now;
//     - next_packet_number(): the number the next packet gets (its header carries it);
//     - while filling it, record in a PacketContent what it carries (add_data for each DATA
//       range, flow-defined control bits, ack_largest if it carries our ACK_RANGES,
//       ack_eliciting unless it holds only ACK_RANGES/PONG-like frames);
//     - on_packet_sent(bytes, content, now) once it is final: returns its packet number.
//       (PathTransport::on_sent, called per frame, does nothing here: packets are counted.)
//   Receiving, per authenticated packet of the peer on this path:
//     - on_packet_received(pn, ack_eliciting, now): duplicate -> drop the packet whole;
//     - ack_due(now) -> put make_ack(now) in the next packet (ack_pending(): may ride along);
//     - on_ack_received(frame, now, retransmits) for every ACK_RANGES that arrives; an
//       invalid outcome is a protocol error on the path.
//   Timers: next_timer() covers loss detection, PTO and the delayed ACK; on_timer(now, q)
//   runs them (lost DATA ranges go to q). After either: take_lost_control() for the control
//   bits to re-send, consecutive_ptos() for liveness.
#include <cstddef>
#include <cstdint>
#include <optional>

#include "core/recovery/config.hpp"
#include "core/recovery/loss_detector.hpp"
#include "core/recovery/pacer.hpp"
#include "core/recovery/received_packets.hpp"
#include "core/transport.hpp"

namespace rendr::core::recovery {

// Per-path figures for stats() (issue 9: packets sent/lost, cwnd, pacing rate, PTO count).
struct DatagramPathStats {
  std::uint64_t packets_sent = 0;
  std::uint64_t packets_acked = 0;
  std::uint64_t packets_lost = 0;
  std::uint64_t spurious_losses = 0;
  std::uint64_t congestion_events = 0;
  std::uint64_t congestion_events_undone = 0;
  std::uint64_t persistent_congestions = 0;
  std::uint64_t packets_received = 0;
  std::uint64_t duplicates_received = 0;
  std::uint64_t pto_count = 0;  // PTOs fired in total
  std::uint32_t consecutive_ptos = 0;
  std::uint64_t congestion_window = 0;     // bytes
  std::uint64_t slow_start_threshold = 0;  // bytes; UINT64_MAX: still in the first slow start
  std::uint64_t bytes_in_flight = 0;
  std::uint64_t pacing_rate = 0;  // bytes/s (0: not pacing)
  // The controller's bottleneck-bandwidth estimate, bytes/s (BBR; 0 for NewReno and CUBIC).
  std::uint64_t bandwidth_estimate = 0;
  std::uint64_t max_datagram_size = 0;
  Duration srtt{};
  Duration rttvar{};
  Duration min_rtt{};
  Duration latest_rtt{};
};

class DatagramTransport final : public PathTransport {
 public:
  explicit DatagramTransport(const RecoveryConfig& config = {});

  // PathTransport.
  TransportKind kind() const override { return TransportKind::datagram; }
  DatagramTransport* datagram() override { return this; }
  // Congestion window minus bytes in flight; at least one datagram while a PTO probe is owed.
  std::uint64_t send_allowance() const override;
  // Pacing: when the next full datagram may leave.
  std::optional<Time> next_send_time() const override;
  void on_sent(std::size_t, bool, Time) override {}
  void on_timer(Time now, RetransmitQueue& lost) override;
  std::optional<Time> next_timer() const override;
  // next_timer's parts: loss detection and PTO; the delayed ACK (once the flow owes the ACK,
  // a carrier that cannot take it yet must not make that deadline spin).
  std::optional<Time> loss_timer() const { return loss_.next_timeout(); }
  std::optional<Time> ack_deadline() const { return received_.ack_deadline(); }

  // Sending.
  PacketNumber next_packet_number() const { return loss_.next_packet_number(); }
  PacketNumber on_packet_sent(std::size_t bytes, const PacketContent& content, Time now);
  std::size_t probes_owed() const { return loss_.probes_owed(); }
  std::size_t max_datagram_size() const { return max_datagram_size_; }
  // The flow had no more to send while the window had room (delivery-rate samples of what it
  // sends next are application-limited).
  void on_app_limited() { loss_.on_app_limited(); }
  // Path-MTU discovery found a new size (windows and bursts follow it).
  void set_max_datagram_size(std::size_t bytes);

  // Receiving.
  ReceivedPackets::Receipt on_packet_received(PacketNumber pn, bool ack_eliciting, Time now);
  // Largest packet number received (truncated packet numbers are expanded against it).
  std::optional<PacketNumber> largest_received() const { return received_.largest(); }
  bool ack_pending() const { return received_.ack_pending(); }
  bool ack_due(Time now) const { return received_.ack_due(now); }
  wire::AckRanges make_ack(Time now, std::size_t max_ranges = wire::AckRanges::kMaxRanges) const {
    return received_.make_ack(now, max_ranges);
  }
  LossDetector::AckOutcome on_ack_received(const wire::AckRanges& ack, Time now,
                                           RetransmitQueue& lost);

  // After on_ack_received / on_timer.
  std::uint32_t take_lost_control() { return loss_.take_lost_control(); }
  std::uint32_t consecutive_ptos() const { return loss_.consecutive_ptos(); }
  std::optional<Time> last_ack_time() const { return loss_.last_ack_time(); }
  std::optional<Time> unacknowledged_since() const { return loss_.unacknowledged_since(); }
  // The probe timeout before backoff.
  Duration pto() const { return loss_.pto_base(); }

  const RttStats& rtt() const { return loss_.rtt(); }
  const CongestionController& controller() const { return loss_.controller(); }
  // The path's handshake round trip, as its first RTT sample (LossDetector::seed_rtt).
  void seed_rtt(Duration sample, Time now) {
    loss_.seed_rtt(sample);
    update_pacer(now);
  }
  DatagramPathStats stats() const;

 private:
  void update_pacer(Time now);

  std::size_t max_datagram_size_;
  ReceivedPackets received_;
  LossDetector loss_;
  Pacer pacer_;
  std::uint64_t packets_received_ = 0;
  std::uint64_t duplicates_received_ = 0;
};

}  // namespace rendr::core::recovery
