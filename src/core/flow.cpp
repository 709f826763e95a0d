#include "core/flow.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "core/bond_scheduler.hpp"
#include "core/liveness.hpp"
#include "core/mode_sync.hpp"
#include "core/path.hpp"
#include "core/path_flight.hpp"
#include "core/prime_scheduler.hpp"
#include "core/quality_monitor.hpp"
#include "core/race_scheduler.hpp"
#include "core/retransmit_queue.hpp"
#include "core/rtt.hpp"
#include "core/stream_payload.hpp"

namespace rendr::core {

namespace {

wire::ModeCode to_wire(Mode m) {
  return static_cast<wire::ModeCode>(m);
}
Mode from_wire(wire::ModeCode m) {
  return static_cast<Mode>(m);
}

OutFrame encode_control(const wire::Frame& frame) {
  OutFrame out;
  const std::size_t n = wire::encode(frame, out.header);
  assert(n != 0 && "control frame larger than OutFrame header");
  out.header_size = static_cast<std::uint8_t>(n);
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

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
  wire::KeyShare peer_share{};
  crypto::FlowKey key{};
  crypto::ReplayWindow join_replay;  // server
  std::uint64_t next_join_counter = 1;
  bool open_sent = false;  // client: an OPEN is in flight on some path
  // Client: the OPEN as first sent; a resend on another path repeats it (but for path_id), so
  // the server can recognise it. Server: the OPEN that created the flow, and its one answer.
  std::optional<wire::Open> open;
  wire::OpenAck open_ack{};

  std::map<PathId, Path> paths;
  PathId next_path_id = 1;
  PathId active = kNoPath;
  PathId last_active = kNoPath;  // the active path before "no path", to count migrations
  bool active_pinned = false;    // server: admin chose the path; do not follow the peer
  std::uint64_t peer_data_end_seen = 0;
  std::uint64_t peer_ack_seen = 0;
  std::optional<Time> no_path_since;

  // What is sent and received (the byte stream).
  std::unique_ptr<Payload> payload;

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

  Impl(const FlowConfig& c, Role r)
      : config(c), role(r), mode(c.mode), payload(std::make_unique<StreamPayload>(c)) {}

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
  PathId best_up_path(PathId exclude) const {
    PathId best = kNoPath;
    Duration best_rtt = Duration::max();
    for (const auto& [id, p] : paths) {
      if (id == exclude || p.state != PathState::up) continue;
      const Duration r = p.rtt.has_sample() ? p.rtt.srtt() : Duration::max() / 2;
      if (best == kNoPath || r < best_rtt) {
        best = id;
        best_rtt = r;
      }
    }
    return best;
  }

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
  void recover_from_loss_of(Path& p) {
    scheduler().on_path_lost(p);
    p.flight.clear();
  }

  // The path that carries the flow's ACKs and "done": the active one, or any in race mode.
  bool carries_acks(PathId id) const {
    return id == active || active == kNoPath || mode == Mode::race;
  }

  void set_active(PathId id, MigrateCause cause, Time now) {
    if (id != kNoPath) last_active = id;
    if (id == active) return;
    const PathId old = active;
    active = id;
    quality.reset();
    end_probe();
    if (old != kNoPath && id != kNoPath) {
      ++counters.migrations;
      if (cause == MigrateCause::explicit_request) ++counters.migrations_explicit;
      if (cause == MigrateCause::death) ++counters.migrations_death;
      if (cause == MigrateCause::follow_peer) ++counters.migrations_follow;
      if (cause == MigrateCause::quality) ++counters.migrations_quality;
      events.push_back(Event{Event::Kind::migrated, id, old, cause});
    }
    if (Path* p = find(id)) {
      // The new active path gets an immediate ping (fresh RTT) and the pending ACK.
      p->next_ping = now;
      if (payload->ack_pending()) payload->request_ack(true, now);
    }
  }

  void update_flow_state(Time now) {
    if (finished()) return;
    if (state == FlowState::opening) return;
    if (any_up()) {
      state = FlowState::established;
      no_path_since.reset();
    } else {
      if (state != FlowState::migrating) {
        state = FlowState::migrating;
        no_path_since = now;
      }
    }
  }

  void fail(FlowError e, Time now) {
    if (finished()) return;
    error = e;
    end_flow(FlowState::failed);
    (void)now;
  }

  // Ends the flow: every live carrier is to be closed (a path with a CLOSE still to carry is
  // closed once that CLOSE has been pulled), waiters are woken and the runtime is told.
  void end_flow(FlowState final_state) {
    state = final_state;
    for (auto& [id, p] : paths) {
      const bool live = p.state == PathState::up || p.state == PathState::handshaking ||
                        p.state == PathState::dialing;
      if (live && !p.control.owes(Control::abort_close)) emit(Event::Kind::close_path, id);
      p.state = PathState::dead;
    }
    active = kNoPath;
    signal_readable();
    signal_writable();
    emit(Event::Kind::finished);
  }

  bool done() const {
    // An unconfirmed MODE keeps us open, so both ends end in the same mode.
    return payload->complete() && !mode_sync.unconfirmed();
  }

  void maybe_finish(Time now) {
    if (finished() || state == FlowState::opening || !done()) return;
    if (!done_since) {
      done_since = now;
      done_notice_pending = true;
    }
    // Our own "done" goes out first, so the peer can close as well.
    if (peer_done && !done_notice_pending) close_now();
  }

  void close_now() { end_flow(FlowState::closed); }

  // A path stops carrying frames. `notify_runtime`: the core, not the carrier, decided.
  void path_down(Path& p, DownCause cause, Time now, bool notify_runtime) {
    if (p.state == PathState::dead || p.state == PathState::removed) return;
    const bool was_up = p.state == PathState::up;
    if (was_up) ++p.stats.down_count;
    if (notify_runtime) emit(Event::Kind::close_path, p.id);
    if (was_up) recover_from_loss_of(p);
    // So may our last ACK (if it opened the window, the peer would wait for it forever) and
    // our "done".
    if (was_up) payload->request_ack(true, now);
    if (was_up && done_since) done_notice_pending = true;
    if (p.handshake == HandshakeStep::open_queued ||
        (role == Role::client && state == FlowState::opening && p.handshake_in_flight())) {
      // Another connected path carries the OPEN instead.
      open_sent = false;
      for (auto& [qid, q] : paths) {
        if (qid != p.id && q.state == PathState::handshaking && !q.handshake_in_flight() &&
            q.handshake != HandshakeStep::open_queued) {
          q.handshake = HandshakeStep::open_queued;
          q.handshake_sent = now;
          open_sent = true;
          break;
        }
      }
    }
    // What was owed to the old carrier is void, but for the CLOSE of an abort (the flow is
    // over) and a due PING (it goes out as soon as the path is up again).
    const bool abort_close = p.control.owes(Control::abort_close);
    const bool ping = p.control.owes(Control::ping);
    p.handshake = HandshakeStep::none;
    p.control.clear();
    p.control.owe_if(Control::abort_close, abort_close);
    p.control.owe_if(Control::ping, ping);
    p.ping_outstanding = false;
    p.ack_owed = false;
    p.restart_silence(std::nullopt);
    p.fin_sent = false;
    if (role == Role::client && cause != DownCause::removed) {
      p.state = PathState::idle;
      p.backoff = p.backoff == Duration::zero()
                      ? config.redial_initial
                      : std::min<Duration>(p.backoff * 2, config.redial_max);
      p.next_dial = now + p.backoff;
    } else {
      p.state = cause == DownCause::removed ? PathState::removed : PathState::dead;
    }
    if (p.id == active) {
      active = kNoPath;
      active_pinned = false;
      const PathId next = best_up_path(p.id);
      if (next != kNoPath && done_since) {
        active = last_active = next;  // only the "done" notices travel now: nothing to report
      } else if (next != kNoPath) {
        active = p.id;  // so set_active reports old -> new
        set_active(next, MigrateCause::death, now);
        if (mode == Mode::prime) schedule_replay();
      }
    }
    update_flow_state(now);
    if (role == Role::server && p.state == PathState::dead) paths.erase(p.id);
  }

  // Anything arrived on `p` (after the frame took effect: an ACK or PONG may have answered
  // what was outstanding).
  void mark_heard(Path& p, Time now) {
    const bool outstanding = p.ping_outstanding || p.data_sent_end > payload->acked() ||
                             (p.fin_sent && !payload->fin_acked());
    liveness.heard(p, outstanding, paths, now);
  }

  void path_up(Path& p, Time now) {
    const bool first = !any_up();
    p.state = PathState::up;
    p.backoff = Duration::zero();
    ++p.stats.up_count;
    p.last_heard = now;
    p.restart_silence(std::nullopt);
    p.next_ping = now;
    p.ping_outstanding = false;
    // A new carrier: nothing of ours is on it yet.
    p.data_sent_end = 0;
    p.send_cursor = 0;
    p.flight.clear();
    p.bond_skipping = false;
    p.control.owe_if(Control::mode_announce, mode_sync.unconfirmed());
    if (first || active == kNoPath) {
      // Coming back from "no path" onto another path is a migration too.
      active = last_active;
      if (active == kNoPath) active = p.id;
      set_active(p.id, MigrateCause::death, now);
      // Whatever was in flight on dead paths may be lost.
      schedule_replay();
    }
    update_flow_state(now);
  }

  // ---- frame handling

  void handle_data(Path& p, const wire::Data& d, const wire::Slice& backing, Time now) {
    p.stats.bytes_received += d.payload.size();
    p.ack_owed = true;
    const std::uint64_t end = d.offset + d.payload.size();
    // In race and bond DATA arrives on every path by design: following it would flap.
    if (role == Role::server && mode == Mode::prime && !active_pinned && end > peer_data_end_seen &&
        p.id != active && p.state == PathState::up) {
      set_active(p.id, MigrateCause::follow_peer, now);
    }
    peer_data_end_seen = std::max(peer_data_end_seen, end);
    if (payload->on_data(d, backing, counters, now)) signal_readable();
  }

  void handle_ack(Path& p, const wire::Ack& a, Time now) {
    if (role == Role::server && mode == Mode::prime && !active_pinned &&
        a.delivered > peer_ack_seen && p.id != active && p.state == PathState::up) {
      set_active(p.id, MigrateCause::follow_peer, now);
    }
    peer_ack_seen = std::max(peer_ack_seen, a.delivered);
    if (!payload->on_ack(a)) {
      ++counters.protocol_errors;
      return;
    }
    acknowledged(now);
    maybe_finish(now);
  }

  // The peer acknowledged `delivered` by other means than an ACK.
  void acknowledge(std::uint64_t delivered, Time now) {
    if (payload->release_to(delivered)) acknowledged(now);
  }

  // The acknowledged offset may have moved: paths, the probe and the writer learn of it.
  void acknowledged(Time now) {
    const std::uint64_t base = payload->acked();
    if (base == counters.bytes_acked) return;
    counters.bytes_acked = base;
    for (auto& [id, p] : paths)
      p.flight.on_acked(base, now);
    advance_probe(now);
    signal_writable_if_room();
  }

  void signal_writable_if_room() {
    if (payload->write_capacity() > 0) signal_writable();
  }

  void handle_fin(const wire::Fin& f, Time now) {
    if (payload->on_fin(f.final_offset, counters, now)) signal_readable();
  }

  void handle_ping(Path& p, const wire::Ping& ping) {
    p.control.owe(Control::pong);
    p.pong = wire::Pong{ping.id, ping.timestamp};
  }

  void handle_pong(Path& p, const wire::Pong& pong, Time now) {
    if (!liveness.on_pong(p, pong, now)) return;
    if (p.id == active && probe_ping_sent) end_probe();
    advance_probe(now);  // a loaded PING was out when the flight drained
    evaluate_quality(now);
  }

  // ---- modes

  // Prime, client: moves to a clearly better path (quality_monitor.hpp); the server follows.
  // Paths are compared by the minimum of their recent unloaded RTT samples (core/rtt.hpp), which
  // neither jitter nor the active path's own queueing moves, and only with enough of them on
  // each side. A busy active path has none, or only old ones: if a standby beats even its
  // loaded RTT it is probed (start_probe) to get some, and it is never left without a sample
  // from just before the decision (QualityMonitor).
  void evaluate_quality(Time now) {
    if (role != Role::client || mode != Mode::prime || state != FlowState::established) return;
    const Path* current = find(active);
    if (current == nullptr) return;
    const std::size_t needed = std::max<std::size_t>(config.quality.samples_needed, 1);
    PathId candidate = kNoPath;
    RecentRtt best;
    for (const auto& [id, p] : paths) {
      if (id == active || p.state != PathState::up) continue;
      const RecentRtt r = p.rtt.recent_unloaded(now);
      if (r.samples < needed) continue;
      if (candidate == kNoPath || r.min < best.min) {
        candidate = id;
        best = r;
      }
    }
    const RecentRtt mine = current->rtt.recent_unloaded(now);
    if (mine.samples < needed) {
      quality.reset();
      if (candidate != kNoPath && current->rtt.has_sample() &&
          QualityMonitor::clearly_better(best.min, current->rtt.srtt(), config.quality))
        start_probe(now);
      return;
    }
    if (quality.observe(candidate, best.min, mine.min, mine.latest, now, config.quality)) {
      set_active(candidate, MigrateCause::quality, now);  // no replay, as for migrate()
      quality.switched(now);
    } else if (quality.wants_active_sample(now, config.quality)) {
      start_probe(now);  // an idle path drains at once; a busy one pauses new DATA for it
      quality.probing();
    }
  }

  void start_probe(Time now) {
    if (probe_drain_since || now < next_probe_at) return;
    probe_drain_since = now;
    probe_ping_sent = false;
    next_probe_at = now + config.quality.probe_interval;
    advance_probe(now);
  }

  // Once the active path's flight has drained, its next PING is the probe; the drain ends with
  // the probe's PONG or, if the path never drains, after probe_drain_limit.
  void advance_probe(Time now) {
    if (!probe_drain_since) return;
    Path* p = find(active);
    if (p == nullptr || p->state != PathState::up || mode != Mode::prime ||
        now - *probe_drain_since >= config.quality.probe_drain_limit) {
      end_probe();
      return;
    }
    if (!probe_ping_sent && !p->ping_outstanding && !p->control.owes(Control::ping) &&
        p->flight.bytes() <= kUnloadedProbeBytes) {
      p->control.owe(Control::ping);
      probe_ping_sent = true;
    }
  }

  void end_probe() {
    probe_drain_since.reset();
    probe_ping_sent = false;
  }

  // Changes how we send. Nothing already sent is forgotten, so a switch in the middle of a
  // transfer loses, duplicates (to the application) and reorders nothing.
  void enter_mode(Mode next) {
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

  void handle_mode(Path& p, const wire::Mode& frame) {
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

  void apply_peer_mode(Mode wanted) {
    if (wanted == mode) return;
    enter_mode(wanted);
    Event e{Event::Kind::mode_changed};
    e.mode = wanted;
    events.push_back(e);
  }

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
    void send_fin() override { flow.push_fin(*this); }
  };

  // Appends one DATA frame from [from, to) (at most max_data_payload); returns its end.
  std::uint64_t push_data(Batch& b, std::uint64_t from, std::uint64_t to) {
    wire::Slice slice = payload->frame_payload(from, to, config.max_data_payload);
    const std::uint64_t end = from + slice.size();
    OutFrame o;
    o.header_size =
        static_cast<std::uint8_t>(wire::encode_data_header(from, slice.size(), o.header));
    o.payload = std::move(slice);
    b.path.stats.bytes_sent += o.payload.size();
    ++b.path.stats.frames_sent;
    b.path.transport->on_sent(o.size(), true, b.now);
    b.out.push(std::move(o));
    liveness.sent_eliciting(b.path, b.now);
    b.path.data_sent_end = std::max(b.path.data_sent_end, end);
    b.path.flight.on_sent(from, end, b.now);
    return end;
  }

  void push_fin(Batch& b) {
    OutFrame o = encode_control(wire::Frame{0, wire::Fin{*payload->fin_offset()}});
    b.path.transport->on_sent(o.size(), true, b.now);
    b.out.push(std::move(o));
    ++b.path.stats.frames_sent;
    liveness.sent_eliciting(b.path, b.now);
    b.path.fin_sent = true;
  }

  void handle_open_ack(Path& p, const wire::OpenAck& a, Time now) {
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
      fail(FlowError::handshake_failed, now);
      return;
    }
    payload->raise_peer_limit(a.window);
    p.handshake = HandshakeStep::none;
    p.rtt.add_sample(now - p.handshake_sent, now, /*unloaded=*/false);
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

  void handle_join_ack(Path& p, const wire::JoinAck& a, Time now) {
    if (role != Role::client || !p.handshake_in_flight()) {
      ++counters.protocol_errors;
      path_down(p, DownCause::protocol_error, now, true);
      return;
    }
    const wire::Mac expected = crypto::join_ack_mac(key, flow_id, p.id, p.join_counter,
                                                    p.join_nonce, a.status, a.delivered);
    if (a.status != wire::Status::ok || !crypto::equal(a.mac, expected)) {
      ++counters.joins_rejected;
      path_down(p, DownCause::protocol_error, now, true);
      return;
    }
    p.handshake = HandshakeStep::none;
    p.rtt.add_sample(now - p.handshake_sent, now, /*unloaded=*/false);
    ++counters.joins_accepted;
    if (a.delivered <= payload->next_new()) acknowledge(a.delivered, now);
    path_up(p, now);
  }
};

// ---------------------------------------------------------------------------------------------
// Construction.

Flow::Flow(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Flow::~Flow() = default;

std::unique_ptr<Flow> Flow::make_client(const FlowConfig& config, Time now) {
  auto impl = std::make_unique<Impl>(config, Role::client);
  crypto::random_bytes(impl->flow_id);
  crypto::random_bytes(impl->client_nonce);
  impl->state = FlowState::opening;
  impl->no_path_since = now;
  return std::unique_ptr<Flow>(new Flow(std::move(impl)));
}

std::unique_ptr<Flow> Flow::make_server(const FlowConfig& config, const wire::Open& open,
                                        PathId first_path, Time now, wire::Status& status) {
  if (open.version != wire::kVersion) {
    status = wire::Status::version;
    return nullptr;
  }
  if (open.kind != wire::StreamKind::stream || first_path == kNoPath) {
    status = wire::Status::bad_request;
    return nullptr;
  }
  FlowConfig c = config;
  c.mode = from_wire(open.mode);
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
  impl->payload->raise_peer_limit(open.window);
  impl->state = FlowState::established;
  impl->open = open;
  // Fixed now, so a repeated OPEN gets exactly what the first path gets.
  wire::OpenAck& ack = impl->open_ack;
  ack.status = wire::Status::ok;
  ack.window = impl->payload->received_limit();
  ack.key_share = impl->key_pair.public_key();
  ack.nonce = impl->server_nonce;
  ack.confirm =
      crypto::open_ack_confirm(impl->key, impl->flow_id, impl->client_nonce, impl->server_nonce);
  Path& p = impl->paths[first_path];
  p.id = first_path;
  p.control.owe(Control::open_ack);
  impl->path_up(p, now);
  status = wire::Status::ok;
  return std::unique_ptr<Flow>(new Flow(std::move(impl)));
}

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
  s.bond_stuck_skips = m.bond.stuck_skips();
  for (const auto& [id, p] : m.paths) {
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
  Impl& m = *impl_;
  if (m.role != Role::client || m.finished()) return kNoPath;
  const PathId id = m.next_path_id++;
  Path& p = m.paths[id];
  p.id = id;
  p.weight = std::max<std::uint32_t>(weight, 1);
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

void Flow::on_path_connected(PathId id, Time now) {
  Impl& m = *impl_;
  Path* p = m.find(id);
  if (p == nullptr || m.finished() || p->state != PathState::dialing) {
    m.emit(Event::Kind::close_path, id);  // nobody wants this carrier any more
    return;
  }
  p->state = PathState::handshaking;
  p->handshake_sent = now;  // the handshake timeout also covers waiting for the OPEN_ACK
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

std::optional<wire::OpenAck> Flow::open_ack_for_repeated_open(const wire::Open& open) const {
  const Impl& m = *impl_;
  if (m.role != Role::server || m.finished() || !m.open) return std::nullopt;
  wire::Open same_path = open;
  same_path.path_id = m.open->path_id;
  if (!(same_path == *m.open)) return std::nullopt;
  return m.open_ack;
}

JoinVerdict Flow::on_join(const wire::Join& join, Time now) {
  Impl& m = *impl_;
  if (m.role != Role::server || m.finished()) return {wire::Status::unknown_flow};
  if (join.version != wire::kVersion) return {wire::Status::version};
  if (join.path_id == kNoPath || join.path_id > 0xffffffffu) return {wire::Status::bad_request};
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
  const PathId id = static_cast<PathId>(join.path_id);
  if (Path* old = m.find(id); old != nullptr && old->state == PathState::up) {
    // A newer carrier replaces the old one; the runtime closes the old carrier itself.
    m.path_down(*old, DownCause::replaced, now, false);
  }
  Path& p = m.paths[id];
  p = Path{};
  p.id = id;
  p.control.owe(Control::join_ack);
  p.join_counter = join.counter;
  p.join_nonce = join.nonce;
  ++m.counters.joins_accepted;
  m.path_up(p, now);
  return {wire::Status::ok};
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

void Flow::on_frame(PathId id, const wire::Frame& frame, const wire::Slice& backing, Time now) {
  Impl& m = *impl_;
  Path* p = m.find(id);
  if (p == nullptr || m.finished()) return;
  if (p->state != PathState::up && p->state != PathState::handshaking) return;
  ++p->stats.frames_received;
  p->last_heard = now;

  const bool handshaking = p->state == PathState::handshaking;
  if (const auto* a = std::get_if<wire::OpenAck>(&frame.body)) {
    m.handle_open_ack(*p, *a, now);
    return;
  }
  if (const auto* a = std::get_if<wire::JoinAck>(&frame.body)) {
    m.handle_join_ack(*p, *a, now);
    return;
  }
  if (handshaking) {
    // Nothing but the handshake answer may arrive before the path is up.
    ++m.counters.protocol_errors;
    m.path_down(*p, DownCause::protocol_error, now, true);
    return;
  }
  std::visit(
      [&](const auto& body) {
        using T = std::decay_t<decltype(body)>;
        if constexpr (std::is_same_v<T, wire::Data>) {
          m.handle_data(*p, body, backing, now);
        } else if constexpr (std::is_same_v<T, wire::Ack>) {
          m.handle_ack(*p, body, now);
        } else if constexpr (std::is_same_v<T, wire::Fin>) {
          m.handle_fin(body, now);
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
        } else {
          // OPEN / JOIN on an attached path.
          ++m.counters.protocol_errors;
          m.path_down(*p, DownCause::protocol_error, now, true);
        }
      },
      frame.body);
  // After the frame took effect (an ACK or PONG may have answered what was outstanding).
  if (Path* q = m.find(id); q != nullptr && q->state == PathState::up) m.mark_heard(*q, now);
  m.maybe_finish(now);
}

// ---------------------------------------------------------------------------------------------
// Frames out.

bool Flow::wants_transmit(PathId id) const {
  const Impl& m = *impl_;
  const Path* p = m.find(id);
  if (p == nullptr) return false;
  if (p->handshake == HandshakeStep::open_queued || p->control.owes(Control::open_ack) ||
      p->control.owes(Control::join_ack) || p->control.owes(Control::abort_close))
    return true;
  if (p->handshake == HandshakeStep::join_queued && m.state != FlowState::opening && !m.finished())
    return true;
  if (p->state != PathState::up) return false;
  if (m.finished()) return false;
  if (p->control.owes(Control::pong) || p->control.owes(Control::ack_copy) ||
      p->control.owes(Control::ping))
    return true;
  if (p->control.owes(Control::mode_announce) || p->control.owes(Control::mode_answer)) return true;
  if (m.carries_acks(id) && (m.payload->ack_due_now() || m.done_notice_pending)) return true;
  return m.may_send(*p, std::nullopt) && m.scheduler().wants_data(*p);
}

bool Flow::poll_transmit(PathId id, Time now, TransmitBatch& out) {
  Impl& m = *impl_;
  Path* p = m.find(id);
  if (p == nullptr) return false;
  const std::size_t before = out.frame_count();
  auto push_control = [&](const wire::Frame& f, bool eliciting) {
    OutFrame o = encode_control(f);
    p->transport->on_sent(o.size(), eliciting, now);
    out.push(std::move(o));
    ++p->stats.frames_sent;
    if (eliciting) m.liveness.sent_eliciting(*p, now);
  };

  // Handshake.
  if (p->handshake == HandshakeStep::open_queued) {
    if (!m.open) {
      wire::Open first;
      first.flow_id = m.flow_id;
      first.mode = to_wire(m.mode);
      first.window = m.payload->received_limit();
      first.key_share = m.key_pair.public_key();
      first.nonce = m.client_nonce;
      m.open = first;
    }
    wire::Open open = *m.open;
    open.path_id = id;
    push_control(wire::Frame{0, open}, false);
    p->handshake = HandshakeStep::open_sent;
    p->handshake_sent = now;
    return true;
  }
  if (p->handshake == HandshakeStep::join_queued && m.state != FlowState::opening &&
      !m.finished()) {
    wire::Join join;
    join.flow_id = m.flow_id;
    join.path_id = id;
    join.counter = m.next_join_counter++;
    crypto::random_bytes(join.nonce);
    join.mac = crypto::join_mac(m.key, m.flow_id, id, join.counter, join.nonce);
    p->join_counter = join.counter;
    p->join_nonce = join.nonce;
    push_control(wire::Frame{0, join}, false);
    p->handshake = HandshakeStep::join_sent;
    p->handshake_sent = now;
    return true;
  }
  if (p->control.take(Control::open_ack)) {
    m.payload->advertised(m.open_ack.window);
    push_control(wire::Frame{0, m.open_ack}, false);
  }
  if (p->control.take(Control::join_ack)) {
    wire::JoinAck ack;
    ack.status = wire::Status::ok;
    ack.delivered = m.payload->delivered();
    ack.mac = crypto::join_ack_mac(m.key, m.flow_id, id, p->join_counter, p->join_nonce, ack.status,
                                   ack.delivered);
    push_control(wire::Frame{0, ack}, false);
  }
  if (p->control.take(Control::abort_close)) {
    push_control(wire::Frame{0, wire::Close{wire::CloseCode::aborted, "aborted"}}, false);
    m.emit(Event::Kind::close_path, id);
    return true;
  }
  if (p->state != PathState::up || m.finished()) return out.frame_count() > before;

  if (p->control.take(Control::pong)) push_control(wire::Frame{0, p->pong}, false);
  const bool carries_acks = m.carries_acks(id);
  if ((m.payload->ack_pending() && carries_acks) || p->control.owes(Control::ack_copy)) {
    const bool flow_ack = m.payload->ack_pending() && carries_acks;  // not just a copy
    const wire::Ack ack = m.payload->make_ack();
    push_control(wire::Frame{0, ack}, false);
    m.payload->ack_sent(ack, flow_ack);
    p->ack_owed = false;
    p->control.drop(Control::ack_copy);
    if (flow_ack) {
      // Race: ACKs go on every path, so a dead path never holds back the sender's window.
      for (auto& [qid, q] : m.paths) {
        if (qid != id && (q.ack_owed || m.mode == Mode::race) && q.state == PathState::up)
          q.control.owe(Control::ack_copy);
      }
    }
    m.maybe_finish(now);  // this may have been the ACK that makes us done
  }
  if (m.done_notice_pending && carries_acks) {
    push_control(wire::Frame{0, wire::Close{wire::CloseCode::normal, "done"}}, false);
    m.done_notice_pending = false;
  }
  const bool announcement = p->control.take(Control::mode_announce);
  if (p->control.take(Control::mode_answer) || announcement)
    push_control(wire::Frame{0, wire::Mode{m.mode_sync.seq(), to_wire(m.mode)}}, announcement);
  if (p->control.take(Control::ping))
    push_control(wire::Frame{0, m.liveness.make_ping(*p, now)}, true);

  Impl::Batch batch(m, *p, now, out);
  m.scheduler().fill(*p, batch);
  m.maybe_finish(now);  // the last ACK may just have gone out
  return out.frame_count() > before;
}

// ---------------------------------------------------------------------------------------------
// Time.

std::optional<Time> Flow::next_deadline() const {
  const Impl& m = *impl_;
  if (m.finished()) return std::nullopt;
  std::optional<Time> t;
  auto consider = [&](Time x) {
    if (!t || x < *t) t = x;
  };
  if (auto due = m.payload->ack_timer()) consider(*due);
  if (m.no_path_since) consider(*m.no_path_since + m.config.migration_budget);
  if (m.done_since) consider(*m.done_since + m.config.close_linger);
  if (auto due = m.quality.deadline(m.config.quality)) consider(*due);
  if (m.probe_drain_since) consider(*m.probe_drain_since + m.config.quality.probe_drain_limit);
  if (auto due = m.liveness.recheck()) consider(*due);
  for (const auto& [id, p] : m.paths) {
    switch (p.state) {
      case PathState::idle:
        consider(p.next_dial);
        break;
      case PathState::handshaking:
        consider(p.handshake_sent + m.config.handshake_timeout);
        break;
      case PathState::up:
        if (auto due = m.liveness.next_deadline(p)) consider(*due);
        if (auto due = p.transport->next_timer()) consider(*due);
        if (auto due = p.transport->next_send_time()) consider(*due);
        break;
      default:
        break;
    }
  }
  return t;
}

void Flow::on_timer(Time now) {
  Impl& m = *impl_;
  if (m.finished()) return;
  m.liveness.clear_recheck();
  if (m.done_since && now - *m.done_since >= m.config.close_linger) {
    m.close_now();  // the peer's "done" was lost; everything of ours is confirmed
    return;
  }
  if (m.no_path_since && now - *m.no_path_since >= m.config.migration_budget) {
    if (m.done_since) {
      m.close_now();
      return;
    }
    m.fail(m.state == FlowState::opening ? FlowError::handshake_failed
                                         : FlowError::migration_budget_exceeded,
           now);
    return;
  }
  m.payload->on_timer(now);
  std::vector<PathId> ids;
  ids.reserve(m.paths.size());
  for (const auto& kv : m.paths)
    ids.push_back(kv.first);
  for (PathId id : ids) {
    Path* p = m.find(id);
    if (p == nullptr) continue;
    switch (p->state) {
      case PathState::idle:
        if (now >= p->next_dial) {
          p->state = PathState::dialing;
          m.emit(Event::Kind::dial_path, id);
        }
        break;
      case PathState::handshaking:
        if (now - p->handshake_sent >= m.config.handshake_timeout)
          m.path_down(*p, DownCause::handshake_timeout, now, true);
        break;
      case PathState::up:
        if (m.liveness.dead(*p, m.paths, now)) {
          m.path_down(*p, DownCause::silent, now, true);
          break;
        }
        p->transport->on_timer(now, m.payload->retransmits());
        // In race and bond every up path carries data, so each is pinged as the active one.
        m.liveness.schedule_ping(*p, id == m.active || m.mode != Mode::prime, now);
        break;
      default:
        break;
    }
  }
  m.advance_probe(now);
  m.evaluate_quality(now);
}

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
  (void)now;
  if (m.finished()) return 0;
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

}  // namespace rendr::core
