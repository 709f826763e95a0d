#pragma once
// Race mode: every up path sends the whole stream from its own cursor, so the first copy to
// arrive wins and a path's death costs nothing (no replay: another path carried its bytes).
#include "core/scheduler.hpp"

namespace rendr::core {

class RaceScheduler final : public Scheduler {
 public:
  using Scheduler::Scheduler;
  bool wants_data(const Path& p) const override;
  void fill(Path& p, DataSink& out) override;
  void replay_unacked() override { resend_fin(); }
  void on_path_lost(Path& p) override { (void)p; }
  void on_enter(Mode previous) override;
};

}  // namespace rendr::core
