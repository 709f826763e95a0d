// `rendr bench failover`: how long the application stalls when the active path dies. A rendr
// flow runs over two loopback paths, each through a fault proxy (FaultProxy for tcp paths,
// UdpFaultProxy for udpflow and quic paths), carrying a steady echo; each trial kills the active
// path's proxy (blackhole, reset, or a one-way blackhole) and measures the longest gap between
// consecutive echo replies around the kill, then replaces the dead path so the next trial again
// has two.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>

#include "bench_report.hpp"
#include "bench_transport.hpp"
#include "commands.hpp"
#include "console.hpp"
#include "echo.hpp"
#include "local_flow.hpp"
#include "path_admin.hpp"
#include "scheduling_noise.hpp"
#include "support/test_cert.hpp"

namespace rendr::cli {
namespace {

constexpr std::chrono::milliseconds kSteady{300};  // echo running normally before a kill
constexpr std::chrono::milliseconds kSettle{300};  // replies collected after the failover
constexpr std::chrono::milliseconds kFailoverTimeout{5000};
constexpr std::chrono::milliseconds kPathUpTimeout{5000};
constexpr std::chrono::seconds kDrain{3};

// The longest gap between consecutive replies in (kill, end], counting the gap that spans the
// kill; if no reply arrived after the kill at all, the time from the last reply to `end`. Also
// when that gap began, relative to the kill (negative: it spans the kill).
struct Stall {
  Clock::duration length{};
  Clock::duration began_after_kill{};
};

Stall stall_around(const std::vector<Clock::time_point>& replies, Clock::time_point kill,
                   Clock::time_point end) {
  auto first_after = std::upper_bound(replies.begin(), replies.end(), kill);
  Clock::time_point previous = first_after == replies.begin() ? kill : *std::prev(first_after);
  Stall stall;
  for (auto it = first_after; it != replies.end() && *it <= end; ++it) {
    if (*it - previous > stall.length) stall = {*it - previous, previous - kill};
    previous = *it;
  }
  if (previous <= kill && end - previous > stall.length) stall = {end - previous, previous - kill};
  return stall;
}

// The control: the longest gap between consecutive replies that both fall in [from, to], a
// window with no fault, i.e. what scheduling noise alone does to the echo.
Clock::duration longest_gap(const std::vector<Clock::time_point>& replies, Clock::time_point from,
                            Clock::time_point to) {
  Clock::duration longest{};
  auto it = std::lower_bound(replies.begin(), replies.end(), from);
  for (; it != replies.end() && std::next(it) != replies.end() && *std::next(it) <= to; ++it)
    longest = std::max(longest, *std::next(it) - *it);
  return longest;
}

// How a trial kills a path. reset exists for tcp paths only (UDP has no RST); the one-way
// blackholes for udpflow and quic paths only (the TCP fault proxy kills both directions).
enum class Kill { blackhole, reset, blackhole_up, blackhole_down };

Kill parse_kill(const std::string& name, BenchTransport transport) {
  if (name == "blackhole") return Kill::blackhole;
  if (name == "reset") {
    if (transport != BenchTransport::tcp) throw UsageError("--kill reset needs --transport tcp");
    return Kill::reset;
  }
  if (name == "blackhole-up" || name == "blackhole-down") {
    if (transport != BenchTransport::udpflow && transport != BenchTransport::quic)
      throw UsageError("--kill " + name + " needs --transport udpflow or quic");
    return name == "blackhole-up" ? Kill::blackhole_up : Kill::blackhole_down;
  }
  throw UsageError("--kill must be blackhole, reset, blackhole-up or blackhole-down");
}

// Applies `kill` to the proxy carrying `victim`; false if no proxy carries it.
bool kill_path(LocalFlow& flow, rendr::PathId victim, Kill kill) {
  if (testing::UdpFaultProxy* udp = flow.udp_proxy_of(victim)) {
    const testing::UdpFaults dead{.blackhole = true};
    const testing::UdpFaults alive{};
    udp->set_faults(kill == Kill::blackhole_down ? alive : dead,
                    kill == Kill::blackhole_up ? alive : dead);
    return true;
  }
  if (testing::FaultProxy* tcp = flow.proxy_of(victim)) {
    tcp->set_mode(kill == Kill::reset ? testing::FaultMode::reset : testing::FaultMode::blackhole);
    return true;
  }
  return false;
}

rendr::PathInfo path_info(const rendr::ConnStats& stats, rendr::PathId id) {
  for (const rendr::PathInfo& path : stats.paths)
    if (path.id == id) return path;
  return {};
}

bool wait_for_failover(const rendr::Conn& conn, rendr::PathId victim) {
  const Clock::time_point deadline = Clock::now() + kFailoverTimeout;
  while (conn.active_path() == victim || conn.active_path() == rendr::kNoPath) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

int run(const Args& args) {
  const BenchTransport transport = parse_transport(args);
  const std::string kill = args.text("kill", "blackhole");
  const Kill how = parse_kill(kill, transport);
  const std::size_t trials = args.count("trials", 10);
  const double interval_ms = args.number("interval-ms", 1);
  const rendr::Mode mode = args.mode();
  if (interval_ms <= 0) throw UsageError("--interval-ms must be > 0");
  // QUIC paths: a throw-away certificate for this run, trusted by the client by file.
  std::optional<testing::TestCertificate> cert;
  if (transport == BenchTransport::quic) cert.emplace();

  std::error_code ec;
  auto flow = LocalFlow::open(
      {.paths = 2,
       .transport = std::string(to_string(transport)),
       .quic_server = cert ? rendr::TlsServerConfig{cert->cert_file(), cert->key_file()}
                           : rendr::TlsServerConfig{},
       .quic_client = cert ? rendr::TlsClientConfig{cert->cert_file(), "localhost", true}
                           : rendr::TlsClientConfig{},
       .through_proxies = true,
       .mode = mode},
      ec);
  if (!flow)
    return report_setup_failure(args, "failover",
                                "cannot open a rendr flow over two proxied paths, mode " +
                                    std::string(rendr::to_string(mode)) + ": " + ec.message());

  const auto migrations = watch_migrations(flow->client, "[bench failover] client");

  std::uint64_t echoed = 0;
  std::error_code server_error;
  std::thread server_thread([&] { server_error = serve_echo(flow->server, echoed); });
  EchoProbe<rendr::Conn> probe(flow->client,
                               std::chrono::microseconds(std::llround(interval_ms * 1000)));
  probe.start();
  const SchedulingNoise noise;  // the control for the stalls: how late a bare thread wakes

  std::vector<double> stalls_ms, failover_ms, steady_gaps_ms;
  std::uint64_t admin_errors = 0;
  for (std::size_t trial = 1; trial <= trials && !probe.first_error(); ++trial) {
    std::this_thread::sleep_for(kSteady);
    // A spurious path death (counted apart) may have left the standby path re-dialing; a trial
    // measures the failover to a standby that is up.
    if (!wait_for_up_paths(flow->client, 2, kPathUpTimeout)) {
      log_line("[bench failover] the second path did not come back up");
      ++admin_errors;
      break;
    }
    const rendr::PathId victim = flow->client.active_path();
    // The victim's RTT estimate at the kill: a datagram path's death takes probe timeouts, which
    // scale with srtt and rttvar.
    const rendr::PathInfo victim_before = path_info(flow->client.stats(), victim);
    migrations->faulted_path = victim;
    const Clock::time_point killed_at = Clock::now();
    if (!kill_path(*flow, victim, how)) {
      log_line("[bench failover] no proxy carries the active path " + std::to_string(victim));
      ++admin_errors;
      break;
    }
    const bool failed_over = wait_for_failover(flow->client, victim);
    const Clock::time_point failover_at = Clock::now();
    std::this_thread::sleep_for(kSettle);
    const std::vector<Clock::time_point> replies = probe.reply_times();
    const Stall stall = stall_around(replies, killed_at, Clock::now());
    stalls_ms.push_back(to_ms(stall.length));
    steady_gaps_ms.push_back(to_ms(longest_gap(replies, killed_at - kSteady, killed_at)));
    failover_ms.push_back(to_ms(failover_at - killed_at));

    char line[400];
    std::snprintf(line, sizeof line,
                  "[bench failover] trial %zu/%zu: %s path %u, %s %.1f ms, echo stall %.1f ms "
                  "from %+.1f ms (longest gap before the kill %.1f ms; victim rtt %.2f ms, "
                  "rttvar %.2f ms, datagram pto %.2f ms)",
                  trial, trials, kill.c_str(), victim,
                  failed_over ? "active path moved after" : "NO failover within",
                  failover_ms.back(), stalls_ms.back(), to_ms(stall.began_after_kill),
                  steady_gaps_ms.back(), double(victim_before.rtt.count()) / 1e3,
                  double(victim_before.rtt_var.count()) / 1e3,
                  double(victim_before.pto.count()) / 1e3);
    log_line(line);
    if (!failed_over) ++admin_errors;

    // Restore two paths: drop the dead one, attach a fresh proxy.
    flow->replace_path(victim, ec);
    if (ec || !wait_for_up_paths(flow->client, 2, kPathUpTimeout)) {
      log_line("[bench failover] could not restore a second path: " +
               (ec ? ec.message() : std::string("timed out")));
      ++admin_errors;
      break;
    }
  }

  const EchoReport report = probe.finish(kDrain);
  server_thread.join();
  const rendr::ConnStats client_stats = flow->client.stats();
  const rendr::ConnStats server_stats = flow->server.stats();
  const std::uint64_t errors = report.errors() + (server_error ? 1 : 0);
  if (report.send_error) log_line("[bench failover] send error: " + report.send_error.message());
  if (report.receive_error)
    log_line("[bench failover] receive error: " + report.receive_error.message());
  if (server_error) log_line("[bench failover] server error: " + server_error.message());

  JsonObject result;
  result.add("bench", "failover")
      .add("kill", kill)
      .add("mode", rendr::to_string(mode))
      .add("transport", to_string(transport))
      .add("interval_ms", interval_ms)
      .add("trials", std::uint64_t{stalls_ms.size()})
      .add("errors", errors)
      .add("admin_errors", admin_errors)
      .add("lost", report.lost())
      .add("echoes", report.received)
      .add("migrations", flow->client.migration_count())
      .add("spurious_failovers", migrations->unexpected_deaths.load())
      .add("stall_ms_p50", median(stalls_ms))
      .add("stall_ms_max", max_of(stalls_ms))
      .add("failover_ms_p50", median(failover_ms))
      .add("stalls_ms", stalls_ms)
      .add("steady_gap_ms_p50", median(steady_gaps_ms))
      .add("steady_gap_ms_max", max_of(steady_gaps_ms))
      .add("sched_noise_ms_max", noise.worst_ms())
      // Both ends receive (requests and echoes): duplicate copies dropped, summed; the deepest
      // reorder buffer either end saw.
      .add("recv_dups", client_stats.recv_dups + server_stats.recv_dups)
      .add("recv_queue_hwm", std::max(client_stats.recv_queue_hwm, server_stats.recv_queue_hwm));
  print_result(args, "rendr bench failover", result);
  return errors == 0 && admin_errors == 0 && report.lost() == 0 && stalls_ms.size() == trials ? 0
                                                                                              : 1;
}

}  // namespace

Command bench_failover_command() {
  return {{"bench failover",
           "application stall when the active path dies",
           "--kill blackhole|reset|blackhole-up|blackhole-down --trials N\n"
           "    [--mode prime|race|bond] [--interval-ms MS]\n"
           "    [--transport tcp|quic|udpflow|mixed] [--json]",
           "Runs a steady echo over a rendr flow with two paths, each through a fault proxy, and\n"
           "per trial kills the active path (blackhole: silently drop everything; reset: RST,\n"
           "tcp only; blackhole-up / -down: drop only client->server / server->client, udpflow\n"
           "and quic only; udpflow and quic paths go through the UDP fault proxy)\n"
           "and measures the longest gap between echo replies around the kill. After each trial\n"
           "the dead path is removed and a fresh one added, so every trial starts with two.\n"
           "In race mode the other path already carries every frame: no stall is expected.\n"
           "Controls measured in the same run: steady_gap_ms_* (the longest reply gap in the\n"
           "300 ms before each kill) and sched_noise_ms_max (how late a bare thread sleeping in\n"
           "1 ms steps woke at worst): a stall below them is the machine's, not rendr's.",
           {{"kill", OptionSpec::Kind::value, "blackhole|reset",
             "how the path dies (default blackhole)"},
            {"trials", OptionSpec::Kind::value, "N", "kills to measure (default 10)"},
            {"interval-ms", OptionSpec::Kind::value, "MS", "echo interval (default 1)"},
            mode_option(),
            transport_option(),
            json_option()}},
          run};
}

}  // namespace rendr::cli
