#pragma once
// Flow::Impl: the state of one flow and the steps its public calls are made of. Private to
// src/core. flow.cpp has the public API (frames in and out, the application side);
// handshake.cpp the handshake; flow_timers.cpp next_deadline and on_timer; flow_paths.cpp the path
// lifecycle and the flow's state; flow_frames.cpp the frame handlers, DATA out and mode switches;
// flow_quality.cpp prime's quality switching.
// What is sent is the payload's (payload.hpp), where it goes the scheduler's (scheduler.hpp),
// when a path is dead the liveness judge's (liveness.hpp).
#include <algorithm>
#include <cassert>
#include <deque>
#include <memory>
#include <optional>

#include "core/bond_scheduler.hpp"
#include "core/config.hpp"
#include "core/crypto.hpp"
#include "core/flow.hpp"
#include "core/liveness.hpp"
#include "core/message_payload.hpp"
#include "core/mode_sync.hpp"
#include "core/path.hpp"
#include "core/payload.hpp"
#include "core/peer_follow.hpp"
#include "core/prime_scheduler.hpp"
#include "core/quality_monitor.hpp"
#include "core/race_scheduler.hpp"
#include "core/recovery/datagram_transport.hpp"
#include "core/scheduler.hpp"
#include "core/stream_payload.hpp"

namespace rendr::core {

inline wire::ModeCode to_wire(Mode m) {
  return static_cast<wire::ModeCode>(m);
}
inline Mode from_wire(wire::ModeCode m) {
  return static_cast<Mode>(m);
}

inline OutFrame encode_control(const wire::Frame& frame) {
  OutFrame out;
  const std::size_t n = wire::encode(frame, out.header);
  assert(n != 0 && "control frame larger than OutFrame header");
  out.header_size = static_cast<std::uint8_t>(n);
  return out;
}

struct Flow::Impl {
  FlowConfig config;
  Role role;
  wire::FlowId flow_id{};
  Mode mode;
  FlowState state = FlowState::opening;
  FlowError error = FlowError::none;

  // Handshake material.
  crypto::KeyPair key_pair;
  wire::Nonce client_nonce{};
  wire::Nonce server_nonce{};
  crypto::FlowKey key{};
  bool key_known = false;  // `key` is derived (and, on a client, confirmed by the OPEN_ACK)
  crypto::ReplayWindow join_replay;  // server
  std::uint64_t next_join_counter = 1;
  bool open_sent = false;  // client: an OPEN is in flight on some path
  // Client: the OPEN as first sent; a resend on another path repeats it (but for path_id), so
  // the server can recognise it. Server: the OPEN that created the flow, and its one answer.
  std::optional<wire::Open> open;
  wire::OpenAck open_ack{};
  // Server: the client has proven the key (PROOF). Until then the flow is opening, delivers
  // nothing and ends at authentication_deadline, which a repeated OPEN or a JOIN (a client
  // retrying on another path) extends up to authentication_limit: a replayed OPEN must not
  // keep a flow nobody proved alive for ever.
  bool authenticated = false;
  Time authentication_deadline{};
  Time authentication_limit{};
  PathId next_provisional = kFirstProvisionalPath;
  // Server, unauthenticated: a client retrying on another path has `handshake_timeout` more.
  void extend_authentication(Time now) {
    if (authenticated) return;
    authentication_deadline = std::max(
        authentication_deadline, std::min(now + config.handshake_timeout, authentication_limit));
  }

  PathTable paths;
  PathId next_path_id = 1;
  PathId active = kNoPath;
  PathId last_active = kNoPath;  // the active path before "no path", to count migrations
  bool active_pinned = false;    // server: admin chose the path; do not follow the peer
  std::uint64_t peer_data_end_seen = 0;
  std::uint64_t peer_ack_seen = 0;
  PeerFollow peer_follow;
  std::optional<Time> no_path_since;
  Time last_data{};  // the last DATA received or bytes written by the application

  // What is sent and received: the byte stream, or a packet flow's messages (then `messages`
  // is the same object, for the message calls).
  std::unique_ptr<Payload> payload;
  MessagePayload* messages = nullptr;

