#pragma once
// Race mode: every up path sends the whole stream from its own cursor, so the first copy to
// arrive wins and a path's death costs nothing (no replay: another path carried its bytes).
// So a datagram path repairs its own copy: what its lost packets carried it sends again itself
// (Path::lost_data), rather than leaving it to whichever path pulls first, whose copy may die
// with it.
#include "core/scheduler.hpp"

namespace rendr::core {

class RaceScheduler final : public Scheduler {
 public:
  using Scheduler::Scheduler;
  bool wants_data(const Path& p) const override;
  void fill(Path& p, DataSink& out) override;
  void replay_unacked() override { resend_fin(); }
  // Another path carried its bytes: what it had still to repair is moot.
  void on_path_lost(Path& p) override { p.lost_data.clear(); }
  void on_enter(Mode previous) override;
  // A datagram path's lost DATA goes out again on that path: every path carries every byte.
  RetransmitQueue& lost_data_queue(Path& p) override { return p.lost_data; }
};

}  // namespace rendr::core
