#include "runtime/flow_registry.hpp"

#include <vector>

#include <asio/query.hpp>

#include "runtime/session.hpp"

namespace rendr::runtime {
namespace {

// The part of a flow's counters that EngineStats totals.
void add_totals(EngineStats& to, const ConnStats& s) {
  to.migrations_explicit += s.migrations_explicit;
  to.migrations_death += s.migrations_death;
  to.migrations_follow += s.migrations_follow;
  to.migrations_quality += s.migrations_quality;
  to.bytes_written += s.bytes_written;
  to.bytes_delivered += s.bytes_delivered;
  to.retransmitted_bytes += s.retransmitted_bytes;
}

}  // namespace

FlowRegistry& FlowRegistry::of(const asio::any_io_executor& ex) {
  return asio::use_service<FlowRegistry>(asio::query(ex, asio::execution::context));
}

void FlowRegistry::started(const std::shared_ptr<Session>& session) {
  std::lock_guard lock(mu_);
  if (live_.emplace(session.get(), session).second) ++ended_.flows_started;
}

void FlowRegistry::ended(const Session* session, const ConnStats& final, bool failed) {
  std::lock_guard lock(mu_);
  if (live_.erase(session) == 0) return;  // never started, or already counted
  ++(failed ? ended_.flows_failed : ended_.flows_closed);
  add_totals(ended_, final);
}

EngineStats FlowRegistry::snapshot() {
  std::vector<std::shared_ptr<Session>> live;
  EngineStats out;
  {
    std::lock_guard lock(mu_);
    out = ended_;
    live.reserve(live_.size());
    for (auto it = live_.begin(); it != live_.end();) {
      if (auto s = it->second.lock()) {
        live.push_back(std::move(s));
        ++it;
      } else {
        it = live_.erase(it);  // released without finishing (its engine shut down)
      }
    }
  }
  out.flows.reserve(live.size());
  for (const auto& s : live) {
    out.flows.push_back(s->stats());
    add_totals(out, out.flows.back());
  }
  return out;
}

void FlowRegistry::shutdown() {
  std::lock_guard lock(mu_);
  live_.clear();
}

}  // namespace rendr::runtime
