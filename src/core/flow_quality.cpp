// Flow::Impl: prime mode's quality switching and the probe of a busy active path.
#include <algorithm>

#include "core/flow_impl.hpp"

namespace rendr::core {

void Flow::Impl::evaluate_quality(Time now) {
  const Path* current = find(active);
  if (role != Role::client || mode != Mode::prime || state != FlowState::established ||
      current == nullptr) {
    // No judgement now: a candidate kept from before would leave its deadline in the past.
    quality.reset();
    return;
  }
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

void Flow::Impl::start_probe(Time now) {
  if (probe_drain_since || now < next_probe_at) return;
  probe_drain_since = now;
  probe_ping_sent = false;
  next_probe_at = now + config.quality.probe_interval;
  advance_probe(now);
}

void Flow::Impl::advance_probe(Time now) {
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

void Flow::Impl::end_probe() {
  probe_drain_since.reset();
  probe_ping_sent = false;
}

}  // namespace rendr::core
