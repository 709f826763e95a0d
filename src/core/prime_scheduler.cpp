#include "core/prime_scheduler.hpp"

#include <algorithm>

namespace rendr::core {

bool PrimeScheduler::wants_data(const Path& p) const {
  const Payload& out = ctx_.payload;
  if (p.id != ctx_.active) return false;
  if (out.retransmits().pending(out.acked()) ||
      (out.next_new() < out.window_end() && !ctx_.probe_drain_since))
    return true;
  const auto fin = out.fin_offset();
  return fin_due(p, fin && out.next_new() == *fin);
}

void PrimeScheduler::fill(Path& p, DataSink& sink) {
  if (p.id != ctx_.active) return;
  Payload& out = ctx_.payload;
  send_retransmissions(p, sink, [](const Path&) { return true; });
  const std::uint64_t limit = out.window_end();
  while (sink.has_room() && out.next_new() < limit && !ctx_.probe_drain_since)
    out.sent_new_to(sink.send_data(out.next_new(), limit));
  const auto fin = out.fin_offset();
  if (fin_due(p, fin && out.next_new() == *fin && !out.retransmits().pending(out.acked())))
    sink.send_fin();
}

void PrimeScheduler::replay_unacked() {
  resend_fin();
  ctx_.payload.retransmits().reset(ctx_.payload.acked(), ctx_.payload.next_new());
}

void PrimeScheduler::on_path_lost(Path& p) {
  if (p.data_sent_end > ctx_.payload.acked() || p.fin_sent) replay_unacked();
}

void PrimeScheduler::on_enter(Mode previous) {
  if (previous == Mode::race) resume_after_race(ctx_);
}

void resume_after_race(const SchedulerContext& ctx) {
  PathId id = ctx.active;
  if (id == kNoPath) {
    for (const auto& [qid, q] : ctx.paths) {
      if (q.state == PathState::up) {
        id = qid;
        break;
      }
    }
  }
  const auto it = ctx.paths.find(id);
  const Path* carrier = it == ctx.paths.end() ? nullptr : &it->second;
  if (carrier != nullptr)
    ctx.payload.retransmits().reset(std::max(carrier->send_cursor, ctx.payload.acked()),
                                    ctx.payload.next_new());
  // What race's datagram paths had still to repair: one copy now, where the mode sends it.
  for (auto& [qid, q] : ctx.paths)
    ctx.payload.retransmits().take_all(q.lost_data);
}

}  // namespace rendr::core
