// Flow: timers (next_deadline, on_timer): delayed ACKs, the migration budget, the close linger,
// redials, handshake timeouts, liveness and pings, prime quality.
#include <vector>

#include "core/flow.hpp"
#include "core/flow_impl.hpp"

namespace rendr::core {

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
  if (!m.authenticated) consider(m.authentication_deadline);
  for (const auto& [id, p] : m.paths) {
    switch (p.state) {
      case PathState::idle:
        consider(p.next_dial);
        break;
      case PathState::handshaking:
        // The first path of an unauthenticated flow ends with the flow.
        if (p.handshake != HandshakeStep::open_proof_awaited || m.authenticated)
          consider(p.handshake_sent + m.config.handshake_timeout);
        if (p.handshake_resend_at && p.handshake_in_flight()) consider(*p.handshake_resend_at);
        break;
      case PathState::up:
        if (auto due = m.liveness.next_deadline(p)) consider(*due);
        if (const recovery::DatagramTransport* d = p.transport->datagram()) {
          if (auto due = d->loss_timer()) consider(*due);
          // An ACK owed already waits for the runtime's next pull, not for a timer.
          if (auto due = d->ack_deadline(); due && !p.control.owes(Control::ack_ranges))
            consider(*due);
        } else {
          if (auto due = p.transport->next_timer()) consider(*due);
          // A datagram its carrier never judged is taken as lost.
          if (auto due = p.message_datagrams.overdue_at(m.unjudged_datagram_age(p))) consider(*due);
        }
        // A poll that pacing held back: the runtime pulls again then (on_timer's wake-up).
        if (p.paced_until) consider(*p.paced_until);
        // A challenge to a new peer address times out.
        if (auto due = p.address.next_timer()) consider(*due);
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
  if (!m.authenticated && now >= m.authentication_deadline) {
    // No PROOF came: an abandoned or hostile OPEN costs no more than this.
    m.emit(Event::Kind::authentication_failed);
    m.fail(FlowError::handshake_failed, now);
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
        if (p->handshake_resend_at && now >= *p->handshake_resend_at && p->handshake_in_flight()) {
          p->handshake_resend_at.reset();  // until the resend goes out (write_handshake)
          p->resend_handshake = true;
        }
        // The first path of an unauthenticated flow ends with the flow (a proven JOIN may have
        // authenticated it meanwhile; then that path gets the usual timeout).
        if ((p->handshake == HandshakeStep::open_proof_awaited && !m.authenticated) ||
            now - p->handshake_sent < m.config.handshake_timeout)
          break;
        if (p->joins_as != kNoPath) {
          // A provisional JOIN path without its PROOF.
          ++m.counters.joins_rejected;
          m.emit(Event::Kind::authentication_failed, id);
        }
        m.path_down(*p, DownCause::handshake_timeout, now, true);
        break;
      case PathState::up: {
        if (p->paced_until && now >= *p->paced_until) p->paced_until.reset();
        // Loss detection and probe timeouts first: a datagram path's liveness follows its ACKs.
        p->transport->on_timer(now, m.scheduler().lost_data_queue(*p));
        if (p->datagram()) {
          m.after_recovery(*p, now);
          p->address.set_probe_timeout(m.probe_timeout(*p));
          p->address.on_timer(now);
        } else {
          m.expire_unjudged_datagrams(*p, now);
        }
        if (m.liveness.dead(*p, m.paths, m.awaits_answer(*p), now)) {
          m.path_down(*p, DownCause::silent, now, true);
          break;
        }
        // A datagram path's PING whose packet was acknowledged is answered, PONG or not: the
        // next one may go.
        if (p->ping_acked && p->ping_outstanding && now >= p->next_ping)
          Liveness::ping_answered(*p);
        // In race and bond every up path carries data, so each is pinged as the active one.
        const bool carrying = id == m.active || m.mode != Mode::prime;
        m.liveness.schedule_ping(*p,
                                 m.quiet(now) ? m.config.ping_interval_idle
                                 : carrying   ? m.config.ping_interval_active
                                              : m.config.ping_interval_standby,
                                 now);
        break;
      }
      default:
        break;
    }
  }
  m.advance_probe(now);
  m.evaluate_quality(now);
}

}  // namespace rendr::core
