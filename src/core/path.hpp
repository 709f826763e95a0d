#pragma once
// One path of a flow as the core sees it: its state, handshake progress, liveness, what it
// carries and how the schedulers treat it.
#include <cstdint>
#include <map>
#include <optional>

#include "core/address_validation.hpp"
#include "core/control_queue.hpp"
#include "core/message_datagrams.hpp"
#include "core/mtu_prober.hpp"
#include "core/path_flight.hpp"
#include "core/recovery/sent_packets.hpp"
#include "core/retransmit_queue.hpp"
#include "core/rtt.hpp"
#include "core/stats.hpp"
#include "core/transport.hpp"
#include "core/types.hpp"
#include "wire/frame.hpp"

namespace rendr::core {

// How far the judgement of an up path's silence has gone (core/liveness.hpp). Silence past
// the deadline is death only if the peer has been heard on another path since (it is alive;
// this path is not). A peer silent on every path may only be starved of CPU, so then death
// waits for silent_peer_grace. Halfway to the deadline the other paths are pinged, so that an
// alive peer has answered somewhere by then.
enum class SilenceStep : std::uint8_t {
  early,          // less than half the deadline (or nothing awaits an answer)
  corroborating,  // past half the deadline: the other up paths were pinged
  suspect,        // past the deadline, but the peer is silent everywhere
};

// Where a path in PathState::handshaking stands (none in every other state).
enum class HandshakeStep : std::uint8_t {
  none,
  // Client.
  awaiting_open,  // connected while another path carries the flow's OPEN; JOINs after OPEN_ACK
  open_queued,    // the OPEN goes out on this path
  open_sent,      // OPEN sent, waiting for OPEN_ACK
  join_queued,    // the JOIN goes out on this path (the flow is established)
  join_sent,      // JOIN sent, waiting for JOIN_ACK
  // Server: the path carries nothing until the client's PROOF of the flow key arrives on it.
  open_proof_awaited,  // the flow's first path (after the OPEN)
  join_proof_awaited,  // a provisional path after a JOIN for `joins_as`, challenged; it
                       // replaces nothing until its PROOF attaches it
};

struct Path {
  PathId id = kNoPath;
  PathState state = PathState::idle;
  HandshakeStep handshake = HandshakeStep::none;
  ControlQueue control;  // control frames owed on this path
  // Reliable (the carrier repairs loss) or datagram (the core does); see core/transport.hpp.
  TransportKind kind = TransportKind::reliable;
  std::unique_ptr<PathTransport> transport = std::make_unique<ReliableTransport>();
  bool datagram() const { return kind == TransportKind::datagram; }
  // Datagram paths: frame bytes per packet, and what the packet poll_transmit is filling
  // carries (its record goes to the transport's sent-packet map when it closes).
  std::size_t max_packet_payload = 0;
  recovery::PacketContent packet;
  // Datagram paths: the payload a new carrier starts at, the largest datagram its carrier can
  // send with DF set (PathOptions::max_datagram_size; 0: no probing), what the route of the
  // current carrier takes whole (on_path_connected; 0: unknown), and the path-MTU search up to
  // the lower of the two (core/mtu_prober.hpp; renewed with the carrier).
  std::size_t initial_packet_payload = 0;
  std::size_t max_datagram_ceiling = 0;
  std::size_t route_max_datagram = 0;
  std::size_t mtu_search_ceiling() const {
    return route_max_datagram != 0 ? std::min(max_datagram_ceiling, route_max_datagram)
                                   : max_datagram_ceiling;
  }
  // Datagram paths: the congestion controller (PathOptions::congestion; renewed transports
  // keep it).
  std::optional<recovery::CongestionAlgorithm> congestion;
  std::optional<MtuProber> mtu;
  // Datagram paths: the packet of the outstanding PING was acknowledged, so the peer has it
  // even if its PONG is lost (which nothing would detect: a PONG elicits no ACK).
  bool ping_acked = false;
  // Client, datagram paths: the server acknowledged the packet with our PROOF. Until then it
  // drops everything else we send on the path, so each probe (PTO) carries the PROOF again.
  bool proof_acked = false;
  // A poll left DATA waiting for the pacer until then (next_deadline wakes the runtime).
  std::optional<Time> paced_until;
  // Datagram paths: where packets go, and the validation of new peer addresses.
  AddressValidator address;
  // Client, datagram paths: the token of the listener's RETRY, sent before the OPEN again.
  std::optional<wire::RetryToken> retry_token;

