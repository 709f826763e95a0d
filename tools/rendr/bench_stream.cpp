// `rendr bench stream`: bulk throughput of raw TCP over loopback (the physical limit) and of a
// rendr flow with N loopback paths migrating round-robin every --migrate-every bytes, in one run.
// See docs/benchmarks.md for exactly what both runs do.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <string>
#include <vector>

#include <asio/io_context.hpp>

#include "bench_report.hpp"
#include "commands.hpp"
#include "console.hpp"
#include "local_flow.hpp"
#include "path_admin.hpp"
#include "status_ticker.hpp"
#include "tcp_loopback.hpp"
#include "transfer.hpp"

namespace rendr::cli {
namespace {

struct StreamRun {
  TransferResult transfer;
  std::uint64_t migrations = 0;
  std::uint64_t unrequested_migrations = 0;  // failovers (or other moves) nobody asked for
  std::uint64_t admin_errors = 0;            // migrate() calls that failed
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
  if (conn != nullptr)
    text += "  path " + std::to_string(conn->active_path()) + "  migrations " +
            std::to_string(conn->migration_count());
  return text;
}

StreamRun run_baseline(const Payload& payload, std::uint64_t total, Verify verify) {
  asio::io_context io;
  TcpPair tcp = connect_tcp_loopback(io);
  TransferProgress progress;
  const Clock::time_point start = Clock::now();
  StatusTicker ticker([&] { return progress_text("raw tcp", progress, total, start, nullptr); },
                      std::chrono::milliseconds(200));
  return {
      run_transfer(tcp.client, tcp.server, payload, total, verify, progress, [](std::uint64_t) {})};
}

StreamRun run_rendr(LocalFlow& flow, const Payload& payload, std::uint64_t total, Verify verify,
                    std::uint64_t migrate_every) {
  StreamRun run;
  TransferProgress progress;
  const auto tally =
      watch_migrations(flow.client, "[bench stream] client", LogMigrations::unrequested);
  std::uint64_t next_migration_at = migrate_every;
  // Runs on the sender thread between two writes, as an application migrating at a byte
  // boundary would.
  auto migrate_on_schedule = [&](std::uint64_t written) {
    if (migrate_every == 0 || written < next_migration_at || written >= total) return;
    next_migration_at += migrate_every;
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
        [&] { return progress_text("rendr", progress, total, start, &flow.client); },
        std::chrono::milliseconds(200));
    run.transfer = run_transfer(flow.client, flow.server, payload, total, verify, progress,
                                migrate_on_schedule);
  }
  run.migrations = flow.client.migration_count();
  run.unrequested_migrations = tally->unrequested();
  return run;
}

void log_run(const char* what, const StreamRun& run) {
  const TransferResult& t = run.transfer;
  char line[300];
  std::snprintf(line, sizeof line,
                "[bench stream] %-8s %.0f MB/s, %.2f s, max stall %.1f ms, content %s%s%s", what,
                t.megabytes_per_second(), std::chrono::duration<double>(t.elapsed).count(),
                to_ms(t.max_stall), t.intact() ? "intact" : "MISMATCH",
                t.send_error ? (", send error: " + t.send_error.message()).c_str() : "",
                t.receive_error ? (", receive error: " + t.receive_error.message()).c_str() : "");
  log_line(line);
}

int run(const Args& args) {
  const std::uint64_t total = args.size("size", std::uint64_t{1} << 30);
  const std::size_t paths = args.count("paths", 2);
  const std::uint64_t migrate_every = args.size("migrate-every", std::uint64_t{64} << 20);
  const std::size_t repeat = args.count("repeat", 1);
  const rendr::Mode mode = args.mode();
  const std::string verify_name = args.text("verify", "compare");
  if (verify_name != "compare" && verify_name != "sha256")
    throw UsageError("--verify must be compare or sha256");
  const Verify verify = verify_name == "sha256" ? Verify::sha256 : Verify::compare;
  if (total == 0) throw UsageError("--size must be > 0");
  if (paths == 0) throw UsageError("--paths must be >= 1");
  if (paths == 1 && migrate_every > 0)
    throw UsageError("migrating needs --paths 2 or more (or --migrate-every 0)");
  if (repeat == 0) throw UsageError("--repeat must be >= 1");

  const Payload payload;
  std::vector<double> baseline_mbps, rendr_mbps, ratios, migrations, stalls, baseline_stalls;
  // errors: transfers that failed (I/O error, early EOF, bad content); admin_errors: migrate()
  // calls that failed (e.g. no other path was up).
  std::uint64_t errors = 0, admin_errors = 0, unrequested_migrations = 0;
  bool all_match = true;
  for (std::size_t i = 1; i <= repeat; ++i) {
    const StreamRun baseline = run_baseline(payload, total, verify);
    log_run("raw tcp", baseline);

    std::error_code ec;
    auto flow = LocalFlow::open({.paths = paths, .mode = mode}, ec);
    if (!flow)
      return report_setup_failure(args, "stream",
                                  "cannot open a rendr flow with " + std::to_string(paths) +
                                      " path(s), mode " + std::string(rendr::to_string(mode)) +
                                      ": " + ec.message());
    const StreamRun rendr_run = run_rendr(*flow, payload, total, verify, migrate_every);
    log_run("rendr", rendr_run);

    const TransferResult& r = rendr_run.transfer;
    all_match = all_match && r.intact() && baseline.transfer.intact();
    errors += std::uint64_t(!r.ok()) + std::uint64_t(!baseline.transfer.ok());
    admin_errors += rendr_run.admin_errors;
    baseline_mbps.push_back(baseline.transfer.megabytes_per_second());
    rendr_mbps.push_back(r.megabytes_per_second());
    ratios.push_back(baseline_mbps.back() > 0 ? rendr_mbps.back() / baseline_mbps.back() : 0);
    migrations.push_back(double(rendr_run.migrations));
    unrequested_migrations += rendr_run.unrequested_migrations;
    stalls.push_back(to_ms(r.max_stall));
    baseline_stalls.push_back(to_ms(baseline.transfer.max_stall));
  }

  JsonObject result;
  result.add("bench", "stream")
      .add("bytes", total)
      .add("paths", std::uint64_t{paths})
      .add("migrate_every", migrate_every)
      .add("mode", rendr::to_string(mode))
      .add("runs", std::uint64_t{repeat})
      .add("sha256_match", all_match)
      .add("migrations", median(migrations))
      .add("unrequested_migrations", unrequested_migrations)
      .add("rendr_MBps", median(rendr_mbps))
      .add("baseline_MBps", median(baseline_mbps))
      .add("ratio", median(ratios))
      .add("max_stall_ms", max_of(stalls))
      .add("baseline_max_stall_ms", max_of(baseline_stalls))
      .add("errors", errors)
      .add("admin_errors", admin_errors)
      .add("verify", verify == Verify::sha256
                         ? "openssl sha256 on sender and receiver, both runs"
                         : "receiver compares every byte with the sent pattern, both runs");
  if (repeat > 1)
    result.add("rendr_MBps_each", rendr_mbps).add("baseline_MBps_each", baseline_mbps);
  print_result(args, "rendr bench stream (medians over runs; stall = worst run)", result);
  return all_match && errors == 0 && admin_errors == 0 ? 0 : 1;
}

}  // namespace

