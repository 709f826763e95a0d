// Flow::Impl: frames from the peer, DATA and FIN out, and mode switches.
#include <algorithm>

#include "core/flow_impl.hpp"

namespace rendr::core {

void Flow::Impl::handle_data(Path& p, const wire::Data& d, const wire::Slice& backing, Time now) {
  p.stats.bytes_received += d.payload.size();
  p.ack_owed = true;
  last_data = now;
  const std::uint64_t end = d.offset + d.payload.size();
  p.data_received_end = std::max(p.data_received_end, end);
  // In race and bond DATA arrives on every path by design: following it would flap.
  if (role == Role::server && mode == Mode::prime && !active_pinned && p.state == PathState::up &&
      peer_follow.should_follow(PeerFollow::Signal::data, p.id, active, end > peer_data_end_seen)) {
    set_active(p.id, MigrateCause::follow_peer, now);
  }
  peer_data_end_seen = std::max(peer_data_end_seen, end);
  if (payload->on_data(d, backing, counters, now)) signal_readable();
}

void Flow::Impl::handle_ack(Path& p, const wire::Ack& a, std::uint8_t flags, Time now) {
  // A copy says nothing about the peer's active path; nor may it take the advance from the
  // ACK that does.
  if ((flags & wire::Ack::kFlagCopy) == 0) {
    if (role == Role::server && mode == Mode::prime && !active_pinned && p.state == PathState::up &&
        peer_follow.should_follow(PeerFollow::Signal::ack, p.id, active,
                                  a.delivered > peer_ack_seen)) {
      set_active(p.id, MigrateCause::follow_peer, now);
    }
    peer_ack_seen = std::max(peer_ack_seen, a.delivered);
  }
  if (!payload->on_ack(a)) {
    ++counters.protocol_errors;
    return;
  }
  acknowledged(now);
  maybe_finish(now);
}

void Flow::Impl::acknowledge(std::uint64_t delivered, Time now) {
  if (payload->release_to(delivered)) acknowledged(now);
}

void Flow::Impl::acknowledged(Time now) {
  const std::uint64_t base = payload->acked();
  if (base == counters.bytes_acked) return;
  counters.bytes_acked = base;
  for (auto& [id, p] : paths)
    p.flight.on_acked(base, now);
  advance_probe(now);
  signal_writable_if_room();
}

void Flow::Impl::handle_fin(Path& p, const wire::Fin& f, Time now) {
  p.ack_owed = true;  // ack-eliciting: answered on this path too, as DATA is (ack_owed)
  if (payload->on_fin(f.final_offset, counters, now)) signal_readable();
}

void Flow::Impl::handle_skip(Path& p, const wire::Skip& s, Time now) {
  p.ack_owed = true;  // ack-eliciting, as the DATA it stands for
  p.data_received_end = std::max(p.data_received_end, s.offset + s.length);
  last_data = now;
  if (payload->on_skip(s, counters, now)) signal_readable();
}

void Flow::Impl::handle_ping(Path& p, const wire::Ping& ping) {
  p.control.owe(Control::pong);
  p.pong = wire::Pong{ping.id, ping.timestamp};
}

void Flow::Impl::handle_pong(Path& p, const wire::Pong& pong, Time now) {
  if (!liveness.on_pong(p, pong, now)) return;
  if (p.id == active && probe_ping_sent) end_probe();
  advance_probe(now);  // a loaded PING was out when the flight drained
  evaluate_quality(now);
}

void Flow::Impl::enter_mode(Mode next) {
  if (next == mode) return;
  const Mode previous = mode;
  mode = next;
  ++counters.mode_switches;
  quality.reset();
  end_probe();
  for (auto& [id, p] : paths)
    p.bond_skipping = false;
  scheduler().on_enter(previous);
}

void Flow::Impl::handle_mode(Path& p, const wire::Mode& frame) {
  const Mode wanted = from_wire(frame.mode);
  switch (mode_sync.receive(frame.seq)) {
    case ModeSync::Received::next:
      if (mode_switch_legal(mode, wanted)) {
        apply_peer_mode(wanted);
      } else {
        ++counters.protocol_errors;  // ignored; our answer tells the peer the mode we keep
      }
      p.control.owe(Control::mode_answer);
      break;
    case ModeSync::Received::skipping:
      apply_peer_mode(wanted);
      p.control.owe(Control::mode_answer);
      break;
    case ModeSync::Received::repeat:
      p.control.owe(Control::mode_answer);
      break;
    case ModeSync::Received::confirm:
      // Crossing announcements with the same seq: the client's mode wins.
      if (role == Role::server && wanted != mode) {
        apply_peer_mode(wanted);
        p.control.owe(Control::mode_answer);
      }
      break;
    case ModeSync::Received::stale:
      break;
  }
}

void Flow::Impl::apply_peer_mode(Mode wanted) {
  if (wanted == mode) return;
  enter_mode(wanted);
  Event e{Event::Kind::mode_changed};
  e.mode = wanted;
  events.push_back(e);
}

namespace {
// The smallest DATA frame a reliable carrier's budget shrinks one to (see push_data).
constexpr std::size_t kMinReliableDataBytes = 4 * 1024;
}  // namespace

std::uint64_t Flow::Impl::push_data(Batch& b, std::uint64_t from, std::uint64_t to) {
  const bool datagram = b.path.datagram();
  // A reliable carrier asks for what it can put on the wire soon (a QUIC path: its congestion
  // window, 12 KB in slow start). A frame is answered only once it arrived whole, so one larger
  // than that takes several round trips and its silence could outlast the dead-path floor (a
  // false death of a healthy QUIC path in bond): the frame fits the carrier's budget.
  const std::size_t max =
      datagram ? std::min(config.max_data_payload, data_room(b.path, from, b.now, b.out))
               : std::min(config.max_data_payload, std::max(b.out.room(), kMinReliableDataBytes));
  wire::Slice slice = payload->frame_payload(from, to, max);
  const std::uint64_t end = payload->frame_end(from, slice.size());
  OutFrame o;
  o.header_size = static_cast<std::uint8_t>(
      wire::encode_data_header(from, slice.size(), o.header, payload->data_flags()));
  o.payload = std::move(slice);
  b.path.stats.bytes_sent += o.payload.size();
  ++b.path.stats.frames_sent;
  if (datagram) {
    b.path.packet.add_data(from, end);
    b.path.packet.ack_eliciting = true;
  } else {
    b.path.transport->on_sent(o.size(), true, b.now);
    // A packet flow's message goes alone in one of the carrier's datagrams when it fits one
    // (flow_message_datagrams.cpp); a larger one rides the stream, never truncated.
    if (messages != nullptr && o.size() <= b.path.message_datagram_size) {
      o.datagram_id = b.path.message_datagrams.on_sent(from, end, b.now);
      ++b.path.stats.datagrams_sent;
    }
  }
  b.out.push(std::move(o));
  liveness.sent_eliciting(b.path, b.now);
  b.path.data_sent_end = std::max(b.path.data_sent_end, end);
  b.path.flight.on_sent(from, end, b.now);
  return end;
}

std::uint64_t Flow::Impl::push_skip(Batch& b, std::uint64_t from, std::uint64_t to) {
  // Recorded like the DATA it replaces, so its loss or its path's death sends it again.
  OutFrame o = encode_control(wire::Frame{0, wire::Skip{from, to - from}});
  if (b.path.datagram()) {
    open_packet(b.path, o.size(), b.now, b.out);
    b.path.packet.add_data(from, to);
    b.path.packet.ack_eliciting = true;
  } else {
    b.path.transport->on_sent(o.size(), true, b.now);
  }
  b.out.push(std::move(o));
  ++b.path.stats.frames_sent;
  liveness.sent_eliciting(b.path, b.now);
  b.path.data_sent_end = std::max(b.path.data_sent_end, to);
  b.path.flight.on_sent(from, to, b.now);
  return to;
}

void Flow::Impl::push_fin(Batch& b) {
  push_control(b.path, wire::Frame{0, wire::Fin{*payload->fin_offset()}}, true, b.now, b.out,
               kSentFin);
  b.path.fin_sent = true;
}

void Flow::Impl::push_control(Path& p, const wire::Frame& frame, bool eliciting, Time now,
                              TransmitBatch& out, std::uint32_t sent) {
  OutFrame o = encode_control(frame);
  if (p.datagram()) {
    open_packet(p, o.size(), now, out);
    p.packet.control |= sent;
    p.packet.ack_eliciting = p.packet.ack_eliciting || eliciting;
  } else {
    p.transport->on_sent(o.size(), eliciting, now);
  }
  out.push(std::move(o));
  ++p.stats.frames_sent;
  if (eliciting) liveness.sent_eliciting(p, now);
}

void Flow::Impl::write_control(Path& p, Time now, TransmitBatch& out) {
  if (p.control.take(Control::pong))
    push_control(p, wire::Frame{0, p.pong}, false, now, out, sent_bit(Control::pong));
  const bool acks_here = carries_acks(p.id);
  if ((payload->ack_pending() && acks_here) || p.control.owes(Control::ack_copy)) {
    const bool flow_ack = payload->ack_pending() && acks_here;  // not just a copy
    const wire::Ack ack = payload->make_ack();
    // On a path that does not carry our ACKs it is a copy: the peer must not follow it. On a
    // datagram path the flow's ACK elicits one (its loss must be found: it is sent again).
    push_control(p, wire::Frame{acks_here ? std::uint8_t{0} : wire::Ack::kFlagCopy, ack},
                 p.datagram() && acks_here, now, out,
                 flow_ack ? kSentFlowAck : sent_bit(Control::ack_copy));
    payload->ack_sent(ack, flow_ack);
    // A datagram path's packets are answered by its own ACK_RANGES.
    p.ack_owed = !p.datagram() && ack.delivered < p.data_received_end;
    p.control.drop(Control::ack_copy);
    if (flow_ack) {
      // Race: ACKs go on every path, so a dead path never holds back the sender's window.
      for (auto& [qid, q] : paths) {
        if (qid != p.id && (q.ack_owed || mode == Mode::race) && q.state == PathState::up)
          q.control.owe(Control::ack_copy);
      }
    }
    maybe_finish(now);  // this may have been the ACK that makes us done
  }
  if (done_notice_pending && acks_here) {
    // A datagram path may lose it: there it is ack-eliciting, so its loss is found and it is
    // sent again (else the peer would wait out its close_linger).
    push_control(p, wire::Frame{0, wire::Close{wire::CloseCode::normal, "done"}}, p.datagram(), now,
                 out, kSentCloseNotice);
    done_notice_pending = false;
  }
  const bool announcement = p.control.take(Control::mode_announce);
  if (p.control.take(Control::mode_answer) || announcement)
    push_control(p, wire::Frame{0, wire::Mode{mode_sync.seq(), to_wire(mode)}}, announcement, now,
                 out, sent_bit(announcement ? Control::mode_announce : Control::mode_answer));
  if (p.control.take(Control::ping)) {
    push_control(p, wire::Frame{0, liveness.make_ping(p, now)}, true, now, out,
                 sent_bit(Control::ping));
    p.ping_acked = false;
  }
}

}  // namespace rendr::core
