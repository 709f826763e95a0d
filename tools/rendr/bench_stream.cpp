// `rendr bench stream`: bulk throughput of a rendr flow with N loopback paths in any mode, next to
// a reference measured in the same run: raw TCP over loopback (the physical limit), or, with
// --rates, plain TCP over the same shaped links. Optionally migrates round-robin every
// --migrate-every bytes or switches modes every --switch-modes-every-ms. See docs/benchmarks.md
// for exactly what every run does.
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <asio/io_context.hpp>

#include "bench_report.hpp"
#include "bench_transport.hpp"
#include "commands.hpp"
#include "console.hpp"
#include "local_flow.hpp"
#include "mode_cycler.hpp"
#include "path_admin.hpp"
#include "path_shaping.hpp"
#include "shaped_tcp.hpp"
#include "status_ticker.hpp"
#include "support/test_cert.hpp"
#include "tcp_loopback.hpp"
#include "transfer.hpp"

namespace rendr::cli {
namespace {

// A shaped run without --size moves this long at the rate the mode should reach.
constexpr double kShapedSeconds = 10;

struct StreamConfig {
  std::uint64_t total = 0;
  std::size_t paths = 0;
  std::uint64_t migrate_every = 0;
  rendr::Mode mode = rendr::Mode::prime;
  BenchTransport transport = BenchTransport::tcp;
  Verify verify = Verify::compare;
  PathShaping shaping;
  std::chrono::milliseconds switch_modes_every{0};
  bool engine_per_end = false;
  // --loss: every udpflow path through a UDP fault proxy, path 0 losing this share of its
  // datagrams each way (0: the proxies without faults, the loss-free run to compare with).
  std::optional<double> loss;
  // --congestion: both ends' controller on udpflow paths (nullopt: the default).
  std::optional<rendr::Congestion> congestion;
};

// CPU time (user + system, every thread of this process) used so far, in seconds. Both ends of
// every run live in this process, so the difference around a run is what that run cost: on a
// shared machine, where throughput follows the CPU share the scheduler hands out, the cost of a
// byte is the steadier figure to compare.
double process_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

struct StreamRun {
  TransferResult transfer;
  std::uint64_t migrations = 0;
  std::uint64_t unrequested_migrations = 0;  // failovers (or other moves) nobody asked for
  std::uint64_t spurious_migrations = 0;     // deaths of healthy paths and quality moves
  std::uint64_t admin_errors = 0;            // migrate() or set_mode() calls that failed
  std::uint64_t mode_switches = 0;
  rendr::ConnStats client;  // after the transfer
  rendr::ConnStats server;
  // Over every UDP fault proxy, both directions (--loss only).
  testing::UdpFaultCounters proxied{};
};

// The reference run: throughput, worst read gap and whether it was clean.
struct ReferenceRun {
  double megabytes_per_second = 0;
  double max_stall_ms = 0;
  bool ok = false;
};

std::string progress_text(const char* what, const TransferProgress& progress, std::uint64_t total,
                          Clock::time_point start, const rendr::Conn* conn) {
  const double received = double(progress.received.load());
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  char line[200];
  std::snprintf(line, sizeof line, "[bench stream] %-8s %s / %s  %.0f MB/s", what,
                human_bytes(received).c_str(), human_bytes(double(total)).c_str(),
                seconds > 0 ? received / 1e6 / seconds : 0.0);
  std::string text = line;
  if (conn == nullptr) return text;
  const rendr::ConnStats stats = conn->stats();
  text += "  mode " + std::string(rendr::to_string(stats.mode)) + "  path " +
          std::to_string(stats.active_path) + "  migrations " + std::to_string(stats.migrations);
  // Where bytes wait when the rate drops: unacknowledged at the sender, or re-sent.
  std::snprintf(line, sizeof line, "  acked %s buffered %s re-sent %s",
                human_bytes(double(stats.bytes_acked)).c_str(),
                human_bytes(double(stats.send_buffered)).c_str(),
                human_bytes(double(stats.retransmitted_bytes)).c_str());
  text += line;
  // Per path: delivery-rate estimate, RTT and bytes in flight, to see a scheduler or queue drift.
  for (const rendr::PathInfo& path : stats.paths) {
    std::snprintf(line, sizeof line, "  [%u %.1f MB/s rtt %.1f ms flight %s]", path.id,
                  double(path.delivery_rate) / 1e6, double(path.rtt.count()) / 1e3,
                  human_bytes(double(path.in_flight)).c_str());
    text += line;
  }
  return text;
}

ReferenceRun run_loopback_tcp(const Payload& payload, std::uint64_t total, Verify verify) {
  asio::io_context io;
  TcpPair tcp = connect_tcp_loopback(io);
  TransferProgress progress;
  const Clock::time_point start = Clock::now();
  StatusTicker ticker([&] { return progress_text("raw tcp", progress, total, start, nullptr); },
                      std::chrono::milliseconds(200));
  const TransferResult t =
      run_transfer(tcp.client, tcp.server, payload, total, verify, progress, [](std::uint64_t) {});
  return {t.megabytes_per_second(), to_ms(t.max_stall), t.ok()};
}

ReferenceRun run_reference(const StreamConfig& config, const Payload& payload) {
  ReferenceRun run;
  const char* what = "raw tcp";
  if (config.shaping.empty()) {
    run = run_loopback_tcp(payload, config.total, config.verify);
  } else {
    what = "tcp x N";
    const ShapedTcpResult r = run_shaped_tcp(config.shaping, payload, config.total, config.verify);
    run = {r.megabytes_per_second(), to_ms(r.max_stall), r.ok};
  }
  char line[200];
  std::snprintf(line, sizeof line, "[bench stream] %-8s %.1f MB/s, max stall %.1f ms, %s", what,
                run.megabytes_per_second, run.max_stall_ms,
                run.ok ? "content intact" : "FAILED (content or I/O error)");
  log_line(line);
  return run;
}

StreamRun run_rendr(LocalFlow& flow, const StreamConfig& config, const Payload& payload) {
  StreamRun run;
  TransferProgress progress;
  const auto tally =
      watch_migrations(flow.client, "[bench stream] client", LogMigrations::unrequested);
  std::uint64_t next_migration_at = config.migrate_every;
  // Runs on the sender thread between two writes, as an application migrating at a byte
  // boundary would.
  auto migrate_on_schedule = [&](std::uint64_t written) {
    if (config.migrate_every == 0 || written < next_migration_at || written >= config.total) return;
    next_migration_at += config.migrate_every;
    const rendr::PathId next = next_path_round_robin(flow.client);
    const std::error_code ec = next == rendr::kNoPath ? make_error_code(rendr::errc::no_such_path)
                                                      : flow.client.migrate(next);
    if (ec) {
      ++run.admin_errors;
      log_line("[bench stream] migrate failed: " + ec.message() +
               "; paths: " + describe_paths(flow.client.stats()));
    }
  };
  const Clock::time_point start = Clock::now();
  {
    StatusTicker ticker(
        [&] { return progress_text("rendr", progress, config.total, start, &flow.client); },
        std::chrono::milliseconds(200));
    std::optional<ModeCycler> cycler;
    if (config.switch_modes_every.count() > 0)
      cycler.emplace(flow.client, config.switch_modes_every);
    run.transfer = run_transfer(flow.client, flow.server, payload, config.total, config.verify,
                                progress, migrate_on_schedule);
    if (cycler) run.admin_errors += cycler->failures();
  }
  run.client = flow.client.stats();
  run.server = flow.server.stats();
  run.migrations = flow.client.migration_count();
  run.unrequested_migrations = tally->unrequested();
  // Nothing is injected in this bench, so every death was of a healthy path; a quality move
  // between links the bench shaped alike (or did not shape) is a flap.
  run.spurious_migrations = run.client.migrations_death + run.client.migrations_quality;
  run.mode_switches = run.client.mode_switches;
  for (const auto& proxy : flow.udp_proxies) {
    for (const testing::UdpFaultCounters& c :
         {proxy->counters_client_to_server(), proxy->counters_server_to_client()}) {
      run.proxied.received += c.received;
      run.proxied.dropped += c.dropped;
    }
  }
  return run;
}

void log_run(const StreamRun& run) {
  const TransferResult& t = run.transfer;
  char line[400];
  std::snprintf(
      line, sizeof line,
      "[bench stream] rendr    %.1f MB/s, %.2f s, max stall %.1f ms, content %s, "
      "mode switches %llu, recv dups %llu, recv queue hwm %llu, bond stuck skips %llu%s%s",
      t.megabytes_per_second(), std::chrono::duration<double>(t.elapsed).count(),
      to_ms(t.max_stall), t.intact() ? "intact" : "MISMATCH",
      static_cast<unsigned long long>(run.mode_switches),
      static_cast<unsigned long long>(run.server.recv_dups),
      static_cast<unsigned long long>(run.server.recv_queue_hwm),
      static_cast<unsigned long long>(run.client.bond_stuck_skips),
      t.send_error ? (", send error: " + t.send_error.message()).c_str() : "",
      t.receive_error ? (", receive error: " + t.receive_error.message()).c_str() : "");
  log_line(line);
  for (const rendr::PathInfo& path : run.client.paths) {
    std::snprintf(line, sizeof line,
                  "[bench stream]   path %u %s: sent %s, delivery rate %.1f MB/s, rtt %.2f ms",
                  path.id, path.state.c_str(), human_bytes(double(path.bytes_sent)).c_str(),
                  double(path.delivery_rate) / 1e6, double(path.rtt.count()) / 1e3);
    log_line(line);
    if (!path.datagram) {
      if (path.congestion_window == 0) continue;  // no sample from the transport
      std::snprintf(line, sizeof line,
                    "[bench stream]     %s (%s): segments/packets sent %llu, retransmitted %llu, "
                    "cwnd %s, in flight %s, pacing %.1f MB/s, MSS/MTU %llu",
                    path.transport.c_str(), path.congestion_control.c_str(),
                    static_cast<unsigned long long>(path.packets_sent),
                    static_cast<unsigned long long>(path.packets_lost),
                    human_bytes(double(path.congestion_window)).c_str(),
                    human_bytes(double(path.bytes_in_flight)).c_str(),
                    double(path.pacing_rate) / 1e6, static_cast<unsigned long long>(path.mtu));
      log_line(line);
      continue;
    }
    std::snprintf(line, sizeof line,
                  "[bench stream]     packets sent %llu lost %llu, retransmitted %s, cwnd %s, "
                  "in flight %s, pacing %.1f MB/s, PTOs %llu, MTU %llu (ceiling %llu), "
                  "congestion events %llu, spurious losses %llu (congestion events undone %llu)",
                  static_cast<unsigned long long>(path.packets_sent),
                  static_cast<unsigned long long>(path.packets_lost),
                  human_bytes(double(path.bytes_retransmitted)).c_str(),
                  human_bytes(double(path.congestion_window)).c_str(),
                  human_bytes(double(path.bytes_in_flight)).c_str(), double(path.pacing_rate) / 1e6,
                  static_cast<unsigned long long>(path.pto_count),
                  static_cast<unsigned long long>(path.mtu),
                  static_cast<unsigned long long>(path.mtu_ceiling),
                  static_cast<unsigned long long>(path.congestion_events),
                  static_cast<unsigned long long>(path.spurious_losses),
                  static_cast<unsigned long long>(path.congestion_events_undone));
    log_line(line);
  }
}

// Per-path figures of the client's last run, by path id, for the JSON result (on stream paths
// the congestion figures are the transport's own: TCP_INFO, ngtcp2).
void add_path_figures(JsonObject& result, const rendr::ConnStats& client) {
  std::vector<rendr::PathInfo> paths = client.paths;
  std::sort(paths.begin(), paths.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  auto each = [&](const char* key, auto field) {
    std::vector<double> values;
    for (const rendr::PathInfo& p : paths)
      values.push_back(double(field(p)));
    result.add(key, values);
  };
  each("path_rtt_ms", [](const rendr::PathInfo& p) { return double(p.rtt.count()) / 1e3; });
  each("path_bytes_retransmitted", [](const rendr::PathInfo& p) { return p.bytes_retransmitted; });
  each("path_packets_sent", [](const rendr::PathInfo& p) { return p.packets_sent; });
  each("path_packets_lost", [](const rendr::PathInfo& p) { return p.packets_lost; });
  each("path_congestion_window", [](const rendr::PathInfo& p) { return p.congestion_window; });
  each("path_bytes_in_flight", [](const rendr::PathInfo& p) { return p.bytes_in_flight; });
  each("path_pacing_rate", [](const rendr::PathInfo& p) { return p.pacing_rate; });
  each("path_bandwidth_estimate", [](const rendr::PathInfo& p) { return p.bandwidth_estimate; });
  each("path_pto_count", [](const rendr::PathInfo& p) { return p.pto_count; });
  each("path_congestion_events", [](const rendr::PathInfo& p) { return p.congestion_events; });
  each("path_mtu", [](const rendr::PathInfo& p) { return p.mtu; });
  each("path_mtu_ceiling", [](const rendr::PathInfo& p) { return p.mtu_ceiling; });
  each("path_frames_sent", [](const rendr::PathInfo& p) { return p.frames_sent; });
}

// Bytes the client sent on each path (by position in id order), added over runs.
void add_path_bytes(const rendr::ConnStats& client, std::vector<double>& bytes_by_path) {
  std::vector<rendr::PathInfo> paths = client.paths;
  std::sort(paths.begin(), paths.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  bytes_by_path.resize(std::max(bytes_by_path.size(), paths.size()));
  for (std::size_t i = 0; i < paths.size(); ++i)
    bytes_by_path[i] += double(paths[i].bytes_sent);
}

std::vector<double> shares_of(std::vector<double> values) {
  double sum = 0;
  for (const double v : values)
    sum += v;
  for (double& v : values)
    v = sum > 0 ? v / sum : 0;
  return values;
}

StreamConfig parse_config(const Args& args) {
  StreamConfig config;
  config.shaping = parse_path_shaping(args);
  config.paths = args.count("paths", config.shaping.empty() ? 2 : config.shaping.paths());
  config.mode = args.mode();
  config.transport = parse_transport(args);
  const bool shaped = !config.shaping.empty();
  // A shaped run measures steady aggregation; planned migrations would only perturb it.
  config.migrate_every = args.size("migrate-every", shaped ? 0 : std::uint64_t{64} << 20);
  const double expected_mbps = config.mode == rendr::Mode::bond
                                   ? config.shaping.sum_megabytes_per_second()
                                   : config.shaping.max_megabytes_per_second();
  const auto shaped_default = std::uint64_t(expected_mbps * 1e6 * kShapedSeconds);
  config.total = args.size("size", shaped ? shaped_default : std::uint64_t{1} << 30);
  config.switch_modes_every = args.millis("switch-modes-every-ms", std::chrono::milliseconds(0));
  // Two endpoints are two processes, each with its own I/O thread; sharing one engine thread
  // between both ends is an artefact of running them in one process (--shared-engine).
  config.engine_per_end = !args.has("shared-engine");
  const std::string verify_name = args.text("verify", "compare");
  if (verify_name != "compare" && verify_name != "sha256")
    throw UsageError("--verify must be compare or sha256");
  config.verify = verify_name == "sha256" ? Verify::sha256 : Verify::compare;
  if (config.total == 0) throw UsageError("--size must be > 0");
  if (config.paths == 0) throw UsageError("--paths must be >= 1");
  if (shaped && config.paths != config.shaping.paths())
    throw UsageError("--rates needs one rate per path (--paths " + std::to_string(config.paths) +
                     ")");
  if (config.transport == BenchTransport::mixed && config.paths < 2)
    throw UsageError("--transport mixed needs --paths 2 or more");
  if (config.paths == 1 && config.migrate_every > 0)
    throw UsageError("migrating needs --paths 2 or more (or --migrate-every 0)");
  if (config.transport != BenchTransport::tcp && shaped)
    throw UsageError("--rates needs --transport tcp");
  config.congestion = args.congestion();
  if (config.congestion && config.transport != BenchTransport::udpflow &&
      config.transport != BenchTransport::mixed)
    throw UsageError("--congestion needs --transport udpflow or mixed");
  if (args.has("loss")) {
    config.loss = args.number("loss", 0);
    if (config.transport != BenchTransport::udpflow)
      throw UsageError("--loss needs --transport udpflow");
    if (*config.loss < 0 || *config.loss > 100)
      throw UsageError("--loss must be a percentage in [0, 100]");
  }
  return config;
}

int run(const Args& args) {
  const StreamConfig config = parse_config(args);
  const std::size_t repeat = args.count("repeat", 1);
  if (repeat == 0) throw UsageError("--repeat must be >= 1");
  const bool shaped = !config.shaping.empty();
  if (shaped)
    log_line("[bench stream] " + human_bytes(double(config.total)) + " per run over " +
             config.shaping.describe() + ", mode " + std::string(rendr::to_string(config.mode)));

  std::vector<testing::Shaping> shaping_by_path;
  for (std::size_t i = 0; i < config.shaping.paths(); ++i)
    shaping_by_path.push_back(config.shaping.of_path(i));
  std::vector<testing::UdpFaults> udp_faults;
  if (config.loss) udp_faults.push_back({.loss = *config.loss / 100});

  // QUIC paths: a throw-away certificate for this run, trusted by the client by file.
  std::optional<testing::TestCertificate> cert;
  if (config.transport == BenchTransport::quic) cert.emplace();
  const Payload payload;
  std::vector<double> reference_mbps, rendr_mbps, reference_ratios, migrations, stalls,
      reference_stalls, mode_switches, recv_dups, recv_queue_hwm, stuck_skips, bytes_by_path,
      retransmitted, proxy_received, proxy_dropped, reference_cpu, rendr_cpu, cpu_efficiency;
  rendr::ConnStats last_client;  // per-path figures of the last run
  // errors: transfers that failed (I/O error, early EOF, bad content); admin_errors: migrate()
  // or set_mode() calls that failed (e.g. no other path was up).
  std::uint64_t errors = 0, admin_errors = 0, unrequested_migrations = 0, spurious_migrations = 0;
  bool all_match = true;
  for (std::size_t i = 1; i <= repeat; ++i) {
    const double reference_cpu_start = process_cpu_seconds();
    const ReferenceRun reference = run_reference(config, payload);
    reference_cpu.push_back(process_cpu_seconds() - reference_cpu_start);

    std::error_code ec;
    auto flow = LocalFlow::open(
        {.paths = config.paths,
         .transport = std::string(to_string(config.transport)),
         .quic_server = cert ? rendr::TlsServerConfig{cert->cert_file(), cert->key_file()}
                             : rendr::TlsServerConfig{},
         .quic_client = cert ? rendr::TlsClientConfig{cert->cert_file(), "localhost", true}
                             : rendr::TlsClientConfig{},
         .mode = config.mode,
         .shaping = shaping_by_path,
         .udp_faults = udp_faults,
         .engine_per_end = config.engine_per_end,
         .congestion = config.congestion},
        ec);
    if (!flow)
      return report_setup_failure(
          args, "stream",
          "cannot open a rendr flow with " + std::to_string(config.paths) + " path(s), mode " +
              std::string(rendr::to_string(config.mode)) + ": " + ec.message());
    const double rendr_cpu_start = process_cpu_seconds();
    const StreamRun rendr_run = run_rendr(*flow, config, payload);
    rendr_cpu.push_back(process_cpu_seconds() - rendr_cpu_start);
    cpu_efficiency.push_back(rendr_cpu.back() > 0 ? reference_cpu.back() / rendr_cpu.back() : 0);
    log_run(rendr_run);
    char cpu_line[160];
    std::snprintf(cpu_line, sizeof cpu_line,
                  "[bench stream] cpu      reference %.2f s, rendr %.2f s (user + system, whole "
                  "process)",
                  reference_cpu.back(), rendr_cpu.back());
    log_line(cpu_line);

    const TransferResult& r = rendr_run.transfer;
    all_match = all_match && r.intact() && reference.ok;
    errors += std::uint64_t(!r.ok()) + std::uint64_t(!reference.ok);
    admin_errors += rendr_run.admin_errors;
    reference_mbps.push_back(reference.megabytes_per_second);
    rendr_mbps.push_back(r.megabytes_per_second());
    reference_ratios.push_back(reference.megabytes_per_second > 0
                                   ? rendr_mbps.back() / reference.megabytes_per_second
                                   : 0);
    migrations.push_back(double(rendr_run.migrations));
    unrequested_migrations += rendr_run.unrequested_migrations;
    spurious_migrations += rendr_run.spurious_migrations;
    mode_switches.push_back(double(rendr_run.mode_switches));
    recv_dups.push_back(double(rendr_run.server.recv_dups));
    recv_queue_hwm.push_back(double(rendr_run.server.recv_queue_hwm));
    stuck_skips.push_back(double(rendr_run.client.bond_stuck_skips));
    retransmitted.push_back(double(rendr_run.client.retransmitted_bytes));
    proxy_received.push_back(double(rendr_run.proxied.received));
    proxy_dropped.push_back(double(rendr_run.proxied.dropped));
    add_path_bytes(rendr_run.client, bytes_by_path);
    last_client = rendr_run.client;
    stalls.push_back(to_ms(r.max_stall));
    reference_stalls.push_back(reference.max_stall_ms);
  }

  // Shaped: the baseline is what the links can carry, the sum of their rates; the measured plain
  // TCP over the same proxies is reported next to it as the reference.
  const double links_mbps = config.shaping.sum_megabytes_per_second();
  const double baseline_mbps = shaped ? links_mbps : median(reference_mbps);
  JsonObject result;
  result.add("bench", "stream")
      .add("bytes", config.total)
      .add("paths", std::uint64_t{config.paths})
      .add("migrate_every", config.migrate_every)
      .add("mode", rendr::to_string(config.mode))
      .add("transport", to_string(config.transport))
      .add("engines", std::uint64_t{config.engine_per_end ? 2u : 1u})
      .add("congestion", config.congestion ? rendr::to_string(*config.congestion) : "default")
      .add("runs", std::uint64_t{repeat})
      .add("sha256_match", all_match)
      .add("migrations", median(migrations))
      .add("unrequested_migrations", unrequested_migrations)
      .add("spurious_migrations", spurious_migrations)
      .add("rendr_MBps", median(rendr_mbps))
      .add("baseline_MBps", baseline_mbps)
      .add("ratio", shaped ? median(rendr_mbps) / links_mbps : median(reference_ratios))
      .add("max_stall_ms", max_of(stalls))
      .add("baseline_max_stall_ms", max_of(reference_stalls))
      .add("reference_cpu_s", median(reference_cpu))
      .add("rendr_cpu_s", median(rendr_cpu))
      .add("cpu_efficiency", median(cpu_efficiency))
      .add("errors", errors)
      .add("admin_errors", admin_errors)
      .add("verify", config.verify == Verify::sha256
                         ? "openssl sha256 on sender and receiver, both runs"
                         : "receiver compares every byte with the sent pattern, both runs");
  if (shaped)
    result.add("baseline", "sum of path rates")
        .add("rates_mbit", config.shaping.rates_mbit)
        .add("delays_ms", config.shaping.delays_ms)
        .add("aggregation_efficiency", median(rendr_mbps) / links_mbps)
        .add("reference_tcp_MBps", median(reference_mbps))
        .add("reference_ratio", median(reference_ratios));
  result.add("mode_switches", median(mode_switches))
      .add("recv_dups", median(recv_dups))
      .add("recv_queue_hwm", max_of(recv_queue_hwm))
      .add("bond_stuck_skips", median(stuck_skips))
      .add("path_share", shares_of(bytes_by_path));
  // What the loss did: datagrams the proxies dropped (both directions, every path) and what the
  // sender re-sent for it.
  if (config.loss)
    result.add("loss_pct", *config.loss)
        .add("proxy_datagrams", median(proxy_received))
        .add("proxy_dropped", median(proxy_dropped))
        .add("retransmitted_bytes", median(retransmitted));
  add_path_figures(result, last_client);
  if (repeat > 1) {
    result.add("rendr_MBps_each", rendr_mbps);
    result.add(shaped ? "reference_tcp_MBps_each" : "baseline_MBps_each", reference_mbps);
  }
  print_result(args, "rendr bench stream (medians over runs; stall = worst run)", result);
  return all_match && errors == 0 && admin_errors == 0 ? 0 : 1;
}

}  // namespace

Command bench_stream_command() {
  return {
      {"bench stream",
       "bulk throughput in any mode, vs raw TCP or shaped links",
       "--size BYTES --paths N [--mode prime|race|bond] [--rates MBIT,MBIT [--delays MS,MS]]\n"
       "    [--migrate-every BYTES] [--switch-modes-every-ms MS] [--repeat K]\n"
       "    [--transport tcp|quic|udpflow|mixed [--loss PCT] [--congestion cubic|newreno|bbr]]\n"
       "    [--json]",
       "Moves --size bytes over a rendr flow with N loopback paths and, first, over a reference\n"
       "in the same run: one raw TCP connection on loopback, or with --rates one plain TCP\n"
       "connection per path through the same shaped proxies (the baseline is then the sum of\n"
       "the path rates). Optionally migrates round-robin every --migrate-every bytes written or\n"
       "switches modes (prime, race, prime, bond, ...) every --switch-modes-every-ms. One\n"
       "sender and one receiver thread, 1 MiB writes and reads, and the same verification in\n"
       "both runs. Sizes accept KiB/MiB/GiB (and KB/MB/GB).",
       {{"size", OptionSpec::Kind::value, "BYTES",
         "bytes to move per run (default 1GiB; with --rates 10 s at the mode's nominal rate)"},
        {"paths", OptionSpec::Kind::value, "N",
         "rendr paths (default 2, or one per --rates value)"},
        {"rates", OptionSpec::Kind::value, "MBIT,MBIT,...",
         "put path i through a FaultProxy limited to MBIT Mbit/s each way"},
        {"delays", OptionSpec::Kind::value, "MS,MS,...",
         "one-way delay added each way on path i (RTT grows by 2x; needs --rates)"},
        {"migrate-every", OptionSpec::Kind::value, "BYTES",
         "planned migration every BYTES written (default 64MiB, 0 with --rates; 0 = never)"},
        {"switch-modes-every-ms", OptionSpec::Kind::value, "MS",
         "switch modes prime->race->prime->bond->... every MS during the transfer"},
        {"repeat", OptionSpec::Kind::value, "K",
         "run reference+rendr K times, report medians (default 1)"},
        {"shared-engine", OptionSpec::Kind::flag, "",
         "run the rendr client and server on the default engine's single I/O thread (default: "
         "an engine each, as two processes would have)"},
        {"verify", OptionSpec::Kind::value, "compare|sha256",
         "compare (default): the receiver memcmps every byte with the known pattern; "
         "sha256: OpenSSL SHA-256 on both ends"},
        {"loss", OptionSpec::Kind::value, "PCT",
         "udpflow only: every path through a UDP fault proxy, path 0 dropping PCT % of its "
         "datagrams at random each way (0: the same proxies, no loss)"},
        mode_option(),
        transport_option(),
        congestion_option(),
        json_option()}},
      run};
}

}  // namespace rendr::cli
