#pragma once
// Prime mode: moves the active path to a clearly better one, without flapping.
//
// A candidate is clearly better when its RTT (the caller passes the recent minimum RTT) is
// lower than the active path's by the relative margin and by the absolute minimum gain. It must
// stay clearly better (the same candidate, at every observation) for the dwell time, and a quality
// switch waits for the cooldown after the previous one. Two similar paths therefore never trade
// places: jitter does not open a 25 % gap, and if it briefly does, it does not last for the dwell.
#include <optional>

#include "core/config.hpp"

namespace rendr::core {

class QualityMonitor {
 public:
  // One observation: `candidate` is the best other up path (kNoPath if none). Returns true
  // when the active path should move to it now.
  bool observe(PathId candidate, Duration candidate_rtt, Duration active_rtt, Time now,
               const QualityPolicy& policy);
  void switched(Time now);
  // Forgets the candidate (mode change, active path changed for another reason).
  void reset() { candidate_ = kNoPath; }
  // When a candidate that stays better becomes due, if there is one.
  std::optional<Time> deadline(const QualityPolicy& policy) const;

 private:
  PathId candidate_ = kNoPath;
  Time since_{};
  std::optional<Time> last_switch_;
};

}  // namespace rendr::core