  // Close handshake. A side is *done* when its FIN is acknowledged and it has sent an ACK for
  // the peer's whole stream; it then sends CLOSE(normal) ("done") and stays up, re-acknowledging,
  // until the peer's "done" proves the peer has that ACK too, or close_linger passes.
  bool done_notice_pending = false;  // send CLOSE(normal) on the active path
  bool peer_done = false;            // the peer's CLOSE(normal) arrived
  std::optional<Time> done_since;

  // Modes.
  ModeSync mode_sync;
  QualityMonitor quality;
  // Prime quality probe (QualityPolicy::probe_interval): the active path holds new DATA until
  // its flight drains, then sends a PING with nothing queued ahead of it.
  std::optional<Time> probe_drain_since;
  bool probe_ping_sent = false;
  Time next_probe_at{};
  // Where payload goes, one scheduler per mode (scheduler.hpp).
  SchedulerContext scheduling{*payload, paths, active, config, counters, probe_drain_since};
  PrimeScheduler prime{scheduling};
  RaceScheduler race{scheduling};
  BondScheduler bond{scheduling};

  std::deque<Event> events;
  bool readable_signalled = false;
  bool writable_signalled = false;

  FlowStats counters;
  Liveness liveness{config, mode};

  Impl(const FlowConfig& c, Role r) : config(c), role(r), mode(c.mode), payload(make_payload(c)) {
    messages = dynamic_cast<MessagePayload*>(payload.get());
  }

  static std::unique_ptr<Payload> make_payload(const FlowConfig& c) {
    if (c.packet) return std::make_unique<MessagePayload>(c, *c.packet);
    return std::make_unique<StreamPayload>(c);
  }

  // ---- helpers

  bool any_up() const {
    return std::any_of(paths.begin(), paths.end(),
                       [](const auto& kv) { return kv.second.state == PathState::up; });
  }

  Path* find(PathId id) {
    auto it = paths.find(id);
    return it == paths.end() ? nullptr : &it->second;
  }
  const Path* find(PathId id) const {
    auto it = paths.find(id);
    return it == paths.end() ? nullptr : &it->second;
  }

  // One path and nothing to deliver either way for a while: it is pinged at the idle interval,
  // so thousands of idle flows cost their listener little. There is no other path to compare
  // (quality) or fail over to, and new DATA is ack-eliciting, so a dead path is still found fast
  // once there is something to send.
  bool quiet(Time now) const {
    return paths.size() == 1 && payload->acked() == payload->written() &&
           now - last_data >= config.idle_after;
  }

  bool finished() const { return state == FlowState::closed || state == FlowState::failed; }

  void emit(Event::Kind kind, PathId path = kNoPath) { events.push_back(Event{kind, path}); }

  void signal_readable() {
    if (!readable_signalled) {
      readable_signalled = true;
      emit(Event::Kind::readable);
    }
  }
  void signal_writable() {
    if (!writable_signalled) {
      writable_signalled = true;
      emit(Event::Kind::writable);
    }
  }

  // Best up path to carry data: the lowest smoothed RTT, ties by id.
  PathId best_up_path(PathId exclude) const;

  Scheduler& scheduler() {
    switch (mode) {
      case Mode::race:
        return race;
      case Mode::bond:
        return bond;
      case Mode::prime:
        break;
    }
    return prime;
  }
  const Scheduler& scheduler() const { return const_cast<Impl*>(this)->scheduler(); }

  // Everything unacknowledged (and the FIN) goes out again: in prime on the active path, in
  // bond on whichever paths pull. Race needs nothing: every up path sends the whole stream.
  void schedule_replay() { scheduler().replay_unacked(); }

  // What a path that went down carried and the peer has not acknowledged may be lost.
  void recover_from_loss_of(Path& p);

  // The path that carries the flow's ACKs and "done": the active one, or any in race mode.
  bool carries_acks(PathId id) const {
    return id == active || active == kNoPath || mode == Mode::race;
  }