  // Client: dialing and handshake.
  Time next_dial{};
  Duration backoff{};
  Time handshake_sent{};
  std::uint64_t join_counter = 0;
  wire::Nonce join_nonce{};
  // Client: the PROOF of the flow key (Control::proof), sent first on this path once the
  // OPEN_ACK or JOIN_ACK on it verified.
  wire::Mac proof{};
  // Server, HandshakeStep::join_proof_awaited: the path id the JOIN asked for, and the fresh
  // challenge its JOIN_ACK carries.
  PathId joins_as = kNoPath;
  wire::Nonce join_challenge{};
  // Client, datagram paths: the OPEN or JOIN in flight goes out again, the same frame, if no
  // answer came by handshake_resend_at (its packet, or the answer's, was lost; the server
  // answers a repeat again). Each resend doubles the wait. resend_handshake: one is owed now.
  std::optional<Time> handshake_resend_at;
  std::uint32_t handshake_resends = 0;
  bool resend_handshake = false;
  bool handshake_in_flight() const {
    return handshake == HandshakeStep::open_sent || handshake == HandshakeStep::join_sent;
  }

  // Liveness.
  Time last_heard{};
  // First ack-eliciting send not yet followed by input; on a datagram path its loss
  // recovery's unacknowledged_since, as Liveness::dead last saw it.
  std::optional<Time> unanswered_since;
  SilenceStep silence = SilenceStep::early;
  // A new silence (or none): the judgement of the previous one no longer applies.
  void restart_silence(std::optional<Time> since) {
    unanswered_since = since;
    silence = SilenceStep::early;
  }
  Time next_ping{};
  bool ping_outstanding = false;
  std::uint64_t ping_id = 0;
  Time ping_sent_at{};
  // The latest time the peer is known to have been running: it answered here a probe of ours
  // (a PING; on a datagram path, the newest packet an ACK newly acknowledged) that left at t,
  // so it read it at t + one one-way delay (min_rtt / 2) or later. Bytes merely heard may
  // have been queued long before (a TCP backlog), so only this corroborates another path's
  // silence (Liveness::peer_heard_elsewhere).
  Time peer_alive_at{};
  // Another path's silence wants corroboration while a PING is outstanding here: its PONG may
  // answer a PING sent too early to count, so a fresh one goes out as soon as it arrives.
  bool corroborating_ping_owed = false;
  // DATA arrived here while another path carries the flow's ACKs. The peer judges this path's
  // liveness by answers on it, so the next ACK is copied here too (Control::ack_copy) —
  // otherwise a path just migrated away from would look silent and be declared dead.
  bool ack_owed = false;
  // Where the DATA (and SKIPs) received here end. On a stream path, ACKs are copied here until
  // one covers it (a datagram path's packets are answered by its own ACK_RANGES): a
  // copy sent while a hole that another path left held the cumulative ACK below this path's
  // DATA answers nothing, and the ACK that covers it once the hole fills would otherwise go
  // only where the flow's ACKs go, leaving this path silent to the peer.
  std::uint64_t data_received_end = 0;
  wire::Pong pong{};  // sent with Control::pong
  RttEstimator rtt;

  // Data carried, to decide whether its death needs a replay.
  std::uint64_t data_sent_end = 0;
  bool fin_sent = false;
  PathFlight flight;  // unacknowledged ranges sent here, delivery rate
  // Whether the outstanding PING has bulk data queued around it (see RttEstimator): our own
  // in flight when it left, and what the peer sent us on this path while it was out.
  bool ping_loaded = false;
  std::uint64_t ping_received_mark = 0;
  // Stream paths deliver in order, so a PONG answers everything sent here before its PING,
  // even what the peer cannot acknowledge yet (bytes above a hole another path left): what the
  // outstanding PING covers, and what answered PINGs covered.
  std::uint64_t ping_data_end = 0;
  bool ping_after_fin = false;
  std::uint64_t answered_data_end = 0;
  bool fin_answered = false;

  // Scheduling.
  std::uint32_t weight = 1;       // bond
  std::uint64_t send_cursor = 0;  // race: next offset to send here (at least the acked offset)
  // Race, datagram paths: DATA this path's lost packets carried, to send again on this path
  // (each path's copy of the stream must be whole: another path's may die with it).
  RetransmitQueue lost_data;
  // Bond: passed over since it last was admitted; one stuck skip is counted per episode.
  // Mutable because wants_transmit (const) is where the scheduler usually decides.
  mutable bool bond_skipping = false;
  // Bond shares (bond_share_admits): bytes this path may still send in the current round, and
  // whether its carrier is idle (its last pull got no DATA; the next kick makes it pull).
  std::int64_t bond_credit = 0;
  bool bond_idle = false;

  // Reliable paths of a packet flow: the largest DATA frame one datagram of the carrier holds
  // (0: none), and the messages sent in datagrams awaiting the carrier's verdict.
  std::size_t message_datagram_size = 0;
  MessageDatagrams message_datagrams;

  PathStats stats;
};

// A flow's paths by id (ordered: every "first" or "lowest" choice is by id).
using PathTable = std::map<PathId, Path>;

}  // namespace rendr::core
