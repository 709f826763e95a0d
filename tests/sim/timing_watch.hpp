#pragma once
// Timing assertions of the simulation, in virtual time (docs/design.md, "Liveness: the
// dead-path rule"):
//
// - Failover. When the carrier of the client's active path is blackholed (prime mode, flow
//   established), the client declares that path dead (and migrates, if another path is up)
//   within  deadline + bound  of the fault, where deadline = clamp(2*srtt + 8*rttvar +
//   max_ack_delay, dead_floor, dead_cap) from the path's RTT estimate at the fault, and
//     bound = ping_interval_active   (an idle active path starts its silence at its next PING)
//           + 1 ms                   (timer granularity)
//           + late corroboration: 0 if the path is alone or another up path answers a PING
//             within deadline/2 (its route's round trip, jitter and queued bytes at its
//             rate both ways), else max(deadline, silent_peer_grace) - deadline. A path still
//             joining at the fault counts as another path that does not answer in time: it
//             may come up before the verdict, and the path is then no longer alone.
//   A datagram path's deadline is clamp(7 PTOs, dead_floor, dead_cap) instead, and its bound
//   also allows 7 more PTOs, the return latency and the window's drain at the route's rate.
//   A failover whose timing something else could change (any later fault, admin action or
//   mode switch before it) is not judged.
// - No false deaths. A client path whose route and carriers never saw a fault (blackhole,
//   reset, kill, latency or rate change, spike, dark period, removal, a repeated OPEN's
//   connection the listener closes) never goes down while both flows run in prime mode (in
//   every mode with RunOptions::deaths_in_every_mode), however much bulk data it carries.
#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>

#include "core/flow.hpp"

namespace rendr::sim {

class TimingWatch {
 public:
  explicit TimingWatch(bool deaths_in_every_mode) : deaths_in_every_mode_(deaths_in_every_mode) {}

  struct Failover {
    core::PathId path = core::kNoPath;
    core::Time at{};
    core::Duration deadline{};
    core::Duration bound{};
  };

  void route_faulted(int route) { faulted_routes_.insert(route); }
  void path_faulted(core::PathId path) { faulted_paths_.insert(path); }
  // The client's active path was blackholed; it must be dead by at + deadline + bound.
  void active_blackholed(const Failover& f) { pending_ = f; }
  // Something that may change the pending failover's timing happened: it is not judged.
  void interrupted() { pending_.reset(); }

  // After every step; returns what broke, or an empty string.
  std::string observe(const core::Flow& client, const core::Flow* server,
                      const std::map<core::PathId, int>& client_routes, core::Time now) {
    const auto finished = [](const core::Flow* f) {
      return f != nullptr &&
             (f->state() == core::FlowState::closed || f->state() == core::FlowState::failed);
    };
    if (finished(&client) || finished(server)) {
      pending_.reset();
      deaths_watched_ = false;  // paths go down with a finished flow
      return {};
    }
    if (client.mode() != core::Mode::prime && !deaths_in_every_mode_) deaths_watched_ = false;
    const core::FlowStats st = client.stats(now);
    if (pending_) {
      const auto p = std::find_if(st.paths.begin(), st.paths.end(),
                                  [&](const auto& ps) { return ps.id == pending_->path; });
      const core::Duration elapsed = now - pending_->at;
      if (p == st.paths.end() || p->state != core::PathState::up) {
        ++failovers_checked_;
        worst_ratio_ =
            std::max(worst_ratio_, fraction(elapsed, pending_->deadline + pending_->bound));
        pending_.reset();
      } else if (elapsed > pending_->deadline + pending_->bound) {
        std::ostringstream out;
        out << "the blackholed active path " << pending_->path << " is still up " << ms(elapsed)
            << " ms after the fault (deadline " << ms(pending_->deadline) << " ms + bound "
            << ms(pending_->bound) << " ms)";
        return out.str();
      }
    }
    if (deaths_watched_) {
      for (const auto& p : st.paths) {
        const auto route = client_routes.find(p.id);
        if (p.down_count == 0 || faulted_paths_.count(p.id) != 0 || route == client_routes.end() ||
            faulted_routes_.count(route->second) != 0)
          continue;
        return "path " + std::to_string(p.id) + " went down " + std::to_string(p.down_count) +
               "x although no fault ever touched it or its route " + std::to_string(route->second);
      }
    }
    return {};
  }

  std::uint64_t failovers_checked() const { return failovers_checked_; }
  // The slowest judged failover as a fraction of its allowance (deadline + bound).
  double worst_ratio() const { return worst_ratio_; }

 private:
  static double ms(core::Duration d) {
    return std::chrono::duration<double, std::milli>(d).count();
  }
  static double fraction(core::Duration a, core::Duration b) {
    return b.count() > 0 ? static_cast<double>(a.count()) / static_cast<double>(b.count()) : 0;
  }

  bool deaths_in_every_mode_;
  std::set<int> faulted_routes_;
  std::set<core::PathId> faulted_paths_;
  std::optional<Failover> pending_;
  bool deaths_watched_ = true;
  std::uint64_t failovers_checked_ = 0;
  double worst_ratio_ = 0;
};

}  // namespace rendr::sim
