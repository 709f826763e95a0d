#include "core/recovery/datagram_transport.hpp"

#include <algorithm>

namespace rendr::core::recovery {

DatagramTransport::DatagramTransport(const RecoveryConfig& config)
    : max_datagram_size_(config.max_datagram_size),
      received_(config),
      loss_(config, make_congestion_controller(config)),
      pacer_(config.max_datagram_size, config.pacing_burst_packets) {
  update_pacer(Time{});
}

std::uint64_t DatagramTransport::send_allowance() const {
  const CongestionController& cc = loss_.controller();
  const std::uint64_t cwnd = cc.congestion_window();
  const std::uint64_t in_flight = cc.bytes_in_flight();
  const std::uint64_t room = cwnd > in_flight ? cwnd - in_flight : 0;
  // A PTO probe goes out even into a full window (RFC 9002 §7.5).
  if (loss_.probes_owed() > 0) return std::max<std::uint64_t>(room, max_datagram_size_);
  return room;
}

std::optional<Time> DatagramTransport::next_send_time() const {
  // Probes need no exception: a PTO is far longer than the bucket takes to refill a datagram.
  return pacer_.next_send_time();
}

void DatagramTransport::on_timer(Time now, RetransmitQueue& lost) {
  if (const auto due = loss_.next_timeout(); due && now >= *due) {
    loss_.on_timeout(now, lost);
    update_pacer(now);
  }
}

std::optional<Time> DatagramTransport::next_timer() const {
  const std::optional<Time> loss = loss_.next_timeout();
  const std::optional<Time> ack = received_.ack_deadline();
  if (loss && ack) return std::min(*loss, *ack);
  return loss ? loss : ack;
}

PacketNumber DatagramTransport::on_packet_sent(std::size_t bytes, const PacketContent& content,
                                               Time now) {
  if (content.ack_largest) received_.on_ack_sent();
  if (content.ack_eliciting) pacer_.on_sent(bytes, now);
  return loss_.on_packet_sent(bytes, content, now);
}

void DatagramTransport::set_max_datagram_size(std::size_t bytes) {
  if (bytes == 0) return;
  max_datagram_size_ = bytes;
  loss_.controller().set_max_datagram_size(bytes);
  pacer_.set_max_datagram_size(bytes);
}

ReceivedPackets::Receipt DatagramTransport::on_packet_received(PacketNumber pn, bool ack_eliciting,
                                                               Time now) {
  const ReceivedPackets::Receipt r = received_.on_received(pn, ack_eliciting, now);
  if (r == ReceivedPackets::Receipt::duplicate) {
    ++duplicates_received_;
  } else {
    ++packets_received_;
  }
  return r;
}

LossDetector::AckOutcome DatagramTransport::on_ack_received(const wire::AckRanges& ack, Time now,
                                                            RetransmitQueue& lost) {
  const LossDetector::AckOutcome out = loss_.on_ack_received(ack, now, lost);
  if (out.ack_largest) received_.on_ack_acknowledged(*out.ack_largest);
  if (out.newly_acked > 0) update_pacer(now);
  return out;
}

void DatagramTransport::update_pacer(Time now) {
  const CongestionController& cc = loss_.controller();
  pacer_.set_rate(cc.pacing_rate(loss_.rtt()), cc.congestion_window(), now);
}

DatagramPathStats DatagramTransport::stats() const {
  const LossDetector::Counters& c = loss_.counters();
  const CongestionController& cc = loss_.controller();
  const RttStats& rtt = loss_.rtt();
  DatagramPathStats s;
  s.packets_sent = c.packets_sent;
  s.packets_acked = c.packets_acked;
  s.packets_lost = c.packets_lost;
  s.spurious_losses = c.spurious_losses;
  s.congestion_events = c.congestion_events;
  s.congestion_events_undone = c.congestion_events_undone;
  s.persistent_congestions = c.persistent_congestion;
  s.packets_received = packets_received_;
  s.duplicates_received = duplicates_received_;
  s.pto_count = c.pto_fired;
  s.consecutive_ptos = loss_.consecutive_ptos();
  s.congestion_window = cc.congestion_window();
  s.slow_start_threshold = cc.slow_start_threshold();
  s.bytes_in_flight = cc.bytes_in_flight();
  s.pacing_rate = pacer_.rate();
  s.bandwidth_estimate = cc.bandwidth_estimate();
  s.max_datagram_size = max_datagram_size_;
  s.srtt = rtt.smoothed();
  s.rttvar = rtt.rttvar();
  s.min_rtt = rtt.min();
  s.latest_rtt = rtt.latest();
  return s;
}

}  // namespace rendr::core::recovery
