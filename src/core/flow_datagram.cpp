// Flow::Impl on datagram paths (docs/design.md, "Datagram paths"): packets out (numbered, each
// within the path's max payload, as many as the congestion window and pacing allow), packets in
// (duplicates dropped, ACK_RANGES owed), and what the path's loss recovery decides: acknowledged
// packets, lost ones (their DATA to the retransmit queue, their control frames owed again) and
// probes after a PTO.
#include <algorithm>
#include <vector>

#include "core/flow.hpp"
#include "core/flow_impl.hpp"

namespace rendr::core {

namespace {

// Protected packet header (kind 1, dcid 8, pn 4) and AEAD tag (16): what a packet costs on the
// wire beyond its frames (docs/protocol.md), counted against the congestion window.
constexpr std::size_t kPacketOverhead = 13 + 16;
// A DATA frame smaller than this does not start in the rest of a packet: a new packet takes it.
constexpr std::size_t kMinDataBytes = 64;

bool elicits_ack(const wire::Frame& f) {
  // A PROOF, the close notice and the flow's ACK (not a copy) are sent again until
  // acknowledged on a datagram path, so they must be acknowledged promptly too: a lost flow
  // ACK that nothing detects leaves the peer's send buffer and window closed for good.
  return wire::is_ack_eliciting(f) || std::holds_alternative<wire::Proof>(f.body) ||
         std::holds_alternative<wire::Close>(f.body) ||
         (std::holds_alternative<wire::Ack>(f.body) && (f.flags & wire::Ack::kFlagCopy) == 0);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public API.

void Flow::on_packet(PathId id, std::uint64_t number, std::span<const wire::Frame> frames,
                     const wire::Slice& backing, Time now) {
  Impl& m = *impl_;
  Path* p = m.find(id);
  if (p == nullptr || !p->datagram() || m.finished() || frames.empty()) return;
  if (p->state != PathState::up && p->state != PathState::handshaking) return;
  if (p->state == PathState::handshaking && m.role == Role::server &&
      !std::holds_alternative<wire::Proof>(frames.front().body)) {
    // A repeated OPEN or JOIN is answered again. Anything else: the PROOF's packet was lost or
    // overtaken, and what follows it waits for it (unacknowledged, so the client sends all of
    // it again).
    m.answer_repeated_handshake(*p, frames.front());
    return;
  }
  const bool eliciting = std::any_of(frames.begin(), frames.end(), elicits_ack);
  recovery::DatagramTransport& t = m.datagram_transport(*p);
  if (t.on_packet_received(number, eliciting, now) == recovery::ReceivedPackets::Receipt::duplicate)
    return;  // counted by the transport
  m.receive_packet(*p, frames, backing, now);
}

std::optional<std::size_t> Flow::max_datagram_size(PathId id) const {
  const Path* p = impl_->find(id);
  if (p == nullptr || !p->datagram()) return std::nullopt;
  return p->max_packet_payload + kPacketOverhead;
}

std::optional<std::uint64_t> Flow::largest_received_packet(PathId id) const {
  const Impl& m = *impl_;
  const Path* p = m.find(id);
  if (p == nullptr || !p->datagram()) return std::nullopt;
  return m.datagram_transport(*p).largest_received();
}

// ---------------------------------------------------------------------------------------------
// Packets in.

void Flow::Impl::receive_packet(Path& p, std::span<const wire::Frame> frames,
                                const wire::Slice& backing, Time now) {
  PathId id = p.id;
  for (const wire::Frame& frame : frames) {
    id = receive_frame(id, frame, backing, now);
    if (id == kNoPath || finished()) return;
  }
  if (Path* q = find(id)) after_recovery(*q, now);
}

void Flow::Impl::handle_ack_ranges(Path& p, const wire::AckRanges& a, Time now) {
  recovery::DatagramTransport& t = datagram_transport(p);
  const auto outcome = t.on_ack_received(a, now, scheduler().lost_data_queue(p));
  if (outcome.invalid) {
    // It acknowledges a packet never sent: a broken peer.
    ++counters.protocol_errors;
    path_down(p, DownCause::protocol_error, now, true);
    return;
  }
  if ((outcome.acked_control & sent_bit(Control::ping)) != 0) {
    p.ping_acked = true;
    // Another path's silence waits on a fresh PING here: this one is answered, send it now.
    if (p.corroborating_ping_owed) Liveness::ping_answered(p);
  }
  if ((outcome.acked_control & sent_bit(Control::proof)) != 0) p.proof_acked = true;
  if (p.mtu && outcome.newly_acked > 0)
    p.mtu->on_packets_acked((outcome.acked_control & (kSentFullSize | kSentMtuProbe)) != 0);
  if ((outcome.acked_control & kSentMtuProbe) != 0) mtu_probe_acked(p, now);
  if (outcome.rtt_sampled) {
    // The flow's own estimate (quality, bond, best path) follows the path's recovery.
    p.rtt.add_sample(t.rtt().latest(), now, /*unloaded=*/false);
    // The largest acknowledged packet is new and left one sample ago.
    Liveness::probe_answered(p, now - t.rtt().latest());
  }
}

// ---------------------------------------------------------------------------------------------
// Loss recovery's verdicts.

void Flow::Impl::after_recovery(Path& p, Time now) {
  recovery::DatagramTransport& t = datagram_transport(p);
  const std::uint32_t lost = t.take_lost_control();
  if (lost != 0) {
    // The frames of lost packets, as they stand now (a newer one may have replaced them).
    const bool up = p.state == PathState::up;
    if ((lost & sent_bit(Control::proof)) != 0 && role == Role::client)
      p.control.owe(Control::proof);
    if ((lost & sent_bit(Control::pong)) != 0 && up) p.control.owe(Control::pong);
    if ((lost & sent_bit(Control::ack_copy)) != 0 && up) p.control.owe(Control::ack_copy);
    if ((lost & sent_bit(Control::mode_announce)) != 0 && up && mode_sync.unconfirmed())
      p.control.owe(Control::mode_announce);
    if ((lost & sent_bit(Control::mode_answer)) != 0 && up) p.control.owe(Control::mode_answer);
    if ((lost & sent_bit(Control::ping)) != 0 && up) {
      // Its PONG will not come: a new PING measures the path instead.
      p.ping_outstanding = false;
      p.corroborating_ping_owed = false;
      p.control.owe(Control::ping);
    }
    if ((lost & kSentFlowAck) != 0) payload->request_ack(true, now);
    if ((lost & kSentMtuProbe) != 0 && p.mtu) {
      if (const auto size = p.mtu->probe_in_flight_size()) p.mtu->on_probe_lost(*size, now);
    }
    if ((lost & kSentFullSize) != 0 && p.mtu && p.mtu->on_full_size_lost(now)) mtu_black_hole(p);
    if ((lost & kSentCloseNotice) != 0 && done_since) done_notice_pending = true;
    if ((lost & kSentFin) != 0 && payload->fin_offset() && !payload->fin_acked()) {
      for (auto& [qid, q] : paths)
        q.fin_sent = false;  // sent again where the mode sends it
    }
  }
  if (t.ack_due(now)) p.control.owe(Control::ack_ranges);
  // A PTO: probes go out whatever the window, with a PING when there is nothing else.
  if (t.probes_owed() > 0 && p.state == PathState::up) {
    p.control.owe(Control::ping);
    // No ACK comes before the server has our PROOF: no loss is ever declared, only PTOs.
    if (role == Role::client && !p.proof_acked) p.control.owe(Control::proof);
  }
}

// ---------------------------------------------------------------------------------------------
// Packets out.

void Flow::Impl::renew_transport(Path& p) {
  if (!p.datagram()) return;
  // A new carrier may take another route: its MTU is searched again from the start.
  if (p.initial_packet_payload != 0) p.max_packet_payload = p.initial_packet_payload;
  p.mtu.reset();
  if (const std::size_t base = p.max_packet_payload + kPacketOverhead;
      p.mtu_search_ceiling() > base) {
    MtuProbeConfig mc;
    mc.base = base;
    mc.max = p.mtu_search_ceiling();
    p.mtu.emplace(mc);
  }
  recovery::RecoveryConfig rc = config.datagram_recovery;
  rc.max_datagram_size = p.max_packet_payload + kPacketOverhead;
  rc.max_ack_delay = config.max_ack_delay;
  if (p.congestion) rc.congestion = *p.congestion;
  p.transport = std::make_unique<recovery::DatagramTransport>(rc);
  p.packet = recovery::PacketContent{};
  p.proof_acked = false;
  p.handshake_resend_at.reset();
  p.handshake_resends = 0;
  p.resend_handshake = false;
}

void Flow::Impl::schedule_handshake_resend(Path& p, Time now) {
  if (!p.datagram()) return;
  // Before any round trip is known, RFC 9002's initial RTT; once up paths are measured, three
  // times the slowest of them (a new path is rarely much slower, and a needless resend costs
  // one small packet and its answer, which the client ignores).
  Duration base = config.datagram_recovery.initial_rtt;
  Duration slowest = Duration::zero();
  for (const auto& [id, q] : paths) {
    if (q.state == PathState::up && q.rtt.has_sample()) slowest = std::max(slowest, q.rtt.srtt());
  }
  if (slowest > Duration::zero()) base = std::min(base, 3 * slowest + config.max_ack_delay);
  base = std::max(base, config.datagram_recovery.timer_granularity);
  const std::uint32_t shift = std::min<std::uint32_t>(p.handshake_resends, 16);
  p.handshake_resend_at = now + base * (1u << shift);
  ++p.handshake_resends;
}

std::size_t Flow::Impl::packet_payload(const Path& p) const {
  // A PTO on a path whose packets grew: if its MTU shrank, full-size packets vanish and only
  // probes of the base size bring the acknowledgements that reveal it (black-hole detection).
  if (p.mtu && datagram_transport(p).probes_owed() > 0)
    return std::min(p.max_packet_payload, p.initial_packet_payload);
  return p.max_packet_payload;
}

void Flow::Impl::open_packet(Path& p, std::size_t bytes, Time now, TransmitBatch& out) {
  if (out.packet_open() && out.packet_room() >= bytes) return;
  close_packet(p, now, out);
  out.begin_packet(datagram_transport(p).next_packet_number(), packet_payload(p));
}

void Flow::Impl::close_packet(Path& p, Time now, TransmitBatch& out) {
  if (!out.packet_open()) return;
  out.end_packet();
  const std::size_t bytes = out.packets().back().bytes;
  if (p.mtu && !p.packet.mtu_probe && p.mtu->full_size(bytes + kPacketOverhead))
    p.packet.control |= kSentFullSize;
  datagram_transport(p).on_packet_sent(bytes + kPacketOverhead, p.packet, now);
  p.packet = recovery::PacketContent{};
}

std::size_t Flow::Impl::data_room(Path& p, std::uint64_t from, Time now, TransmitBatch& out) {
  // A message is never split: it goes whole into a packet with room for it.
  const std::size_t needed = std::max(kMinDataBytes, payload->unsplittable_size(from));
  if (!out.packet_open() || out.packet_room() < wire::kMaxDataHeader + needed ||
      p.packet.data_full())
    open_packet(p, packet_payload(p), now, out);
  const std::size_t room = out.packet_room();
  // The header's varints are short for small numbers: give the packet's last bytes to the
  // payload when the header for the larger payload still fits.
  std::array<wire::Byte, wire::kMaxDataHeader> header{};
  std::size_t payload = room - wire::kMaxDataHeader;
  const std::size_t larger = room - wire::encode_data_header(from, payload, header);
  if (wire::encode_data_header(from, larger, header) + larger <= room) payload = larger;
  return payload;
}

void Flow::Impl::note_pacing(Path& p, Time now) {
  const auto at = p.transport->next_send_time();
  const bool wants_data = scheduler().wants_data(p);
  const std::uint64_t room = p.transport->send_allowance();
  if (at && *at > now && room > 0 && wants_data) {
    p.paced_until = at;
  } else {
    p.paced_until.reset();
  }
  // Nothing left to send with a datagram's room in the window: the rate the path shows until
  // this flight is delivered is the application's, not the path's.
  if (!wants_data && room >= datagram_transport(p).max_datagram_size())
    datagram_transport(p).on_app_limited();
}

void Flow::Impl::write_mtu_probe(Path& p, Time now, TransmitBatch& out) {
  if (!p.mtu || p.state != PathState::up || out.room() == 0 || !may_send(p, now)) return;
  const std::optional<std::size_t> size = p.mtu->probe_due(now);
  if (!size || *size <= kPacketOverhead + p.max_packet_payload) return;
  // Its own packet of exactly the size probed: a PING (so it is acknowledged), then padding
  // (an extension frame, which every receiver skips). No DATA: a probe that is too big is lost.
  close_packet(p, now, out);
  const std::size_t frames = *size - kPacketOverhead;
  out.begin_packet(datagram_transport(p).next_packet_number(), frames);
  p.packet.mtu_probe = true;
  push_control(p, wire::Frame{0, wire::Ping{0, 0}}, true, now, out, kSentMtuProbe);
  const std::size_t room = out.packet_room();
  for (std::size_t length_bytes : {1, 2, 4}) {
    if (room < 2 + length_bytes) break;
    const std::size_t n = room - 2 - length_bytes;
    if (wire::varint_size(n) != length_bytes) continue;
    OutFrame pad;
    pad.header[0] = wire::kFirstExtensionType;
    pad.header[1] = 0;
    pad.header_size = static_cast<std::uint8_t>(2 + wire::encode_varint(n, pad.header.data() + 2));
    pad.payload = wire::Slice::copy_of(std::vector<wire::Byte>(n, 0));
    out.push(std::move(pad));
    break;
  }
  close_packet(p, now, out);
  p.mtu->on_probe_sent(*size, now);
}

void Flow::Impl::mtu_probe_acked(Path& p, Time now) {
  if (!p.mtu) return;
  const std::optional<std::size_t> size = p.mtu->probe_in_flight_size();
  if (!size) return;
  p.mtu->on_probe_acked(*size, now);
  const std::size_t payload = p.mtu->current() - kPacketOverhead;
  if (payload <= p.max_packet_payload) return;
  // Larger packets from the next one on; the window and pacer count in the new size.
  p.max_packet_payload = payload;
  datagram_transport(p).set_max_datagram_size(p.mtu->current());
}

void Flow::Impl::mtu_black_hole(Path& p) {
  // The lost packets' DATA is already queued again; from now on it goes in packets of the base
  // size, and the prober searches upward from there.
  p.max_packet_payload = p.initial_packet_payload;
  datagram_transport(p).set_max_datagram_size(p.initial_packet_payload + kPacketOverhead);
  ++p.stats.mtu_black_holes;
}

void Flow::Impl::write_ack_ranges(Path& p, Time now, TransmitBatch& out) {
  recovery::DatagramTransport& t = datagram_transport(p);
  const bool due = p.control.take(Control::ack_ranges) || t.ack_due(now);
  if (!due || !t.ack_pending()) return;
  // Every range remembered (highest first), as many as a packet holds: under heavy loss or
  // reordering the sender hears of every gap at once, not of the highest few.
  wire::Frame frame{0, t.make_ack(now)};
  auto& ack = std::get<wire::AckRanges>(frame.body);
  std::size_t size = wire::encoded_size(frame);
  const std::size_t limit = packet_payload(p);
  while (size > limit && ack.ranges.size() > 1) {
    const std::size_t fitting = ack.ranges.size() * limit / size;
    ack.ranges.resize(std::clamp<std::size_t>(fitting, 1, ack.ranges.size() - 1));
    size = wire::encoded_size(frame);
  }
  OutFrame o;
  if (size <= o.header.size()) {
    o.header_size = static_cast<std::uint8_t>(wire::encode(frame, o.header));
  } else {
    // Too long for the header slot: the frame travels as the OutFrame's payload.
    std::vector<wire::Byte> bytes(size);
    if (wire::encode(frame, bytes) != size) return;
    o.payload = wire::Slice::copy_of(bytes);
  }
  if (o.size() == 0 || o.size() > limit) return;
  open_packet(p, o.size(), now, out);
  p.packet.ack_largest = ack.largest();
  out.push(std::move(o));
  ++p.stats.frames_sent;
  // The transport forgets the ACK as owed once this packet is recorded (close_packet).
}

}  // namespace rendr::core