Command bench_stream_command() {
  return {{"bench stream",
           "bulk throughput vs raw TCP, with planned migrations",
           "--size BYTES --paths N --migrate-every BYTES [--repeat K] [--mode prime] [--json]",
           "Moves --size bytes over raw TCP on loopback (baseline), then over a rendr flow with\n"
           "N loopback paths, migrating round-robin every --migrate-every bytes written. One\n"
           "sender and one receiver thread, 1 MiB writes and reads, and the same verification\n"
           "in both runs. Sizes accept KiB/MiB/GiB (and KB/MB/GB).",
           {{"size", OptionSpec::Kind::value, "BYTES", "bytes to move per run (default 1GiB)"},
            {"paths", OptionSpec::Kind::value, "N", "rendr paths (default 2)"},
            {"migrate-every", OptionSpec::Kind::value, "BYTES",
             "planned migration every BYTES written (default 64MiB; 0 = never)"},
            {"repeat", OptionSpec::Kind::value, "K",
             "run baseline+rendr K times, report medians (default 1)"},
            {"verify", OptionSpec::Kind::value, "compare|sha256",
             "compare (default): the receiver memcmps every byte with the known pattern; "
             "sha256: OpenSSL SHA-256 on both ends"},
            mode_option(),
            json_option()}},
          run};
}

}  // namespace rendr::cli
