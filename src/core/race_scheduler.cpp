#include "core/race_scheduler.hpp"

#include <algorithm>

namespace rendr::core {

bool RaceScheduler::wants_data(const Path& p) const {
  const Payload& out = ctx_.payload;
  const std::uint64_t cursor = std::max(p.send_cursor, out.acked());
  const auto fin = out.fin_offset();
  return p.lost_data.pending(out.acked()) || cursor < out.window_end() ||
         fin_due(p, fin && cursor == *fin);
}

void RaceScheduler::fill(Path& p, DataSink& sink) {
  Payload& out = ctx_.payload;
  send_retransmissions(
      p, sink, [](const Path&) { return true; }, &p.lost_data);
  const std::uint64_t limit = out.window_end();
  std::uint64_t cursor = std::max(p.send_cursor, out.acked());
  while (sink.has_room() && cursor < limit)
    cursor = sink.send_data(cursor, limit);
  p.send_cursor = cursor;
  out.sent_new_to(cursor);
  const auto fin = out.fin_offset();
  if (fin_due(p, fin && cursor == *fin)) sink.send_fin();
}

void RaceScheduler::on_enter(Mode) {
  // Every path sends every unacknowledged byte, from the acknowledged offset: simpler than
  // proving which bytes a path already carried, and it makes pending replays moot.
  for (auto& [id, p] : ctx_.paths) {
    p.send_cursor = ctx_.payload.acked();
    p.lost_data.clear();
  }
  ctx_.payload.retransmits().clear();
}

}  // namespace rendr::core
