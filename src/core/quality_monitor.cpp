#include "core/quality_monitor.hpp"

#include <algorithm>

namespace rendr::core {

bool QualityMonitor::observe(PathId candidate, Duration candidate_rtt, Duration active_rtt,
                             Time now, const QualityPolicy& policy) {
  const auto limit = std::chrono::duration_cast<Duration>(
      std::chrono::duration<double, Duration::period>(active_rtt.count() * (1 - policy.margin)));
  const bool clearly_better = candidate != kNoPath && candidate_rtt <= limit &&
                              candidate_rtt + policy.min_gain <= active_rtt;
  if (!clearly_better) {
    candidate_ = kNoPath;
    return false;
  }
  if (candidate != candidate_) {
    candidate_ = candidate;
    since_ = now;
  }
  const auto due = deadline(policy);
  return due && now >= *due;
}

void QualityMonitor::switched(Time now) {
  last_switch_ = now;
  candidate_ = kNoPath;
}

std::optional<Time> QualityMonitor::deadline(const QualityPolicy& policy) const {
  if (candidate_ == kNoPath) return std::nullopt;
  Time due = since_ + policy.dwell;
  if (last_switch_) due = std::max(due, *last_switch_ + policy.cooldown);
  return due;
}

}  // namespace rendr::core
