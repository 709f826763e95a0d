// Flow::Impl and Flow on datagram paths: address validation (core/address_validation.hpp,
// docs/design.md "Address validation"): where a path's packets go, PATH_CHALLENGE and
// PATH_RESPONSE, the 3x limit before an address is validated, and a client following a
// listener's RETRY.
#include <algorithm>

#include "core/flow.hpp"
#include "core/flow_impl.hpp"
#include "wire/datagram.hpp"

namespace rendr::core {

namespace {

// A handshake packet's header, and an AEAD tag in case the runtime protects it: an upper bound
// of what a packet costs beyond its frames.
constexpr std::size_t kPacketBound =
    wire::datagram::kHandshakeHeaderSize + wire::datagram::kTagSize;

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public API.

void Flow::on_packet(PathId id, std::uint64_t number, std::span<const wire::Frame> frames,
                     const wire::Slice& backing, Time now, const PacketSource& source) {
  Impl& m = *impl_;
  Path* p = m.find(id);
  if (p == nullptr || !p->datagram() || m.finished()) return;
  const auto largest = largest_received_packet(id);
  // RFC 9000 §9.3: only the highest-numbered packet may make an address a candidate, so a
  // replayed old packet from elsewhere starts nothing.
  const bool newest = !largest || number > *largest;
  if (!p->address.current()) {
    // A path whose first address was not given: what it carried so far was proven by the
    // handshake (up) or is the dialed peer (client).
    p->address = AddressValidator(m.config.address_validation);
    p->address.start(source.from, 0, p->state == PathState::up || m.role == Role::client);
  }
  p->address.set_probe_timeout(m.probe_timeout(*p));
  p->address.on_datagram(source.from, source.datagram_bytes, newest, now);
  m.packet_source = source.from;
  on_packet(id, number, frames, backing, now);
  m.packet_source.reset();
}

std::optional<PeerAddress> Flow::peer_address(PathId id) const {
  const Path* p = impl_->find(id);
  if (p == nullptr || !p->datagram()) return std::nullopt;
  return p->address.current();
}

bool Flow::peer_address_validated(PathId id) const {
  const Path* p = impl_->find(id);
  return p != nullptr && p->datagram() && p->address.current_validated();
}

bool Flow::wants_probe(PathId id) const {
  const Impl& m = *impl_;
  const Path* p = m.find(id);
  if (p == nullptr || !p->datagram() || p->state != PathState::up || m.finished()) return false;
  return p->address.wants_probe();
}

std::optional<ProbeTarget> Flow::poll_probe(PathId id, Time now, TransmitBatch& out) {
  Impl& m = *impl_;
  Path* p = m.find(id);
  if (p == nullptr || !p->datagram() || p->state != PathState::up || m.finished())
    return std::nullopt;
  p->address.set_probe_timeout(m.probe_timeout(*p));
  const std::optional<AddressProbe> probe = p->address.next_probe(now);
  if (!probe) return std::nullopt;
  recovery::DatagramTransport& t = m.datagram_transport(*p);
  out.end_packet();
  out.begin_packet(t.next_packet_number(), p->max_packet_payload);
  if (probe->challenge)
    out.push(encode_control(wire::Frame{0, wire::PathChallenge{*probe->challenge}}));
  if (probe->response)
    out.push(encode_control(wire::Frame{0, wire::PathResponse{*probe->response}}));
  out.end_packet();
  p->stats.frames_sent += (probe->challenge ? 1 : 0) + (probe->response ? 1 : 0);
  // Recorded as not ack-eliciting, so not in flight: a challenge to an address that never
  // answers (a spoofed one) must not look like congestion or count towards a PTO. Its
  // acknowledgement is still valid; a lost probe is retried by the validator, not by recovery.
  t.on_packet_sent(AddressValidator::probe_bytes(*probe), recovery::PacketContent{}, now);
  return ProbeTarget{probe->to};
}

bool Flow::on_local_address_moved(PathId id) {
  Impl& m = *impl_;
  Path* p = m.find(id);
  if (p == nullptr || !p->datagram() || p->state != PathState::up || m.role != Role::client ||
      m.finished())
    return false;
  // RFC 9000 §9.2 has the migrating client probe its new path at once; here the server
  // challenges the new address, so one ack-eliciting packet from it starts that.
  p->control.owe(Control::ping);
  return true;
}

AddressValidationStats Flow::address_stats(PathId id) const {
  const Path* p = impl_->find(id);
  if (p == nullptr || !p->datagram()) return {};
  return p->address.stats();
}

// ---------------------------------------------------------------------------------------------
// Frames in.

Duration Flow::Impl::probe_timeout(const Path& p) const {
  if (!p.datagram()) return config.max_ack_delay;
  const recovery::RttStats& rtt = datagram_transport(p).rtt();
  return rtt.smoothed() + std::max<Duration>(4 * rtt.rttvar(), std::chrono::milliseconds(1)) +
         config.max_ack_delay;
}

void Flow::Impl::handle_path_challenge(Path& p, const wire::PathChallenge& c) {
  if (!p.datagram()) return;  // datagram paths only; a stream carrier's peer is its socket's
  p.address.on_challenge(packet_source, c.data);
}

void Flow::Impl::handle_path_response(Path& p, const wire::PathResponse& r) {
  if (!p.datagram()) return;
  // Without a source the response cannot say which address it comes from: it validates
  // nothing (a client's connected socket has one peer, and never challenges).
  if (!packet_source) return;
  p.address.on_response(*packet_source, r.data);
}

void Flow::Impl::handle_retry(Path& p, const wire::Retry& r) {
  // A RETRY is unauthenticated: anything but the answer to our OPEN is ignored (not a
  // protocol error, which an off-path sender could then cause), and only a few are followed.
  if (role != Role::client || !p.datagram() || p.handshake != HandshakeStep::open_sent ||
      retries_followed >= kMaxRetries)
    return;
  ++retries_followed;
  p.retry_token = r.token;
  // The listener kept nothing: our OPEN starts the path's packet numbers afresh.
  renew_transport(p);
  p.handshake = HandshakeStep::open_queued;
}

// ---------------------------------------------------------------------------------------------
// The 3x limit on the flow's own packets.

std::size_t Flow::Impl::unvalidated_send_bytes(const Path& p) const {
  if (!p.datagram() || p.address.current_validated()) return 0;
  if (p.state == PathState::up) {
    // Never happens: a path is up once its PROOF validated its address. Were it so, nothing
    // could be sent without a bound, so everything waits.
    return std::numeric_limits<std::size_t>::max();
  }
  std::size_t frames = 0;
  if (p.control.owes(Control::open_ack)) frames += wire::encoded_size(wire::Frame{0, open_ack});
  if (p.control.owes(Control::join_ack))
    frames += wire::encoded_size(wire::Frame{0, wire::JoinAck{.delivered = wire::kMaxVarint}});
  if (p.control.owes(Control::abort_close))
    frames += wire::encoded_size(wire::Frame{0, wire::Close{wire::CloseCode::aborted, "aborted"}});
  return frames == 0 ? 0 : kPacketBound + frames;
}

bool Flow::Impl::amplification_blocks(const Path& p) const {
  const std::size_t bytes = unvalidated_send_bytes(p);
  return bytes > 0 && p.address.current_allowance() < bytes;
}

bool Flow::Impl::admit_to_current(Path& p) {
  const std::size_t bytes = unvalidated_send_bytes(p);
  if (bytes == 0) return true;
  if (p.address.current_allowance() < bytes) {
    p.address.on_blocked();
    return false;
  }
  p.address.on_sent_to_current(bytes);  // the bound, charged before it goes
  return true;
}

}  // namespace rendr::core
