// The handshake (docs/protocol.md §2, docs/design.md "Handshake and attach security"): a
// flow's creation on both ends, OPEN/OPEN_ACK and JOIN/JOIN_ACK, and the client's PROOF of the
// flow key, which the server waits for before a path carries anything.
#include <algorithm>
#include <array>
#include <utility>

#include "core/flow.hpp"
#include "core/flow_impl.hpp"

namespace rendr::core {

// ---------------------------------------------------------------------------------------------
// Construction.

Flow::Flow(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Flow::~Flow() = default;

std::unique_ptr<Flow> Flow::make_client(const FlowConfig& config, Time now) {
  auto impl = std::make_unique<Impl>(config, Role::client);
  crypto::random_bytes(impl->flow_id);
  crypto::random_bytes(impl->client_nonce);
  impl->state = FlowState::opening;
  impl->authenticated = true;  // the client checks the server's key confirmation instead
  impl->no_path_since = now;
  impl->last_data = now;  // a new flow is not idle yet
  return std::unique_ptr<Flow>(new Flow(std::move(impl)));
}

std::unique_ptr<Flow> Flow::make_server(const FlowConfig& config, const wire::Open& open,
                                        PathId first_path, Time now, wire::Status& status) {
  return make_server(config, open, first_path, now, status, PathOptions{});
}

std::unique_ptr<Flow> Flow::make_server(const FlowConfig& config, const wire::Open& open,
                                        PathId first_path, Time now, wire::Status& status,
                                        const PathOptions& first) {
  if (open.version != wire::kVersion) {
    status = wire::Status::version;
    return nullptr;
  }
  if (first_path == kNoPath || open.path_id == kNoPath || open.path_id >= kFirstProvisionalPath) {
    status = wire::Status::bad_request;
    return nullptr;
  }
  FlowConfig c = config;
  c.mode = from_wire(open.mode);
  // The OPEN says what the flow carries; a kind or option this end does not know (or a packet
  // flow where the listener takes only streams, or the reverse) is refused with a status that says
  // so.
  c.packet.reset();
  if (open.kind == wire::StreamKind::packet && config.accept_packet_flows &&
      known_packet_options(open.options)) {
    c.packet = PacketOptions{(open.options & wire::Open::kOptionUnreliable) == 0,
                             (open.options & wire::Open::kOptionOrdered) != 0};
  } else if (open.kind != wire::StreamKind::stream || !config.accept_stream_flows) {
    status = wire::Status::unsupported_kind;
    return nullptr;
  }
  auto impl = std::make_unique<Impl>(c, Role::server);
  std::array<wire::Byte, 32> shared{};
  if (!impl->key_pair.agree(open.key_share, shared)) {
    status = wire::Status::bad_request;
    return nullptr;
  }
  impl->flow_id = open.flow_id;
  impl->client_nonce = open.nonce;
  crypto::random_bytes(impl->server_nonce);
  impl->key =
      crypto::derive_flow_key(shared, c.psk, impl->client_nonce, impl->server_nonce, impl->flow_id);
  impl->key_known = true;
  impl->payload->raise_peer_limit(open.window);
  impl->state = FlowState::opening;  // until the client's PROOF
  impl->authentication_deadline = now + c.handshake_timeout;
  impl->authentication_limit = now + 2 * c.handshake_timeout;
  impl->last_data = now;  // a new flow is not idle yet
  impl->open = open;
  // Fixed now, so a repeated OPEN gets exactly what the first path gets.
  wire::OpenAck& ack = impl->open_ack;
  ack.status = wire::Status::ok;
  ack.window = impl->payload->open_window();
  ack.key_share = impl->key_pair.public_key();
  ack.nonce = impl->server_nonce;
  ack.confirm =
      crypto::open_ack_confirm(impl->key, impl->flow_id, impl->client_nonce, impl->server_nonce);
  Path& p = impl->paths[first_path];
  p.id = first_path;
  p.kind = first.transport;
  p.max_packet_payload = std::max(first.max_packet_payload, kMinPacketPayload);
  p.initial_packet_payload = p.max_packet_payload;
  p.max_datagram_ceiling = first.max_datagram_size;
  p.congestion = first.congestion;
  impl->renew_transport(p);
  if (first.peer) {
    p.address = AddressValidator(c.address_validation);
    p.address.start(*first.peer, first.peer_datagram_bytes, first.peer_validated);
  }
  p.state = PathState::handshaking;
  p.handshake = HandshakeStep::open_proof_awaited;
  p.handshake_sent = now;
  p.control.owe(Control::open_ack);
  status = wire::Status::ok;
  return std::unique_ptr<Flow>(new Flow(std::move(impl)));
}

// ---------------------------------------------------------------------------------------------
// Server: repeated OPENs and JOINs.

std::optional<wire::OpenAck> Flow::open_ack_for_repeated_open(const wire::Open& open, Time now) {
  Impl& m = *impl_;
  if (m.role != Role::server || m.finished() || !m.open) return std::nullopt;
  wire::Open same_path = open;
  same_path.path_id = m.open->path_id;
  if (!(same_path == *m.open)) return std::nullopt;
  m.extend_authentication(now);
  return m.open_ack;
}

JoinVerdict Flow::on_join(const wire::Join& join, Time now) {
  return on_join(join, now, PathOptions{});
}

JoinVerdict Flow::on_join(const wire::Join& join, Time now, const PathOptions& carrier) {
  Impl& m = *impl_;
  if (m.role != Role::server || m.finished()) return {wire::Status::unknown_flow};
  if (join.version != wire::kVersion) return {wire::Status::version};
  if (join.path_id == kNoPath || join.path_id >= kFirstProvisionalPath)
    return {wire::Status::bad_request};
  const wire::Mac expected =
      crypto::join_mac(m.key, m.flow_id, join.path_id, join.counter, join.nonce);
  if (!crypto::equal(expected, join.mac)) {
    ++m.counters.joins_rejected;
    return {wire::Status::bad_proof};
  }
  if (!m.join_replay.accept(join.counter)) {
    ++m.counters.joins_rejected;
    return {wire::Status::replayed};
  }
  // The MAC may be a recording of a JOIN this server never processed: the path waits for a
  // PROOF over a fresh challenge before it may carry or replace anything.
  const PathId id = m.next_provisional++;
  if (m.next_provisional == 0) m.next_provisional = kFirstProvisionalPath;
  Path& p = m.paths[id];
  p = Path{};
  p.id = id;
  p.kind = carrier.transport;
  p.max_packet_payload = std::max(carrier.max_packet_payload, kMinPacketPayload);
  p.initial_packet_payload = p.max_packet_payload;
  p.max_datagram_ceiling = carrier.max_datagram_size;
  p.congestion = carrier.congestion;
  m.renew_transport(p);
  if (carrier.peer) {
    p.address = AddressValidator(m.config.address_validation);
    p.address.start(*carrier.peer, carrier.peer_datagram_bytes, carrier.peer_validated);
  }
  p.state = PathState::handshaking;
  p.handshake = HandshakeStep::join_proof_awaited;
  p.handshake_sent = now;
  p.joins_as = static_cast<PathId>(join.path_id);
  p.control.owe(Control::join_ack);
  p.join_counter = join.counter;
  p.join_nonce = join.nonce;
  crypto::random_bytes(p.join_challenge);
  m.extend_authentication(now);
  return {wire::Status::ok, id};
}

// ---------------------------------------------------------------------------------------------
// Frames: handshake answers in, handshake frames out.

void Flow::Impl::handle_open_ack(Path& p, const wire::OpenAck& a, Time now) {
  if (role != Role::client || state != FlowState::opening || !p.handshake_in_flight()) {
    ++counters.protocol_errors;
    path_down(p, DownCause::protocol_error, now, true);
    return;
  }
  std::array<wire::Byte, 32> shared{};
  if (a.status != wire::Status::ok || !key_pair.agree(a.key_share, shared)) {
    fail(FlowError::handshake_failed, now);
    return;
  }
  server_nonce = a.nonce;
  key = crypto::derive_flow_key(shared, config.psk, client_nonce, server_nonce, flow_id);
  if (!crypto::equal(a.confirm,
                     crypto::open_ack_confirm(key, flow_id, client_nonce, server_nonce))) {
    // The server derived another key: with X25519 done right, only another PSK does that.
    fail(FlowError::authentication_failed, now);
    return;
  }
  key_known = true;
  payload->raise_peer_limit(a.window);
  p.handshake = HandshakeStep::none;
  p.proof = crypto::open_proof(key, flow_id, client_nonce, server_nonce);
  p.control.owe(Control::proof);
  p.rtt.add_sample(now - p.handshake_sent, now, /*unloaded=*/false);
  if (recovery::DatagramTransport* d = p.transport->datagram())
    d->seed_rtt(now - p.handshake_sent, now);
  state = FlowState::established;
  path_up(p, now);
  emit(Event::Kind::established);
  signal_writable();
  // Paths that connected while OPEN was in flight may now JOIN.
  for (auto& [id, q] : paths) {
    if (q.state == PathState::handshaking && !q.handshake_in_flight() &&
        q.handshake != HandshakeStep::open_queued)
      q.handshake = HandshakeStep::join_queued;
  }
}

void Flow::Impl::handle_join_ack(Path& p, const wire::JoinAck& a, Time now) {
  if (role != Role::client || !p.handshake_in_flight()) {
    ++counters.protocol_errors;
    path_down(p, DownCause::protocol_error, now, true);
    return;
  }
  const wire::Mac expected = crypto::join_ack_mac(key, flow_id, p.id, p.join_counter, p.join_nonce,
                                                  a.status, a.delivered, a.challenge);
  if (a.status != wire::Status::ok || !crypto::equal(a.mac, expected)) {
    ++counters.joins_rejected;
    path_down(p, DownCause::protocol_error, now, true);
    return;
  }
  p.handshake = HandshakeStep::none;
  p.proof = crypto::join_proof(key, flow_id, p.id, p.join_counter, p.join_nonce, a.challenge);
  p.control.owe(Control::proof);
  p.rtt.add_sample(now - p.handshake_sent, now, /*unloaded=*/false);
  if (recovery::DatagramTransport* d = p.transport->datagram())
    d->seed_rtt(now - p.handshake_sent, now);
  ++counters.joins_accepted;
  if (a.delivered <= payload->next_new()) acknowledge(a.delivered, now);
  path_up(p, now);
}

void Flow::Impl::handle_awaited_proof(Path& p, const wire::Frame& frame, Time now) {
  const auto* proof = std::get_if<wire::Proof>(&frame.body);
  const bool after_open = p.handshake == HandshakeStep::open_proof_awaited;
  const wire::Mac expected = after_open
                                 ? crypto::open_proof(key, flow_id, client_nonce, server_nonce)
                                 : crypto::join_proof(key, flow_id, p.joins_as, p.join_counter,
                                                      p.join_nonce, p.join_challenge);
  if (proof == nullptr || !crypto::equal(proof->mac, expected)) {
    refuse_proof(p, now);
    return;
  }
  // The handshake answer went out when its OPEN or JOIN arrived: the PROOF took a round trip.
  if (recovery::DatagramTransport* d = p.transport->datagram())
    d->seed_rtt(now - p.handshake_sent, now);
  // Only the client that received our answer at the path's address knows what the PROOF
  // covers (the OPEN_ACK's nonce, the JOIN_ACK's challenge): the address is validated.
  p.address.on_handshake_proven();
  if (!authenticated) {
    authenticated = true;
    state = FlowState::established;
    emit(Event::Kind::authenticated);
  }
  if (after_open) {
    p.handshake = HandshakeStep::none;
    path_up(p, now);
  } else {
    attach_joined(p, now);
  }
}

bool Flow::Impl::answer_repeated_handshake(Path& p, const wire::Frame& frame) {
  if (const auto* o = std::get_if<wire::Open>(&frame.body)) {
    if (p.handshake != HandshakeStep::open_proof_awaited || !open || !(*o == *open)) return false;
    p.control.owe(Control::open_ack);  // the same answer: fixed when the flow was made
    return true;
  }
  if (const auto* j = std::get_if<wire::Join>(&frame.body)) {
    if (p.handshake != HandshakeStep::join_proof_awaited || j->path_id != p.joins_as ||
        j->counter != p.join_counter || j->nonce != p.join_nonce ||
        !crypto::equal(j->mac, crypto::join_mac(key, flow_id, p.joins_as, j->counter, j->nonce)))
      return false;
    p.control.owe(Control::join_ack);  // the same challenge again
    return true;
  }
  return false;
}

void Flow::Impl::refuse_proof(Path& p, Time now) {
  emit(Event::Kind::authentication_failed, p.id);
  if (p.handshake == HandshakeStep::open_proof_awaited) {
    fail(FlowError::authentication_failed, now);
    return;
  }
  ++counters.joins_rejected;
  path_down(p, DownCause::protocol_error, now, true);
}

void Flow::Impl::attach_joined(Path& provisional, Time now) {
  const PathId id = provisional.joins_as;
  const PathId provisional_id = provisional.id;
  const PathStats stats = provisional.stats;
  // The carrier (and a datagram path's packet-number space, with the PROOF's packet) stays.
  const TransportKind kind = provisional.kind;
  const std::size_t max_packet_payload = provisional.max_packet_payload;
  const std::size_t initial_packet_payload = provisional.initial_packet_payload;
  const std::size_t max_datagram_ceiling = provisional.max_datagram_ceiling;
  const std::optional<recovery::CongestionAlgorithm> congestion = provisional.congestion;
  std::optional<MtuProber> mtu = std::move(provisional.mtu);
  std::unique_ptr<PathTransport> transport = std::move(provisional.transport);
  AddressValidator address = std::move(provisional.address);
  paths.erase(provisional_id);
  if (Path* old = find(id); old != nullptr) path_down(*old, DownCause::replaced, now, false);
  Path& p = paths[id];
  p = Path{};
  p.id = id;
  p.stats = stats;
  p.kind = kind;
  p.max_packet_payload = max_packet_payload;
  p.initial_packet_payload = initial_packet_payload;
  p.max_datagram_ceiling = max_datagram_ceiling;
  p.congestion = congestion;
  p.mtu = std::move(mtu);
  p.transport = std::move(transport);
  p.address = std::move(address);
  ++counters.joins_accepted;
  events.push_back(Event{Event::Kind::path_joined, id, provisional_id});
  path_up(p, now);
}

bool Flow::Impl::write_handshake(Path& p, Time now, TransmitBatch& out) {
  // The JOIN of `p` as recorded when it was first sent (a resend repeats it exactly, so the
  // server recognises it and its replay window does not refuse it).
  auto recorded_join = [&] {
    wire::Join join;
    join.flow_id = flow_id;
    join.path_id = p.id;
    join.counter = p.join_counter;
    join.nonce = p.join_nonce;
    join.mac = crypto::join_mac(key, flow_id, p.id, join.counter, join.nonce);
    return join;
  };
  if (std::exchange(p.resend_handshake, false) && p.handshake_in_flight()) {
    // A datagram path's OPEN or JOIN got no answer within its resend time: the same again.
    // handshake_sent stays the first send's (the handshake timeout counts from it).
    if (p.handshake == HandshakeStep::open_sent && open) {
      wire::Open on_path = *open;
      on_path.path_id = p.id;
      push_control(p, wire::Frame{0, on_path}, false, now, out);
    } else {
      push_control(p, wire::Frame{0, recorded_join()}, false, now, out);
    }
    schedule_handshake_resend(p, now);
    return true;
  }
  if (p.handshake == HandshakeStep::open_queued) {
    if (!open) {
      wire::Open first;
      first.flow_id = flow_id;
      first.mode = to_wire(mode);
      first.window = payload->received_limit();
      if (config.packet) {
        first.kind = wire::StreamKind::packet;
        first.options = to_wire(*config.packet);
      }
      first.key_share = key_pair.public_key();
      first.nonce = client_nonce;
      open = first;
    }
    wire::Open on_path = *open;
    on_path.path_id = p.id;
    // After a RETRY its token goes first, in the same handshake packet (docs/protocol.md §3.16).
    if (p.retry_token && p.datagram())
      push_control(p, wire::Frame{0, wire::Retry{*p.retry_token}}, false, now, out);
    push_control(p, wire::Frame{0, on_path}, false, now, out);
    p.handshake = HandshakeStep::open_sent;
    p.handshake_sent = now;
    schedule_handshake_resend(p, now);
    return true;
  }
  if (p.handshake == HandshakeStep::join_queued && state != FlowState::opening && !finished()) {
    p.join_counter = next_join_counter++;
    crypto::random_bytes(p.join_nonce);
    push_control(p, wire::Frame{0, recorded_join()}, false, now, out);
    p.handshake = HandshakeStep::join_sent;
    p.handshake_sent = now;
    schedule_handshake_resend(p, now);
    return true;
  }
  // A datagram path may lose it: it is ack-eliciting there, and sent again if lost.
  if (p.control.take(Control::proof))
    push_control(p, wire::Frame{0, wire::Proof{p.proof}}, p.datagram(), now, out,
                 sent_bit(Control::proof));
  if (p.control.take(Control::open_ack)) {
    payload->advertised(open_ack.window);
    push_control(p, wire::Frame{0, open_ack}, false, now, out);
  }
  if (p.control.take(Control::join_ack)) {
    wire::JoinAck ack;
    ack.status = wire::Status::ok;
    ack.delivered = payload->delivered();
    ack.challenge = p.join_challenge;
    ack.mac = crypto::join_ack_mac(key, flow_id, p.joins_as, p.join_counter, p.join_nonce,
                                   ack.status, ack.delivered, ack.challenge);
    push_control(p, wire::Frame{0, ack}, false, now, out);
  }
  return false;
}

}  // namespace rendr::core
