#pragma once
// Schedulers decide where payload goes: which ranges of the send side (core/payload.hpp) a
// path that asks for data gets, and what must be sent again when a path is lost. One per mode:
// prime (prime_scheduler.hpp), race (race_scheduler.hpp), bond (bond_scheduler.hpp).
//
// A scheduler owns no frames and no path state but its own fields in Path (cursor, bond
// credit); the flow writes the frames (DataSink) and keeps paths, liveness and control.
#include <cstdint>
#include <optional>

#include "core/config.hpp"
#include "core/path.hpp"
#include "core/payload.hpp"
#include "core/stats.hpp"
#include "core/types.hpp"

namespace rendr::core {

// What a scheduler reads and changes of its flow: references into the flow, fixed for its life.
struct SchedulerContext {
  Payload& payload;
  PathTable& paths;
  const PathId& active;  // prime's carrier (kNoPath while none is up)
  const FlowConfig& config;
  FlowStats& counters;
  // Prime quality probe: while set, the active path sends no new DATA (its flight drains).
  const std::optional<Time>& probe_drain_since;
};

// Writes the frames a scheduler chose into one poll_transmit's batch for one path.
class DataSink {
 public:
  virtual bool has_room() const = 0;
  // One DATA frame from [from, to) (at most max_data_payload); returns its end.
  virtual std::uint64_t send_data(std::uint64_t from, std::uint64_t to) = 0;
  // The same for a range that was sent before (send_retransmissions): an unreliable packet flow
  // sends a SKIP for it instead.
  virtual std::uint64_t resend_data(std::uint64_t from, std::uint64_t to) {
    return send_data(from, to);
  }
  virtual void send_fin() = 0;

 protected:
  ~DataSink() = default;
};

class Scheduler {
 public:
  explicit Scheduler(const SchedulerContext& ctx) : ctx_(ctx) {}
  virtual ~Scheduler() = default;
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Whether `p` has DATA or a FIN to send now.
  virtual bool wants_data(const Path& p) const = 0;
  // Whether a pull on `p` that finds nothing to send still tells the scheduler something
  // (bond: that the path's carrier is idle).
  virtual bool learns_from_empty_pull(const Path& p) const {
    (void)p;
    return false;
  }
  // Sends on `p` what it should carry, while `out` has room.
  virtual void fill(Path& p, DataSink& out) = 0;
  // Everything unacknowledged (and the FIN) goes out again (the paths that carried it are
  // gone, or none is up).
  virtual void replay_unacked() = 0;
  // `p` went down: what it carried and the peer has not acknowledged may be lost.
  virtual void on_path_lost(Path& p) = 0;
  // This scheduler takes over from the one of `previous`.
  virtual void on_enter(Mode previous) = 0;
  // Where DATA that a datagram path's lost packets carried goes to be sent again: the flow's
  // retransmit queue (prime: the active path sends it; bond: whichever path is admitted), or
  // in race the path's own (race_scheduler.hpp).
  virtual RetransmitQueue& lost_data_queue(Path& p) {
    (void)p;
    return ctx_.payload.retransmits();
  }

 protected:
  // The FIN goes out on a data-carrying path once it has sent everything before it.
  bool fin_due(const Path& p, bool caught_up) const {
    return ctx_.payload.fin_offset() && !p.fin_sent && !ctx_.payload.fin_acked() && caught_up;
  }
  // Every path may carry the FIN again.
  void resend_fin() {
    for (auto& [id, q] : ctx_.paths)
      q.fin_sent = false;
  }
  // `p` carried DATA [from, to) (bond charges its share).
  virtual void sent(Path& p, std::uint64_t from, std::uint64_t to) {
    (void)p, (void)from, (void)to;
  }
  // Retransmissions from `rtx` (the flow's queue unless given), while `admits(p)` (the path
  // may take the next frame).
  template <class Admits>
  void send_retransmissions(Path& p, DataSink& out, const Admits& admits,
                            RetransmitQueue* rtx = nullptr);

  SchedulerContext ctx_;
};

template <class Admits>
void Scheduler::send_retransmissions(Path& p, DataSink& out, const Admits& admits,
                                     RetransmitQueue* queue) {
  RetransmitQueue& rtx = queue != nullptr ? *queue : ctx_.payload.retransmits();
  while (out.has_room()) {
    const auto r = rtx.next(ctx_.payload.acked());
    if (!r || !admits(p)) break;
    const std::uint64_t end = out.resend_data(r->from, r->to);
    sent(p, r->from, end);
    // An unreliable flow wrote a SKIP there: nothing was sent again.
    if (ctx_.payload.resends_lost()) {
      ctx_.counters.retransmitted_bytes += end - r->from;
      p.stats.bytes_retransmitted += end - r->from;
    }
    rtx.consumed(end);
  }
}

}  // namespace rendr::core
