#include "core/flow.hpp"

#include <algorithm>
#include <limits>

#include "core/flow_impl.hpp"

namespace rendr::core {

// ---------------------------------------------------------------------------------------------
// Status.

Role Flow::role() const {
  return impl_->role;
}
const wire::FlowId& Flow::flow_id() const {
  return impl_->flow_id;
}
FlowState Flow::state() const {
  return impl_->state;
}
FlowError Flow::error() const {
  return impl_->error;
}
Mode Flow::mode() const {
  return impl_->mode;
}
PathId Flow::active_path() const {
  return impl_->active;
}
std::uint64_t Flow::migration_count() const {
  return impl_->counters.migrations;
}

PathState Flow::path_state(PathId id) const {
  const Path* p = impl_->find(id);
  return p ? p->state : PathState::removed;
}

bool Flow::authenticated() const {
  return impl_->authenticated;
}

std::optional<crypto::FlowKey> Flow::flow_key() const {
  if (!impl_->key_known) return std::nullopt;
  return impl_->key;
}

std::size_t Flow::path_count() const {
  return static_cast<std::size_t>(
      std::count_if(impl_->paths.begin(), impl_->paths.end(), [](const auto& kv) {
        return kv.second.state != PathState::dead && kv.second.state != PathState::removed;
      }));
}

FlowStats Flow::stats(Time now) const {
  const Impl& m = *impl_;
  FlowStats s = m.counters;
  s.flow_id = m.flow_id;
  s.role = m.role;
  s.mode = m.mode;
  s.state = m.state;
  s.active_path = m.active;
  s.bytes_written = m.payload->written();
  s.bytes_acked = m.payload->acked();
  s.bytes_delivered = m.payload->delivered();
  s.send_buffered = m.payload->written() - m.payload->acked();
  s.recv_buffered = m.payload->received_buffered();
  s.recv_memory = m.payload->received_memory();
  s.bond_stuck_skips = m.bond.stuck_skips();
  for (const auto& [id, p] : m.paths) {
    if (p.joins_as != kNoPath) continue;  // provisional: not a path of the flow (yet)
    PathStats ps = p.stats;
    ps.id = id;
    ps.state = p.state;
    ps.active = id == m.active;
    ps.srtt = p.rtt.srtt();
    ps.rttvar = p.rtt.rttvar();
    ps.min_rtt = p.rtt.min_rtt();
    ps.last_heard_age = p.state == PathState::up ? now - p.last_heard : Duration::zero();
    ps.delivery_rate = static_cast<std::uint64_t>(p.flight.delivery_rate());
    ps.in_flight = p.flight.bytes();
    ps.weight = p.weight;
    ps.transport = p.kind;
    if (const recovery::DatagramTransport* t = p.transport->datagram()) {
      const recovery::DatagramPathStats d = t->stats();
      ps.packets_sent = d.packets_sent;
      ps.packets_lost = d.packets_lost;
      ps.packets_received = d.packets_received;
      ps.packets_duplicate = d.duplicates_received;
      ps.congestion_window = d.congestion_window;
      ps.bytes_in_flight = d.bytes_in_flight;
      ps.pacing_rate = d.pacing_rate;
      ps.congestion_control = t->controller().name();
      ps.bandwidth_estimate = d.bandwidth_estimate;
      ps.pto_count = d.pto_count;
      ps.spurious_losses = d.spurious_losses;
      ps.congestion_events = d.congestion_events;
      ps.congestion_events_undone = d.congestion_events_undone;
      ps.persistent_congestions = d.persistent_congestions;
      ps.slow_start_threshold = d.slow_start_threshold == std::numeric_limits<std::uint64_t>::max()
                                    ? 0
                                    : d.slow_start_threshold;
      ps.consecutive_ptos = d.consecutive_ptos;
      ps.max_datagram_size = d.max_datagram_size;
      ps.mtu_ceiling = p.mtu ? p.mtu_search_ceiling() : 0;
      ps.address = p.address.stats();
      ps.pto = t->pto();
    }
    s.paths.push_back(ps);
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Paths.

PathId Flow::add_path(Time now) {
  return add_path(now, 1);
}

PathId Flow::add_path(Time now, std::uint32_t weight) {
  PathOptions options;
  options.weight = weight;
  return add_path(now, options);
}

PathId Flow::add_path(Time now, const PathOptions& options) {
  Impl& m = *impl_;
  if (m.role != Role::client || m.finished()) return kNoPath;
  const PathId id = m.next_path_id++;
  Path& p = m.paths[id];
  p.id = id;
  p.weight = std::max<std::uint32_t>(options.weight, 1);
  p.kind = options.transport;
  p.max_packet_payload = std::max(options.max_packet_payload, kMinPacketPayload);
  p.initial_packet_payload = p.max_packet_payload;
  p.max_datagram_ceiling = options.max_datagram_size;
  p.congestion = options.congestion;
  p.state = PathState::dialing;
  p.next_dial = now;
  m.emit(Event::Kind::dial_path, id);
  return id;
}

bool Flow::set_path_weight(PathId id, std::uint32_t weight) {
  Path* p = impl_->find(id);
  if (p == nullptr) return false;
  p->weight = std::max<std::uint32_t>(weight, 1);
  return true;
}

bool Flow::remove_path(PathId id, Time now) {
  Impl& m = *impl_;
  Path* p = m.find(id);
  if (p == nullptr || p->state == PathState::removed) return false;
  // Keep at least one other path that is (or will be) usable.
  const bool other = std::any_of(m.paths.begin(), m.paths.end(), [&](const auto& kv) {
    return kv.first != id && kv.second.state != PathState::removed &&
           (m.role == Role::client || kv.second.state == PathState::up);
  });
  if (!other) return false;
  const bool was_active = id == m.active;
  m.path_down(*p, DownCause::removed, now, true);
  if (was_active && m.mode == Mode::prime) m.schedule_replay();
  if (m.role == Role::client) m.paths.erase(id);
  return true;
}

void Flow::on_path_connected(PathId id, Time now, std::size_t route_max_datagram) {
  Impl& m = *impl_;
  Path* p = m.find(id);
  if (p == nullptr || m.finished() || p->state != PathState::dialing) {
    m.emit(Event::Kind::close_path, id);  // nobody wants this carrier any more
    return;
  }
  p->state = PathState::handshaking;
  p->handshake_sent = now;  // the handshake timeout also covers waiting for the OPEN_ACK
  p->route_max_datagram = route_max_datagram;
  m.renew_transport(*p);  // a new carrier: a new packet-number space
  if (m.state == FlowState::opening) {
    // One path carries the OPEN; the others wait for its OPEN_ACK, then JOIN.
    p->handshake = m.open_sent ? HandshakeStep::awaiting_open : HandshakeStep::open_queued;
    m.open_sent = true;
  } else {
    p->handshake = HandshakeStep::join_queued;
  }
}

void Flow::on_dial_failed(PathId id, Time now) {
  Impl& m = *impl_;
  Path* p = m.find(id);
  if (p == nullptr || p->state != PathState::dialing) return;
  p->state = PathState::handshaking;  // so path_down applies the backoff uniformly
  m.path_down(*p, DownCause::error, now, false);
}

void Flow::on_path_down(PathId id, DownCause cause, Time now) {
  Impl& m = *impl_;
  Path* p = m.find(id);
  if (p == nullptr || m.finished()) return;
  m.path_down(*p, cause, now, false);
}

bool Flow::migrate(PathId id, Time now) {
  Impl& m = *impl_;
  Path* p = m.find(id);
  if (p == nullptr || p->state != PathState::up || m.finished()) return false;
  if (m.role == Role::server) m.active_pinned = true;
  if (id == m.active) return true;
  m.set_active(id, MigrateCause::explicit_request, now);
  // No replay: the old path is alive and delivers what it carries; if it dies later, its
  // death triggers the replay.
  return true;
}

// ---------------------------------------------------------------------------------------------
// Modes.

SetModeResult Flow::set_mode(Mode mode, Time now) {
  Impl& m = *impl_;
  (void)now;
  if (!mode_switch_legal(m.mode, mode)) return SetModeResult::illegal;
  if (mode == m.mode || m.finished()) return SetModeResult::ok;
  m.enter_mode(mode);
  m.mode_sync.announce();
  for (auto& [id, p] : m.paths)
    p.control.owe_if(Control::mode_announce, p.state == PathState::up);
  return SetModeResult::ok;
}

// ---------------------------------------------------------------------------------------------
// Frames in.

void Flow::on_path_acknowledged(PathId id, Time now) {
  Impl& m = *impl_;
  Path* p = m.find(id);
  if (p == nullptr || p->datagram() || p->state != PathState::up || m.finished()) return;
  m.mark_heard(*p, now);
}

void Flow::on_frame(PathId id, const wire::Frame& frame, const wire::Slice& backing, Time now) {
  Impl& m = *impl_;
  const Path* p = m.find(id);
  // A datagram path's frames come in packets (on_packet).
  if (p == nullptr || p->datagram()) return;
  m.receive_frame(id, frame, backing, now);
}

PathId Flow::Impl::receive_frame(PathId id, const wire::Frame& frame, const wire::Slice& backing,
                                 Time now) {
  Impl& m = *this;
  Path* p = m.find(id);
  if (p == nullptr || m.finished()) return kNoPath;
  if (p->state != PathState::up && p->state != PathState::handshaking) return kNoPath;
  ++p->stats.frames_received;
  p->last_heard = now;

  const bool handshaking = p->state == PathState::handshaking;
  if (handshaking && m.role == Role::server) {
    const bool joining = p->joins_as != kNoPath;
    const PathId joins_as = p->joins_as;
    m.handle_awaited_proof(*p, frame, now);
    // A proven JOIN path carries on under the JOIN's id.
    if (joining) {
      const Path* joined = m.find(joins_as);
      return m.find(id) == nullptr && joined != nullptr && joined->state == PathState::up ? joins_as
                                                                                          : kNoPath;
    }
    return m.find(id) != nullptr ? id : kNoPath;
  }
  if (p->datagram() && !handshaking &&
      (std::holds_alternative<wire::OpenAck>(frame.body) ||
       std::holds_alternative<wire::JoinAck>(frame.body))) {
    return id;  // the answer to a resent OPEN or JOIN, or a duplicated packet: a late copy
  }
  if (const auto* a = std::get_if<wire::OpenAck>(&frame.body)) {
    m.handle_open_ack(*p, *a, now);
    return id;
  }
  if (const auto* a = std::get_if<wire::JoinAck>(&frame.body)) {
    m.handle_join_ack(*p, *a, now);
    return id;
  }
  // On a datagram path a RETRY may come in clear from anyone: it is ignored unless it answers
  // our OPEN. A stream carrier never carries one (a broken peer, below).
  if (const auto* r = std::get_if<wire::Retry>(&frame.body); r != nullptr && p->datagram()) {
    m.handle_retry(*p, *r);
    return id;
  }
  if (handshaking) {
    // Nothing but the handshake answer may arrive before the path is up.
    ++m.counters.protocol_errors;
    m.path_down(*p, DownCause::protocol_error, now, true);
    return kNoPath;
  }
  std::visit(
      [&](const auto& body) {
        using T = std::decay_t<decltype(body)>;
        if constexpr (std::is_same_v<T, wire::Data>) {
          // A packet flow's DATA is one whole message, a stream's never: the peer must agree.
          if (((frame.flags & wire::Data::kFlagMessage) != 0) != (m.messages != nullptr)) {
            ++m.counters.protocol_errors;
          } else {
            m.handle_data(*p, body, backing, now);
          }
        } else if constexpr (std::is_same_v<T, wire::Skip>) {
          m.handle_skip(*p, body, now);
        } else if constexpr (std::is_same_v<T, wire::Ack>) {
          m.handle_ack(*p, body, frame.flags, now);
        } else if constexpr (std::is_same_v<T, wire::Fin>) {
          m.handle_fin(*p, body, now);
        } else if constexpr (std::is_same_v<T, wire::Ping>) {
          m.handle_ping(*p, body);
        } else if constexpr (std::is_same_v<T, wire::Pong>) {
          m.handle_pong(*p, body, now);
        } else if constexpr (std::is_same_v<T, wire::Close>) {
          if (body.code == wire::CloseCode::normal && m.payload->fin_offset()) {
            // The peer is done: it has every byte and the FIN we sent, whatever ACK was lost.
            m.peer_done = true;
            m.payload->set_fin_acked();
            m.acknowledge(*m.payload->fin_offset(), now);
          } else {
            m.fail(body.code == wire::CloseCode::migration_budget_exceeded
                       ? FlowError::migration_budget_exceeded
                       : FlowError::peer_aborted,
                   now);
          }
        } else if constexpr (std::is_same_v<T, wire::Mode>) {
          m.handle_mode(*p, body);
        } else if constexpr (std::is_same_v<T, wire::Extension>) {
          // Ignorable by definition.
        } else if constexpr (std::is_same_v<T, wire::AckRanges>) {
          if (p->datagram()) {
            m.handle_ack_ranges(*p, body, now);
          } else {
            ++m.counters.protocol_errors;  // a stream carrier has no packets to acknowledge
            m.path_down(*p, DownCause::protocol_error, now, true);
          }
        } else if constexpr (std::is_same_v<T, wire::PathChallenge>) {
          m.handle_path_challenge(*p, body);
        } else if constexpr (std::is_same_v<T, wire::PathResponse>) {
          m.handle_path_response(*p, body);
        } else if constexpr (std::is_same_v<T, wire::Proof>) {
          // A datagram path's PROOF is sent again when its packet seems lost: a late copy
          // changes nothing. On a stream carrier it can only be a broken peer.
          if (!p->datagram()) {
            ++m.counters.protocol_errors;
            m.path_down(*p, DownCause::protocol_error, now, true);
          }
        } else if (!p->datagram()) {
          // OPEN / JOIN on an attached path. On a datagram path it is a late copy of one the
          // client sent again (or the network duplicated): nothing to do.
          ++m.counters.protocol_errors;
          m.path_down(*p, DownCause::protocol_error, now, true);
        }
      },
      frame.body);
  // After the frame took effect (an ACK or PONG may have answered what was outstanding).
  Path* q = m.find(id);
  if (q != nullptr && q->state == PathState::up) m.mark_heard(*q, now);
  m.maybe_finish(now);
  return q != nullptr && (q->state == PathState::up || q->state == PathState::handshaking)
             ? id
             : kNoPath;
}

// ---------------------------------------------------------------------------------------------
// Frames out.

bool Flow::wants_transmit(PathId id) const {
  const Impl& m = *impl_;
  const Path* p = m.find(id);
  if (p == nullptr) return false;
  if (m.amplification_blocks(*p)) return false;
  if (p->handshake == HandshakeStep::open_queued || p->control.owes(Control::proof) ||
      (p->resend_handshake && p->handshake_in_flight()) || p->control.owes(Control::open_ack) ||
      p->control.owes(Control::join_ack) || p->control.owes(Control::abort_close))
    return true;
  if (p->handshake == HandshakeStep::join_queued && m.state != FlowState::opening && !m.finished())
    return true;
  if (p->state != PathState::up) return false;
  if (m.finished()) return false;
  if (p->control.owes(Control::pong) || p->control.owes(Control::ack_copy) ||
      p->control.owes(Control::ping) || p->control.owes(Control::ack_ranges))
    return true;
  if (p->control.owes(Control::mode_announce) || p->control.owes(Control::mode_answer)) return true;
  if (m.carries_acks(id) && (m.payload->ack_due_now() || m.done_notice_pending)) return true;
  return m.may_send(*p, std::nullopt) && m.scheduler().wants_data(*p);
}

bool Flow::wants_pull(PathId id) const {
  if (wants_transmit(id)) return true;
  const Impl& m = *impl_;
  const Path* p = m.find(id);
  return p != nullptr && p->state == PathState::up && m.scheduler().learns_from_empty_pull(*p);
}

bool Flow::poll_transmit(PathId id, Time now, TransmitBatch& out) {
  Impl& m = *impl_;
  Path* p = m.find(id);
  if (p == nullptr) return false;
  // An unvalidated peer address gets at most 3x what it sent (RFC 9000 §8.1).
  if (!m.admit_to_current(*p)) return false;
  const std::size_t before = out.frame_count();
  auto push_control = [&](const wire::Frame& f, bool eliciting) {
    m.push_control(*p, f, eliciting, now, out);
  };

  // The handshake first: an OPEN or a JOIN is the only frame of its pull.
  if (m.write_handshake(*p, now, out)) {
    if (p->datagram()) m.close_packet(*p, now, out);
    return true;
  }
  if (p->control.take(Control::abort_close)) {
    push_control(wire::Frame{0, wire::Close{wire::CloseCode::aborted, "aborted"}}, false);
    if (p->datagram()) m.close_packet(*p, now, out);
    m.emit(Event::Kind::close_path, id);
    return true;
  }
  if (p->state != PathState::up || m.finished()) {
    if (p->datagram()) m.close_packet(*p, now, out);
    return out.frame_count() > before;
  }

  if (p->datagram()) m.write_ack_ranges(*p, now, out);
  m.write_control(*p, now, out);
  // A path-MTU probe before DATA: under bulk load the DATA would take all the window's room,
  // and the search (again after a black hole) would wait for the transfer to end.
  if (p->datagram()) m.write_mtu_probe(*p, now, out);
  Impl::Batch batch(m, *p, now, out);
  m.scheduler().fill(*p, batch);
  if (p->datagram()) {
    m.close_packet(*p, now, out);
    m.note_pacing(*p, now);
  }
  m.maybe_finish(now);  // the last ACK may just have gone out
  return out.frame_count() > before;
}

// ---------------------------------------------------------------------------------------------
// Events.

std::optional<Event> Flow::poll_event() {
  Impl& m = *impl_;
  if (m.events.empty()) return std::nullopt;
  Event e = m.events.front();
  m.events.pop_front();
  if (e.kind == Event::Kind::readable) m.readable_signalled = false;
  if (e.kind == Event::Kind::writable) m.writable_signalled = false;
  return e;
}

// ---------------------------------------------------------------------------------------------
// Application side.

std::size_t Flow::write(wire::ConstBytes bytes, Time now) {
  Impl& m = *impl_;
  if (m.finished()) return 0;
  m.last_data = now;
  return m.payload->write(bytes);
}

std::size_t Flow::write_capacity() const {
  const Impl& m = *impl_;
  if (m.finished()) return 0;
  return m.payload->write_capacity();
}

std::size_t Flow::read(wire::MutableBytes out, Time now) {
  Impl& m = *impl_;
  const std::size_t n = m.payload->read(out);
  // Window update once a quarter of the window has opened since the last advertisement.
  if (n > 0 && !m.finished() && m.payload->window_update_due()) m.payload->request_ack(true, now);
  return n;
}

std::size_t Flow::readable_bytes() const {
  return impl_->payload->readable_bytes();
}

bool Flow::eof() const {
  return impl_->payload->eof();
}

void Flow::close(Time now) {
  Impl& m = *impl_;
  if (m.finished() || m.payload->send_closed()) return;
  m.payload->close();
  m.maybe_finish(now);
}

void Flow::abort(Time now) {
  Impl& m = *impl_;
  if (m.finished()) return;
  for (auto& [id, p] : m.paths)
    p.control.owe_if(Control::abort_close, p.state == PathState::up);
  m.fail(FlowError::aborted, now);
}

bool Flow::send_closed() const {
  return impl_->payload->send_closed();
}

// ---------------------------------------------------------------------------------------------
// Packet flows.

// A message of the largest default size rides whole in one default datagram packet.
static_assert(kDefaultMaxMessage + wire::kMaxDataHeader <= kDefaultPacketPayload);

std::optional<PacketOptions> Flow::packet_options() const {
  const Impl& m = *impl_;
  return m.messages != nullptr ? std::optional<PacketOptions>(m.messages->options()) : std::nullopt;
}

MessageSendResult Flow::send_message(wire::ConstBytes message, Time now) {
  Impl& m = *impl_;
  if (m.messages == nullptr || m.finished()) return MessageSendResult::closed;
  const MessageSendResult result = m.messages->send(message);
  if (result == MessageSendResult::ok) {
    m.last_data = now;
    ++m.counters.messages_sent;
  }
  return result;
}

MessageReceiveResult Flow::receive_message(wire::MutableBytes out, Time now) {
  Impl& m = *impl_;
  if (m.messages == nullptr) return {};
  const MessageReceiveResult r = m.messages->receive(out);
  // Reading makes room in the window: the peer learns of it once a quarter has opened.
  if (r.status == MessageReceiveResult::Status::ok && !m.finished() &&
      m.payload->window_update_due())
    m.payload->request_ack(true, now);
  return r;
}

std::optional<std::size_t> Flow::next_message_size() const {
  const Impl& m = *impl_;
  return m.messages != nullptr ? m.messages->next_message_size() : std::nullopt;
}

}  // namespace rendr::core
