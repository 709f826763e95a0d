#pragma once
// Prime mode: moves the active path to a clearly better one, without flapping.
//
// A candidate is clearly better when its RTT (the caller passes the recent minimum RTT) is
// lower than the active path's by the relative margin and by the absolute minimum gain. It must
// stay clearly better (the same candidate, at every observation) for the dwell time, the active
// path must have been measured within a probe interval of the decision (a busy path's samples
// may be old: the flow probes it), and a quality switch waits for the cooldown after the
// previous one. Two
// similar paths therefore never trade places: jitter does not open a 25 % gap, and if it briefly
// does, it does not last for the dwell.
#include <optional>

#include "core/config.hpp"

namespace rendr::core {

class QualityMonitor {
 public:
  // One observation: `candidate` is the best other up path (kNoPath if none); `active_measured`
  // is when the active path's newest sample was taken. Returns true when the active path should
  // move to the candidate now.
  bool observe(PathId candidate, Duration candidate_rtt, Duration active_rtt, Time active_measured,
               Time now, const QualityPolicy& policy);
  // Whether `candidate_rtt` beats `active_rtt` by the margin and the minimum gain.
  static bool clearly_better(Duration candidate_rtt, Duration active_rtt,
                             const QualityPolicy& policy);
  // Whether the active path should be probed now: a candidate is due within a probe interval
  // and the active path's newest sample is older than that. The flow probes and says so
  // (probing()); the sample then comes with a PONG, which leads to the next observation.
  bool wants_active_sample(Time now, const QualityPolicy& policy) const;
  void probing() { probing_ = true; }
  void switched(Time now);
  // Forgets the candidate (mode change, active path changed for another reason).
  void reset() { candidate_ = kNoPath; }
  // When the next observation is due by time alone: the candidate's decision, or the probe
  // before it. None while a probe's PONG is awaited.
  std::optional<Time> deadline(const QualityPolicy& policy) const;

 private:
  Time due(const QualityPolicy& policy) const;
  bool measured_in_time(const QualityPolicy& policy) const {
    return active_measured_ + policy.probe_interval >= due(policy);
  }

  PathId candidate_ = kNoPath;
  Time since_{};
  Time active_measured_{};
  bool probing_ = false;
  std::optional<Time> last_switch_;
};

}  // namespace rendr::core
