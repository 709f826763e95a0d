#pragma once
// Prime mode: one active path carries DATA; the others stand by. Retransmissions go first,
// then new bytes within the peer's window. After a failover everything unacknowledged is sent
// again on the new active path (the receiver drops what it already has).
#include "core/scheduler.hpp"

namespace rendr::core {

class PrimeScheduler final : public Scheduler {
 public:
  using Scheduler::Scheduler;
  bool wants_data(const Path& p) const override;
  void fill(Path& p, DataSink& out) override;
  void replay_unacked() override;
  void on_path_lost(Path& p) override;
  void on_enter(Mode previous) override;
};

// Leaving race: race paths lag one another, and bytes only a dead (or lagging) path carried
// must still reach the peer, so the new carrier sends again what it has not sent itself.
void resume_after_race(const SchedulerContext& ctx);

}  // namespace rendr::core