  void set_active(PathId id, MigrateCause cause, Time now);
  // Prime moved off up datagram path `p`: what `p` carried and the peer has not acknowledged
  // goes out again on the active path.
  void recover_from_abandoned(Path& p);
  void update_flow_state(Time now);
  void fail(FlowError e, Time now);

  // Ends the flow: every live carrier is to be closed (a path with a CLOSE still to carry is
  // closed once that CLOSE has been pulled), waiters are woken and the runtime is told.
  void end_flow(FlowState final_state);

  bool done() const {
    // An unconfirmed MODE keeps us open, so both ends end in the same mode.
    return payload->complete() && !mode_sync.unconfirmed();
  }

  void maybe_finish(Time now);

  void close_now() { end_flow(FlowState::closed); }

  // A path stops carrying frames. `notify_runtime`: the core, not the carrier, decided.
  void path_down(Path& p, DownCause cause, Time now, bool notify_runtime);

  // Something sent on `p` still awaits its answer (a PONG, an ACK of its DATA or FIN).
  bool awaits_answer(const Path& p) const {
    return p.ping_outstanding ||
           p.data_sent_end > std::max(payload->acked(), p.answered_data_end) ||
           (p.fin_sent && !payload->fin_acked() && !p.fin_answered);
  }

  // Anything arrived on `p` (after the frame took effect: an ACK or PONG may have answered
  // what was outstanding).
  void mark_heard(Path& p, Time now);
  void path_up(Path& p, Time now);

  // ---- frame handling

  void handle_data(Path& p, const wire::Data& d, const wire::Slice& backing, Time now);
  void handle_ack(Path& p, const wire::Ack& a, std::uint8_t flags, Time now);

  // The peer acknowledged `delivered` by other means than an ACK.
  void acknowledge(std::uint64_t delivered, Time now);

  // The acknowledged offset may have moved: paths, the probe and the writer learn of it.
  void acknowledged(Time now);

  void signal_writable_if_room() {
    if (payload->write_capacity() > 0) signal_writable();
  }

  void handle_fin(Path& p, const wire::Fin& f, Time now);
  void handle_skip(Path& p, const wire::Skip& s, Time now);
  void handle_ping(Path& p, const wire::Ping& ping);
  void handle_pong(Path& p, const wire::Pong& pong, Time now);

  // ---- modes

  // Prime, client: moves to a clearly better path (quality_monitor.hpp); the server follows.
  // Paths are compared by the minimum of their recent unloaded RTT samples (core/rtt.hpp), which
  // neither jitter nor the active path's own queueing moves, and only with enough of them on
  // each side. A busy active path has none, or only old ones: if a standby beats even its
  // loaded RTT it is probed (start_probe) to get some, and it is never left without a sample
  // from just before the decision (QualityMonitor).
  void evaluate_quality(Time now);
  void start_probe(Time now);

  // Once the active path's flight has drained, its next PING is the probe; the drain ends with
  // the probe's PONG or, if the path never drains, after probe_drain_limit.
  void advance_probe(Time now);
  void end_probe();

  // Changes how we send. Nothing already sent is forgotten, so a switch in the middle of a
  // transfer loses, duplicates (to the application) and reorders nothing.
  void enter_mode(Mode next);
  void handle_mode(Path& p, const wire::Mode& frame);
  void apply_peer_mode(Mode wanted);

  // ---- data out

  // Whether the path's transport lets DATA out now (congestion window, pacing; always, for a
  // reliable path). `now` nullopt: whether it will once its pacing time has come.
  bool may_send(const Path& p, std::optional<Time> now) const {
    if (p.transport->send_allowance() == 0) return false;
    const auto at = p.transport->next_send_time();
    return !at || !now || *at <= *now;
  }

  // One poll_transmit's worth of frames for a path.
  struct Batch final : DataSink {
    Impl& flow;
    Path& path;
    Time now;
    TransmitBatch& out;

