#include "core/liveness.hpp"

#include <algorithm>
#include <utility>

#include "core/recovery/datagram_transport.hpp"

namespace rendr::core {

std::uint64_t ticks(Time t) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

Duration Liveness::deadline(const Path& p) const {
  Duration d{};
  if (const recovery::DatagramTransport* t = p.transport->datagram()) {
    // Its loss recovery's probe timeouts in a row, each twice the last (1 + 2 + 4 for 3): the
    // PTO already adapts to the path's RTT, variance and the peer's ACK delay.
    const std::uint32_t ptos = std::min<std::uint32_t>(config_.datagram_dead_ptos, 16);
    d = t->pto() * ((1u << ptos) - 1);
  } else {
    // Without a sample (a server path just joined) the RTT may be anything: allow what a
    // handshake is allowed, or a long path would be declared dead before its first answer.
    d = p.rtt.has_sample() ? 2 * p.rtt.srtt() + 8 * p.rtt.rttvar() + config_.max_ack_delay
                           : config_.handshake_timeout;
  }
  const Duration floor = mode_ == Mode::race ? std::max(config_.dead_floor, config_.race_dead_floor)
                                             : config_.dead_floor;
  return std::clamp(d, floor, std::max(floor, config_.dead_cap));
}

Duration Liveness::uncorroborated_deadline(const Path& p) const {
  return std::max(deadline(p), config_.silent_peer_grace);
}

// Hearing anything restarts the silence clock. It stops only when nothing sent on the path
// still waits for an answer: clearing it while a PING is outstanding would leave a path whose
// PONG was lost undetectable, since no new PING goes out while one is outstanding.
void Liveness::heard(Path& p, bool outstanding, PathTable& paths, Time now) {
  p.last_heard = now;
  // A datagram path's silence is its loss recovery's (silent_since): hearing the peer's DATA
  // says nothing about whether ours arrive.
  if (!p.datagram()) p.restart_silence(outstanding ? std::optional<Time>(now) : std::nullopt);
  for (const auto& [id, q] : paths) {
    if (q.silence == SilenceStep::suspect)
      recheck_ = now;  // the peer is alive: a suspect path is dead
  }
}

// Whether the peer answered, on another up path, a probe it read in the second half of `p`'s
// silence (the corroborating pings went out at halfway), or `p` is alone, so nothing can tell a
// dead path from a stalled peer. Merely hearing bytes there proves nothing: on a TCP path,
// megabytes queued before the peer stalled keep arriving long after it did.
bool Liveness::peer_heard_elsewhere(const Path& p, const PathTable& paths) const {
  const Time since = *p.unanswered_since + deadline(p) / 2;
  bool others = false;
  for (const auto& [id, q] : paths) {
    if (&q == &p || q.state != PathState::up) continue;
    others = true;
    if (q.peer_alive_at >= since) return true;
  }
  return !others;
}

// Pings every other up path, and a stream path `p` itself: there a PONG answers everything
// sent before its PING, which an ACK stuck below a hole another path left does not (a datagram
// path's own probe timeouts already probe it).
void Liveness::seek_corroboration(Path& p, PathTable& paths) {
  p.silence = SilenceStep::corroborating;
  for (auto& [id, q] : paths) {
    if (q.state != PathState::up || (&q == &p && p.datagram())) continue;
    // A datagram path's PING whose packet was acknowledged stays outstanding until its next
    // ping is due (a standby's: 250 ms later); its answer is in, so a fresh one goes now.
    if (q.ping_outstanding && !(q.datagram() && q.ping_acked)) {
      q.corroborating_ping_owed = true;
    } else {
      q.control.owe(Control::ping);
    }
  }
}

void Liveness::probe_answered(Path& p, Time sent_at) {
  p.peer_alive_at = std::max(p.peer_alive_at, sent_at + p.rtt.min_rtt() / 2);
}

std::optional<Time> Liveness::silent_since(const Path& p) {
  if (const recovery::DatagramTransport* t = p.transport->datagram())
    return t->unacknowledged_since();
  return p.unanswered_since;
}

bool Liveness::dead(Path& p, PathTable& paths, bool awaits_answer, Time now) {
  if (p.datagram()) {
    // Its acknowledgements say whether our packets arrive: a new silence when they move it.
    if (const std::optional<Time> since = silent_since(p); since != p.unanswered_since)
      p.restart_silence(since);
    if (!p.unanswered_since) return false;
  } else if (!p.unanswered_since) {
    return false;
  } else if (p.last_heard >= *p.unanswered_since && !awaits_answer) {
    // The silence began at an answer, while more was outstanding, and that has since been
    // acknowledged on another path (a bond FIN or DATA whose copy ACK here came too early to
    // cover it): nothing here awaits an answer any more.
    p.restart_silence(std::nullopt);
    return false;
  }
  const Duration silent = now - *p.unanswered_since;
  const Duration limit = deadline(p);
  if (p.silence == SilenceStep::early && silent >= limit / 2) seek_corroboration(p, paths);
  if (silent < limit) return false;
  if (peer_heard_elsewhere(p, paths) || silent >= uncorroborated_deadline(p)) return true;
  p.silence = SilenceStep::suspect;
  return false;
}

void Liveness::schedule_ping(Path& p, Duration interval, Time now) {
  if (p.ping_outstanding || p.control.owes(Control::ping) || now < p.next_ping) return;
  p.control.owe(Control::ping);
  p.next_ping = now + interval;
}

wire::Ping Liveness::make_ping(Path& p, Time now) {
  p.ping_outstanding = true;
  p.ping_loaded = p.flight.bytes() > kUnloadedProbeBytes;
  p.ping_received_mark = p.stats.bytes_received;
  p.ping_data_end = p.data_sent_end;
  p.ping_after_fin = p.fin_sent;
  p.ping_id += 1;
  p.ping_sent_at = now;
  return wire::Ping{p.ping_id, ticks(now)};
}

void Liveness::ping_answered(Path& p) {
  p.ping_outstanding = false;
  if (std::exchange(p.corroborating_ping_owed, false)) p.control.owe(Control::ping);
}

bool Liveness::on_pong(Path& p, const wire::Pong& pong, Time now) {
  if (!p.ping_outstanding || pong.id != p.ping_id) return false;
  ping_answered(p);
  if (!p.datagram()) {  // a datagram path's packets are answered by its own ACKs
    p.answered_data_end = std::max(p.answered_data_end, p.ping_data_end);
    p.fin_answered = p.fin_answered || p.ping_after_fin;
  }
  const std::uint64_t sent = pong.timestamp;
  const std::uint64_t t = ticks(now);
  const bool loaded =
      p.ping_loaded || p.stats.bytes_received - p.ping_received_mark > kUnloadedProbeBytes;
  if (t >= sent) p.rtt.add_sample(std::chrono::nanoseconds(t - sent), now, !loaded);
  probe_answered(p, p.ping_sent_at);
  return true;
}

std::optional<Time> Liveness::next_deadline(const Path& p) const {
  std::optional<Time> t;
  auto consider = [&](Time x) {
    if (!t || x < *t) t = x;
  };
  if (const std::optional<Time> since = silent_since(p)) {
    // A datagram path's silence that moved since dead() last judged it starts over.
    const SilenceStep step = since == p.unanswered_since ? p.silence : SilenceStep::early;
    const Duration limit = deadline(p);
    if (step == SilenceStep::early) consider(*since + limit / 2);
    consider(*since + (step == SilenceStep::suspect ? uncorroborated_deadline(p) : limit));
  }
  // A datagram path's PING whose packet was acknowledged counts as answered at next_ping,
  // PONG or not (Flow::on_timer): wake then, or a lost PONG stops the pings for good.
  if ((!p.ping_outstanding || p.ping_acked) && !p.control.owes(Control::ping))
    consider(p.next_ping);
  return t;
}

}  // namespace rendr::core
