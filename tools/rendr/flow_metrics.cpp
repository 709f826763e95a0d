#include "flow_metrics.hpp"

#include <array>
#include <chrono>
#include <map>
#include <utility>

namespace rendr::cli {
namespace {

constexpr std::array kCauses{rendr::MigrateCause::explicit_request, rendr::MigrateCause::death,
                             rendr::MigrateCause::follow_peer, rendr::MigrateCause::quality};

std::array<std::uint64_t, 4> migrations_by_cause(const rendr::EngineStats& s) {
  return {s.migrations_explicit, s.migrations_death, s.migrations_follow, s.migrations_quality};
}

double seconds(std::chrono::microseconds us) {
  return double(us.count()) / 1e6;
}

}  // namespace

FlowMetrics::FlowMetrics(rendr::Engine& engine)
    : engine_(engine),
      rtt_({0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}) {}

void FlowMetrics::sample_rtts() {
  const rendr::EngineStats s = engine_.stats();
  std::lock_guard lock(mu_);
  for (const rendr::ConnStats& flow : s.flows)
    for (const rendr::PathInfo& path : flow.paths)
      if (path.state == "up" && path.rtt.count() > 0) rtt_.observe(seconds(path.rtt));
}

std::string FlowMetrics::render(const rendr::ListenerStats& listener) {
  const rendr::EngineStats totals = engine_.stats();
  std::map<std::pair<std::string, std::string>, std::uint64_t> paths;  // (state, transport)
  std::uint64_t send_buffered = 0, recv_buffered = 0, recv_memory = 0;
  for (const rendr::ConnStats& s : totals.flows) {
    send_buffered += s.send_buffered;
    recv_buffered += s.recv_buffered;
    recv_memory += s.recv_memory;
    for (const rendr::PathInfo& path : s.paths)
      ++paths[{path.state, path.transport.empty() ? "unknown" : path.transport}];
  }

  PrometheusText out;
  out.family("rendr_flows", "gauge", "Flows open now (established, not yet finished).");
  out.sample("rendr_flows", double(totals.flows.size()));
  out.family("rendr_flows_started_total", "counter",
             "Flows established (the client proved the flow key).");
  out.sample("rendr_flows_started_total", double(totals.flows_started));
  out.family("rendr_flows_ended_total", "counter",
             "Flows that ended: closed by both sides, or failed (error, abort, budget).");
  out.sample("rendr_flows_ended_total", {{"result", "closed"}}, double(totals.flows_closed));
  out.sample("rendr_flows_ended_total", {{"result", "failed"}}, double(totals.flows_failed));

  out.family("rendr_paths", "gauge", "Paths of the flows being served, by state and transport.");
  for (const auto& [key, count] : paths)
    out.sample("rendr_paths", {{"state", key.first}, {"transport", key.second}}, double(count));

  out.family("rendr_migrations_total", "counter", "Changes of a flow's active path, by cause.");
  const auto causes = migrations_by_cause(totals);
  for (std::size_t i = 0; i < kCauses.size(); ++i)
    out.sample("rendr_migrations_total", {{"cause", std::string(rendr::to_string(kCauses[i]))}},
               double(causes[i]));

  out.family("rendr_bytes_total", "counter",
             "Application bytes: sent (written by this end) and received (delivered to it).");
  out.sample("rendr_bytes_total", {{"direction", "sent"}}, double(totals.bytes_written));
  out.sample("rendr_bytes_total", {{"direction", "received"}}, double(totals.bytes_delivered));
  out.family("rendr_retransmitted_bytes_total", "counter", "Bytes sent again on another path.");
  out.sample("rendr_retransmitted_bytes_total", double(totals.retransmitted_bytes));

  {
    std::lock_guard lock(mu_);
    rtt_.render(out, "rendr_path_rtt_seconds",
                "Smoothed RTT of every path that is up, sampled once a second.");
  }

  out.family("rendr_memory_bytes", "gauge", "Memory the open flows hold.");
  out.sample("rendr_memory_bytes", {{"kind", "send_buffered"}}, double(send_buffered));
  out.sample("rendr_memory_bytes", {{"kind", "recv_buffered"}}, double(recv_buffered));
  out.sample("rendr_memory_bytes", {{"kind", "recv_held"}}, double(recv_memory));

  out.family("rendr_refused_total", "counter",
             "Transport connections and handshakes the listener refused, by reason.");
  const std::pair<const char*, std::uint64_t> refused[] = {
      {"malformed", listener.rejected_malformed},
      {"unknown_flow", listener.rejected_unknown_flow},
      {"bad_proof", listener.rejected_bad_proof},
      {"replay", listener.rejected_replay},
      {"capacity", listener.rejected_capacity},
      {"timeout", listener.rejected_timeout},
      {"accept_queue", listener.rejected_accept_queue},
      {"paths_per_flow", listener.rejected_paths_per_flow},
      {"memory", listener.rejected_memory},
      {"authentication", listener.authentication_failures}};
  for (const auto& [reason, count] : refused)
    out.sample("rendr_refused_total", {{"reason", reason}}, double(count));

  out.family("rendr_evicted_total", "counter", "What the listener dropped to make room, by kind.");
  out.sample("rendr_evicted_total", {{"kind", "half_open"}}, double(listener.evicted_half_open));
  out.sample("rendr_evicted_total", {{"kind", "pathless_flow"}}, double(listener.evicted_flows));
  out.sample("rendr_evicted_total", {{"kind", "unproven_flow"}}, double(listener.evicted_unproven));
  out.sample("rendr_evicted_total", {{"kind", "abandoned_flow"}},
             double(listener.dropped_abandoned));

  out.family("rendr_listener_connections_total", "counter", "Transport connections accepted.");
  out.sample("rendr_listener_connections_total", double(listener.connections_accepted));
  out.family("rendr_listener_flows_opened_total", "counter", "Flows opened (OPEN accepted).");
  out.sample("rendr_listener_flows_opened_total", double(listener.flows_opened));
  out.family("rendr_listener_joins_total", "counter", "Paths that joined a flow (JOIN accepted).");
  out.sample("rendr_listener_joins_total", double(listener.joins_accepted));
  out.family("rendr_listener_duplicate_opens_total", "counter",
             "OPENs repeating a live flow's (a client resending it after its path died).");
  out.sample("rendr_listener_duplicate_opens_total", double(listener.duplicate_opens));
  out.family("rendr_listener_flows", "gauge", "Flows in the listener's table.");
  out.sample("rendr_listener_flows", double(listener.live_flows));
  out.family("rendr_listener_half_open", "gauge", "Connections waiting for their first frame.");
  out.sample("rendr_listener_half_open", double(listener.half_open));
  out.family("rendr_listener_unaccepted_flows", "gauge", "Flows opened, not yet accepted.");
  out.sample("rendr_listener_unaccepted_flows", double(listener.unaccepted_flows));
  return out.str();
}

}  // namespace rendr::cli