    Batch(Impl& f, Path& p, Time t, TransmitBatch& o) : flow(f), path(p), now(t), out(o) {}
    bool has_room() const override { return out.room() > 0 && flow.may_send(path, now); }
    std::uint64_t send_data(std::uint64_t from, std::uint64_t to) override {
      return flow.push_data(*this, from, to);
    }
    std::uint64_t resend_data(std::uint64_t from, std::uint64_t to) override {
      if (!flow.payload->resends_lost()) return flow.push_skip(*this, from, to);
      return flow.push_data(*this, from, to);
    }
    void send_fin() override { flow.push_fin(*this); }
  };

  // What a frame in a datagram packet was, so that the packet's loss sends it again
  // (PacketContent::control bits: a Control, or one of these).
  static constexpr std::uint32_t kSentFlowAck = 1u << 16;
  static constexpr std::uint32_t kSentFin = 1u << 17;
  static constexpr std::uint32_t kSentCloseNotice = 1u << 18;
  static constexpr std::uint32_t kSentMtuProbe = 1u << 19;
  // A packet of the path's full size (MtuProber::full_size): black-hole detection's evidence.
  static constexpr std::uint32_t kSentFullSize = 1u << 20;
  static constexpr std::uint32_t sent_bit(Control c) { return 1u << static_cast<unsigned>(c); }

  // Appends a control frame for `p`; `eliciting`: the peer must answer it (liveness clock).
  // `sent`: on a datagram path, what to record in its packet (sent_bit, kSent*).
  void push_control(Path& p, const wire::Frame& frame, bool eliciting, Time now, TransmitBatch& out,
                    std::uint32_t sent = 0);
  // The control frames an up path owes, in priority order (ControlQueue's enum), with the
  // flow's ACK and close notice where this path carries them: PONG, ACK (the flow's, or a copy
  // for this path), the close notice, MODE, PING.
  void write_control(Path& p, Time now, TransmitBatch& out);

  // Appends one DATA frame from [from, to) (at most max_data_payload); returns its end.
  std::uint64_t push_data(Batch& b, std::uint64_t from, std::uint64_t to);
  void push_fin(Batch& b);
  // Unreliable messages: a SKIP for [from, to) where a reliable flow would resend; returns `to`.
  std::uint64_t push_skip(Batch& b, std::uint64_t from, std::uint64_t to);

  // ---- datagram paths (flow_datagram.cpp)

  // A fresh transport for a new carrier of `p` (a datagram path starts a new packet-number space).
  void renew_transport(Path& p);
  recovery::DatagramTransport& datagram_transport(Path& p) {
    return static_cast<recovery::DatagramTransport&>(*p.transport);
  }
  const recovery::DatagramTransport& datagram_transport(const Path& p) const {
    return static_cast<const recovery::DatagramTransport&>(*p.transport);
  }
  // Frame bytes a new packet on `p` may hold: max_packet_payload, or the base size's while
  // probes after a PTO are owed (so that they pass a path whose MTU shrank).
  std::size_t packet_payload(const Path& p) const;
  // Makes sure `out` has a packet open for `p` with `bytes` of room (closing the full one).
  void open_packet(Path& p, std::size_t bytes, Time now, TransmitBatch& out);
  // The open packet is complete: its record goes to the path's sent-packet map.
  void close_packet(Path& p, Time now, TransmitBatch& out);
  // Frame bytes for DATA the open packet (or a new one) can take.
  std::size_t data_room(Path& p, std::uint64_t from, Time now, TransmitBatch& out);
  // After a poll: if the pacer holds back DATA that the window would let out, when it may go.
  void note_pacing(Path& p, Time now);
  // The ACK_RANGES `p` owes, first in its packet.
  void write_ack_ranges(Path& p, Time now, TransmitBatch& out);
  // Path-MTU discovery: a padded probe packet when the prober wants one and the window has
  // room; an acknowledged probe grows the path's packets (max_packet_payload).
  void write_mtu_probe(Path& p, Time now, TransmitBatch& out);
  void mtu_probe_acked(Path& p, Time now);
  // Black-hole detection's verdict: the path's MTU shrank; its packets go back to the base size.
  void mtu_black_hole(Path& p);
  // Frames of one packet (after its number was recorded as received).
  void receive_packet(Path& p, std::span<const wire::Frame> frames, const wire::Slice& backing,
                      Time now);
  void handle_ack_ranges(Path& p, const wire::AckRanges& a, Time now);
  // The transport's verdicts: packets acknowledged, packets lost (what they carried is sent
  // again as the mode says), probes owed (PTO).
  void on_packet_acked(Path& p, const recovery::PacketContent& content);
  void on_packet_lost(Path& p, const recovery::PacketContent& content, Time now);
  void after_recovery(Path& p, Time now);

