// Flow::Impl: paths coming up and going down, the active path, and the flow's state.
#include <algorithm>

#include "core/flow_impl.hpp"

namespace rendr::core {

PathId Flow::Impl::best_up_path(PathId exclude) const {
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

void Flow::Impl::recover_from_loss_of(Path& p) {
  scheduler().on_path_lost(p);
  p.flight.clear();
}

void Flow::Impl::set_active(PathId id, MigrateCause cause, Time now) {
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
  if (Path* from = find(old);
      from != nullptr && from->state == PathState::up && mode == Mode::prime && from->datagram())
    recover_from_abandoned(*from);
}

void Flow::Impl::recover_from_abandoned(Path& p) {
  // Prime left an up datagram path (a dead one replays everything anyway). A stream carrier
  // left behind still delivers what it carries; a datagram path recovers its losses only from
  // its own ACKs, and the path may be why we left: blackholed, or abandoned by the peer (a
  // client's remove_path: UDP tells nobody, so it dies here only of its PTOs). Until then the
  // bytes above those losses wait, and so does the acknowledgement of a FIN sent on the new
  // path, which the liveness judge would take for the new path's silence. So what `p` has in
  // flight goes out again on the new active path now (a copy the peer already has is dropped
  // there as a duplicate).
  p.flight.requeue_unacked(payload->acked(), payload->retransmits());
  if (p.fin_sent && !payload->fin_acked()) {
    for (auto& [id, q] : paths)
      q.fin_sent = false;
  }
}

void Flow::Impl::update_flow_state(Time now) {
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

void Flow::Impl::fail(FlowError e, Time now) {
  if (finished()) return;
  error = e;
  end_flow(FlowState::failed);
  (void)now;
}

void Flow::Impl::end_flow(FlowState final_state) {
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

void Flow::Impl::maybe_finish(Time now) {
  if (finished() || state == FlowState::opening || !done()) return;
  if (!done_since) {
    done_since = now;
    done_notice_pending = true;
  }
  // Our own "done" goes out first, so the peer can close as well.
  if (peer_done && !done_notice_pending) close_now();
}

void Flow::Impl::path_down(Path& p, DownCause cause, Time now, bool notify_runtime) {
  if (p.state == PathState::dead || p.state == PathState::removed) return;
  const bool was_up = p.state == PathState::up;
  // Its carrier's datagrams are the carrier's no more: recover_from_loss_of covers them.
  p.message_datagrams.clear();
  if (was_up) {
    ++p.stats.down_count;
    counters.last_down_path = p.id;
    counters.last_down_cause = cause;
  }
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
  p.corroborating_ping_owed = false;
  p.ack_owed = false;
  p.restart_silence(std::nullopt);
  p.fin_sent = false;
  p.fin_answered = false;
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

void Flow::Impl::mark_heard(Path& p, Time now) {
  liveness.heard(p, awaits_answer(p), paths, now);
}

void Flow::Impl::path_up(Path& p, Time now) {
  const bool first = !any_up();
  p.state = PathState::up;
  p.backoff = Duration::zero();
  ++p.stats.up_count;
  p.last_heard = now;
  p.restart_silence(std::nullopt);
  p.next_ping = now;
  p.ping_outstanding = false;
  p.corroborating_ping_owed = false;
  // A new carrier: nothing of ours is on it yet.
  p.data_sent_end = 0;
  p.data_received_end = 0;
  p.answered_data_end = 0;
  p.fin_answered = false;
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

}  // namespace rendr::core
