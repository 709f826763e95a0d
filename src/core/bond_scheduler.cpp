#include "core/bond_scheduler.hpp"

#include <algorithm>

#include "core/prime_scheduler.hpp"

namespace rendr::core {

double estimated_arrival(const BondCandidate& path, std::size_t frame_bytes) {
  const double rate = std::max(path.delivery_rate, 1.0) * std::max<std::uint32_t>(path.weight, 1);
  return std::chrono::duration<double>(path.srtt).count() / 2 +
         static_cast<double>(path.in_flight + frame_bytes) / rate;
}

bool bond_admits(double arrival, double best_arrival, double aggregate_rate,
                 std::uint64_t window_room) {
  if (arrival <= best_arrival) return true;
  const double tolerance = static_cast<double>(window_room) / 2 / std::max(aggregate_rate, 1.0);
  return arrival - best_arrival <= tolerance;
}

// ---------------------------------------------------------------------------------------------

namespace {

// Bytes per unit of weight a path may send per round of the weighted shares. A few frames, so
// the split follows the weights closely without interleaving every frame.
constexpr std::int64_t kBondQuantum = 64 * 1024;

}  // namespace

bool BondScheduler::wants_data(const Path& p) const {
  const Payload& out = ctx_.payload;
  if (out.retransmits().pending(out.acked()) || out.next_new() < out.window_end()) return admits(p);
  const auto fin = out.fin_offset();
  return fin_due(p, fin && out.next_new() == *fin);
}

void BondScheduler::fill(Path& p, DataSink& sink) {
  Payload& out = ctx_.payload;
  const std::uint64_t sent_before = p.stats.bytes_sent;
  send_retransmissions(p, sink, [this](const Path& q) { return admits(q); });
  const std::uint64_t limit = out.window_end();
  while (sink.has_room() && out.next_new() < limit && !out.retransmits().pending(out.acked()) &&
         admits(p)) {
    const std::uint64_t from = out.next_new();
    const std::uint64_t end = sink.send_data(from, limit);
    sent(p, from, end);
    out.sent_new_to(end);
  }
  const auto fin = out.fin_offset();
  if (fin_due(p, fin && out.next_new() == *fin && !out.retransmits().pending(out.acked())))
    sink.send_fin();
  // Its carrier asked and got nothing: it can take bytes at once (share_admits).
  if (p.stats.bytes_sent == sent_before) p.bond_idle = true;
}

void BondScheduler::replay_unacked() {
  resend_fin();
  ctx_.payload.retransmits().reset(ctx_.payload.acked(), ctx_.payload.next_new());
}

void BondScheduler::on_path_lost(Path& p) {
  // Only its own ranges, at once, on whichever paths pull next.
  p.flight.requeue_unacked(ctx_.payload.acked(), ctx_.payload.retransmits());
  if (p.fin_sent) resend_fin();
}

void BondScheduler::on_enter(Mode previous) {
  if (previous == Mode::race) resume_after_race(ctx_);
}

// Whether `p` may take the next DATA frame: its estimated arrival is close enough to the best
// path's, and it is within its weighted share (share_admits).
bool BondScheduler::admits(const Path& p) const {
  const FlowConfig& config = ctx_.config;
  // A path without an RTT sample yet is assumed as slow as the slowest measured one.
  Duration unmeasured_srtt{};
  for (const auto& [id, q] : ctx_.paths) {
    if (q.state == PathState::up && q.rtt.has_sample())
      unmeasured_srtt = std::max(unmeasured_srtt, q.rtt.srtt());
  }
  auto candidate = [&](const Path& q) {
    const double measured = q.flight.delivery_rate();
    return BondCandidate{q.rtt.has_sample() ? q.rtt.srtt() : unmeasured_srtt, q.flight.bytes(),
                         measured > 0 ? measured : config.bond_initial_rate, q.weight};
  };
  double best = 0;
  double aggregate_rate = 0;
  bool any = false;
  for (const auto& [id, q] : ctx_.paths) {
    if (q.state != PathState::up) continue;
    const BondCandidate c = candidate(q);
    const double arrival = estimated_arrival(c, config.max_data_payload);
    best = any ? std::min(best, arrival) : arrival;
    any = true;
    aggregate_rate += c.delivery_rate;
  }
  const Payload& out = ctx_.payload;
  const std::uint64_t room = out.peer_limit() > out.acked() ? out.peer_limit() - out.acked() : 0;
  auto in_time = [&](const Path& q) {
    return bond_admits(estimated_arrival(candidate(q), config.max_data_payload), best,
                       aggregate_rate, room);
  };
  if (!in_time(p)) {
    if (!p.bond_skipping) {
      p.bond_skipping = true;
      ++stuck_skips_;
    }
    return false;
  }
  p.bond_skipping = false;
  return share_admits(p, in_time);
}

// Weights as shares, by rounds (deficit round robin): each round gives every up path
// kBondQuantum bytes per unit of weight. A path with credit left may send; one without may
// not while another path whose carrier is idle (it asked and got nothing, so it takes bytes
// at once; the pump kicks it) still has credit and is in time. Otherwise a new round starts
// (sent). A busy carrier never holds the others back: when the application writes less than
// the paths carry, the weights decide the split; when it writes more, each path takes what it
// can and the bandwidths add up. (Only the carrier's idleness is a sure sign that a path can
// take more now; its flight against its BDP is not: a path at exactly its capacity has no
// queue and no room either.)
template <class InTime>
bool BondScheduler::share_admits(const Path& p, const InTime& in_time) const {
  if (p.bond_credit > 0) return true;
  for (const auto& [id, q] : ctx_.paths) {
    if (&q != &p && q.state == PathState::up && q.bond_idle && q.bond_credit > 0 && in_time(q))
      return false;
  }
  return true;
}

void BondScheduler::sent(Path& p, std::uint64_t from, std::uint64_t to) {
  if (p.bond_credit <= 0) {
    for (auto& [id, q] : ctx_.paths)
      q.bond_credit = kBondQuantum * std::max<std::uint32_t>(q.weight, 1);
  }
  p.bond_credit -= static_cast<std::int64_t>(to - from);
  p.bond_idle = false;
}

}  // namespace rendr::core