  // One frame on `id` (on_frame's body, also each frame of a packet). Returns the id the path
  // has after it (a proven JOIN path takes the JOIN's), kNoPath if it is gone.
  PathId receive_frame(PathId id, const wire::Frame& frame, const wire::Slice& backing, Time now);
  // ---- messages in a reliable path's datagrams (flow_message_datagrams.cpp)

  // A datagram the carrier never judged is taken as lost after this long (a few of the path's
  // probe timeouts, at least a second), or once this many records wait behind it.
  Duration unjudged_datagram_age(const Path& p) const;
  static constexpr std::size_t kMaxDatagramRecords = std::size_t{1} << 17;
  void message_datagram_lost(Path& p, const RetransmitQueue::Range& lost);
  void expire_unjudged_datagrams(Path& p, Time now);

  // ---- address validation (flow_address_validation.cpp)

  // Client: RETRYs followed (at most kMaxRetries per flow; more are ignored).
  static constexpr std::uint32_t kMaxRetries = 3;
  std::uint32_t retries_followed = 0;
  // The source of the packet on_packet is handling (nullopt: the runtime gave none).
  std::optional<PeerAddress> packet_source;
  // The probe timeout that spaces a path's challenges.
  Duration probe_timeout(const Path& p) const;
  void handle_path_challenge(Path& p, const wire::PathChallenge& c);
  void handle_path_response(Path& p, const wire::PathResponse& r);
  // Client: a listener under load answered our OPEN with a token; the OPEN goes again with it.
  void handle_retry(Path& p, const wire::Retry& r);
  // Bytes the next poll of `p` would send to an unvalidated current address (a server's
  // handshake answers; everything on an up path, which never has one), 0 if none.
  std::size_t unvalidated_send_bytes(const Path& p) const;
  // Whether the 3x limit holds back `p`'s next poll (poll_transmit also charges what goes).
  bool amplification_blocks(const Path& p) const;
  bool admit_to_current(Path& p);

  // ---- handshake (handshake.cpp)

  // The handshake frames `p` owes: OPEN or JOIN (then true: nothing else goes with it), the
  // client's PROOF, the server's OPEN_ACK or JOIN_ACK.
  bool write_handshake(Path& p, Time now, TransmitBatch& out);
  void handle_open_ack(Path& p, const wire::OpenAck& a, Time now);
  void handle_join_ack(Path& p, const wire::JoinAck& a, Time now);
  // Server: the first frame on a path that waits for the client's PROOF.
  void handle_awaited_proof(Path& p, const wire::Frame& frame, Time now);
  // Server, datagram paths: `frame` on a path that waits for the PROOF repeats the OPEN or JOIN
  // that made it (the client sent it again: our answer or its packet was lost). Then the answer
  // is owed again and true returned; any other frame: false.
  bool answer_repeated_handshake(Path& p, const wire::Frame& frame);
  // Client, datagram paths: an OPEN or JOIN just went out on `p`; when to send it again.
  void schedule_handshake_resend(Path& p, Time now);
  // A path that did not prove the key is closed. After an OPEN nothing was proven at all: the
  // flow fails (the client never sends anything else first; a wrong PROOF means another PSK).
  void refuse_proof(Path& p, Time now);
  // A provisional JOIN path proved itself: it becomes the JOIN's path, replacing an older
  // carrier with that id (the runtime closes it when it sees path_joined).
  void attach_joined(Path& provisional, Time now);
};

}  // namespace rendr::core
