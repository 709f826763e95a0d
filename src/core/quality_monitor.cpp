#include "core/quality_monitor.hpp"

#include <algorithm>

namespace rendr::core {

bool QualityMonitor::clearly_better(Duration candidate_rtt, Duration active_rtt,
                                    const QualityPolicy& policy) {
  const auto limit = std::chrono::duration_cast<Duration>(
      std::chrono::duration<double, Duration::period>(active_rtt.count() * (1 - policy.margin)));
  return candidate_rtt <= limit && candidate_rtt + policy.min_gain <= active_rtt;
}

bool QualityMonitor::observe(PathId candidate, Duration candidate_rtt, Duration active_rtt,
                             Time active_measured, Time now, const QualityPolicy& policy) {
  if (candidate == kNoPath || !clearly_better(candidate_rtt, active_rtt, policy)) {
    candidate_ = kNoPath;
    return false;
  }
  if (candidate != candidate_) {
    candidate_ = candidate;
    since_ = now;
    probing_ = false;
  }
  if (active_measured > active_measured_) probing_ = false;  // the probe (or a ping) answered
  active_measured_ = active_measured;
  return now >= due(policy) && measured_in_time(policy);
}

bool QualityMonitor::wants_active_sample(Time now, const QualityPolicy& policy) const {
  return candidate_ != kNoPath && !measured_in_time(policy) &&
         now + policy.probe_interval >= due(policy);
}

void QualityMonitor::switched(Time now) {
  last_switch_ = now;
  candidate_ = kNoPath;
}

Time QualityMonitor::due(const QualityPolicy& policy) const {
  Time t = since_ + policy.dwell;
  if (last_switch_) t = std::max(t, *last_switch_ + policy.cooldown);
  return t;
}

std::optional<Time> QualityMonitor::deadline(const QualityPolicy& policy) const {
  if (candidate_ == kNoPath) return std::nullopt;
  if (measured_in_time(policy)) return due(policy);
  if (probing_) return std::nullopt;
  return due(policy) - policy.probe_interval;
}

}  // namespace rendr::core
