#pragma once
// Bond mode: which up path may take the next DATA frame.
//
// Carriers pull (each asks when its socket can take more), so the question is asked per path:
// "should this path get the next bytes, or would they arrive far later than on another path?"
// A frame's arrival on a path is estimated as
//
//     srtt / 2 + (bytes in flight on the path + frame) / (delivery rate * weight)
//
// and the asking path is admitted if its estimate is within a tolerance of the best estimate
// among all up paths. The tolerance is what the peer's reorder buffer can absorb: bytes sent
// on a late path hold a hole open while the other paths keep delivering, about
// lateness * aggregate rate bytes; we allow half of the peer's window for that, so a slow path
// can never stall the stream on flow control. A path passed over counts as a stuck skip.
//
// Weights set shares, by deficit rounds (BondScheduler::share_admits). When a path dies, only
// its own unacknowledged ranges are sent again, on whichever paths pull next.
#include <cstddef>
#include <cstdint>

#include "core/scheduler.hpp"
#include "core/types.hpp"

namespace rendr::core {

struct BondCandidate {
  Duration srtt{};              // smoothed RTT, or a stand-in before the first sample
  std::uint64_t in_flight = 0;  // bytes sent on the path and not yet acknowledged
  double delivery_rate = 0;     // bytes per second (measured, or the configured default)
  std::uint32_t weight = 1;     // scales the rate the scheduler believes in
};

// Seconds until `frame_bytes` more sent on the path would arrive.
double estimated_arrival(const BondCandidate& path, std::size_t frame_bytes);

// Whether a path whose estimate is `arrival` may send, when the best up path's estimate is
// `best_arrival`, the up paths deliver `aggregate_rate` bytes/s together and the peer's window
// has `window_room` bytes above the acknowledged offset.
bool bond_admits(double arrival, double best_arrival, double aggregate_rate,
                 std::uint64_t window_room);

class BondScheduler final : public Scheduler {
 public:
  using Scheduler::Scheduler;
  bool wants_data(const Path& p) const override;
  bool learns_from_empty_pull(const Path& p) const override { return !p.bond_idle; }
  void fill(Path& p, DataSink& out) override;
  void replay_unacked() override;
  void on_path_lost(Path& p) override;
  void on_enter(Mode previous) override;

  std::uint64_t stuck_skips() const { return stuck_skips_; }

 private:
  void sent(Path& p, std::uint64_t from, std::uint64_t to) override;
  bool admits(const Path& p) const;
  template <class InTime>
  bool share_admits(const Path& p, const InTime& in_time) const;

  // Passed-over episodes (Path::bond_skipping); counted where wants_data decides, so mutable.
  mutable std::uint64_t stuck_skips_ = 0;
};

}  // namespace rendr::core
