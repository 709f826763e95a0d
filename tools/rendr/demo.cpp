// `rendr demo`: the whole story in one process. A client and a server exchange a few hundred MiB
// over loopback paths, each through a fault proxy, while a director migrates, blackholes the
// active path (failover), and replaces the dead path with a new one (add_path). Ends with a
// summary; fails if the SHA-256 differs or any error surfaced.
#include <atomic>
#include <cstdio>
#include <functional>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "commands.hpp"
#include "console.hpp"
#include "local_flow.hpp"
#include "path_admin.hpp"
#include "status_ticker.hpp"
#include "transfer.hpp"

namespace rendr::cli {
namespace {

constexpr std::chrono::milliseconds kFailoverTimeout{5000};
constexpr std::chrono::milliseconds kPathUpTimeout{5000};

struct Event {
  double at_fraction;                // of the bytes written
  std::function<std::string()> act;  // returns what happened, for the log
};

class Director {
 public:
  Director(LocalFlow& flow, MigrationTally& migrations, std::uint64_t& errors)
      : flow_(flow), migrations_(migrations), errors_(errors) {}

  std::string migrate_round_robin() {
    const rendr::PathId from = flow_.client.active_path();
    const rendr::PathId to = next_path_round_robin(flow_.client);
    if (to == rendr::kNoPath) return fail("migrate: no other path is up");
    if (const std::error_code ec = flow_.client.migrate(to))
      return fail("migrate: " + ec.message());
    return "migrated path " + std::to_string(from) + " -> " + std::to_string(to);
  }

  std::string blackhole_active() {
    victim_ = flow_.client.active_path();
    testing::FaultProxy* proxy = flow_.proxy_of(victim_);
    if (proxy == nullptr) return fail("blackhole: no proxy for the active path");
    const Clock::time_point start = Clock::now();
    migrations_.faulted_path = victim_;
    proxy->set_mode(testing::FaultMode::blackhole);
    while (flow_.client.active_path() == victim_ || flow_.client.active_path() == rendr::kNoPath) {
      if (Clock::now() - start > kFailoverTimeout) return fail("blackhole: no failover");
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    char text[160];
    std::snprintf(text, sizeof text, "blackholed path %u -> failover to path %u after %.1f ms",
                  victim_, flow_.client.active_path(), to_ms(Clock::now() - start));
    return text;
  }

  std::string replace_dead_path() {
    std::error_code ec;
    added_ = flow_.replace_path(victim_, ec);
    if (ec) return fail("replace path: " + ec.message());
    if (!wait_for_up_paths(flow_.client, flow_.proxies.size(), kPathUpTimeout))
      return fail("replace path: the new path did not come up");
    return "removed path " + std::to_string(victim_) + ", added path " + std::to_string(added_) +
           " (" + path_spec(flow_.client.stats(), added_) + ") through a new proxy";
  }

  std::string migrate_to_added() {
    const rendr::PathId from = flow_.client.active_path();
    if (const std::error_code ec = flow_.client.migrate(added_))
      return fail("migrate to the added path: " + ec.message());
    return "migrated path " + std::to_string(from) + " -> " + std::to_string(added_) +
           " (the re-added path)";
  }

 private:
  std::string fail(std::string what) {
    ++errors_;
    return "ERROR " + what;
  }
  LocalFlow& flow_;
  MigrationTally& migrations_;
  std::uint64_t& errors_;
  rendr::PathId victim_ = rendr::kNoPath;
  rendr::PathId added_ = rendr::kNoPath;
};

std::string status_text(const TransferProgress& progress, std::uint64_t total,
                        Clock::time_point start, const rendr::Conn& client) {
  const double received = double(progress.received.load());
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  char line[240];
  std::snprintf(line, sizeof line,
                "[demo] %s / %s  %5.0f MB/s  mode %s  active path %u  migrations %llu  max stall "
                "%.1f ms",
                human_bytes(received).c_str(), human_bytes(double(total)).c_str(),
                seconds > 0 ? received / 1e6 / seconds : 0.0,
                std::string(rendr::to_string(client.mode())).c_str(), client.active_path(),
                static_cast<unsigned long long>(client.migration_count()),
                double(progress.longest_gap_ns.load()) / 1e6);
  return line;
}

int run(const Args& args) {
  const std::uint64_t total = args.size("size", std::uint64_t{512} << 20);
  const std::size_t paths = args.count("paths", 3);
  const rendr::Mode mode = args.mode();
  if (paths < 2 || paths > 3) throw UsageError("--paths must be 2 or 3");
  if (total < (std::uint64_t{16} << 20)) throw UsageError("--size must be at least 16MiB");

  log_line("[demo] starting: " + human_bytes(double(total)) + " over " + std::to_string(paths) +
           " loopback TCP paths, each through a fault proxy, mode " +
           std::string(rendr::to_string(mode)));
  std::error_code ec;
  auto flow = LocalFlow::open({.paths = paths, .through_proxies = true, .mode = mode}, ec);
  if (!flow) {
    log_line("[demo] cannot open a rendr flow: " + ec.message());
    return 1;
  }
  const auto migrations =
      watch_migrations(flow->client, "[demo] client", LogMigrations::unrequested);
  for (const rendr::PathInfo& path : flow->client.stats().paths)
    log_line("[demo] path " + std::to_string(path.id) + ": " + path.spec + " (" + path.state +
             (path.active ? ", active)" : ")"));

  std::uint64_t director_errors = 0;
  Director director(*flow, *migrations, director_errors);
  const std::vector<Event> events = {
      {0.12, [&] { return director.migrate_round_robin(); }},
      {0.25, [&] { return director.migrate_round_robin(); }},
      {0.40, [&] { return director.blackhole_active(); }},
      {0.55, [&] { return director.replace_dead_path(); }},
      {0.70, [&] { return director.migrate_to_added(); }},
      {0.85, [&] { return director.migrate_round_robin(); }},
  };

  const Payload payload;
  TransferProgress progress;
  std::atomic<bool> transfer_done{false};
  const Clock::time_point start = Clock::now();
  std::thread director_thread([&] {
    for (const Event& event : events) {
      const auto due = std::uint64_t(event.at_fraction * double(total));
      while (progress.written.load() < due && !transfer_done)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      if (transfer_done) return;
      log_line("[demo] " + std::to_string(int(event.at_fraction * 100)) + "%: " + event.act());
    }
  });
  TransferResult result;
  {
    StatusTicker ticker([&] { return status_text(progress, total, start, flow->client); },
                        std::chrono::milliseconds(100));
    result = run_transfer(flow->client, flow->server, payload, total, Verify::sha256, progress,
                          [](std::uint64_t) {});
    transfer_done = true;
    director_thread.join();
  }

  const bool ok = result.ok() && director_errors == 0;
  const rendr::ConnStats server_stats = flow->server.stats();
  char summary[1400];
  std::snprintf(
      summary, sizeof summary,
      "rendr demo summary\n"
      "  transferred  %s in %.2f s (%.0f MB/s), through %zu proxied paths\n"
      "  mode         %s: %llu duplicate copies dropped, reorder buffer high-water %llu, "
      "%llu bond stuck skips\n"
      "  sha-256      %s\n"
      "               %s (received)\n"
      "  migrations   %llu: %llu planned, %llu after a path died (%llu spurious), %llu other "
      "(server saw %llu)\n"
      "  max stall    %.1f ms (longest gap between two reads at the receiver)\n"
      "  errors       %s%s%s\n"
      "  result       %s\n",
      human_bytes(double(result.bytes_received)).c_str(),
      std::chrono::duration<double>(result.elapsed).count(), result.megabytes_per_second(), paths,
      std::string(rendr::to_string(mode)).c_str(),
      static_cast<unsigned long long>(server_stats.recv_dups),
      static_cast<unsigned long long>(server_stats.recv_queue_hwm),
      static_cast<unsigned long long>(flow->client.bond_stuck_skips()), result.sent_sha256.c_str(),
      result.received_sha256.c_str(),
      static_cast<unsigned long long>(flow->client.migration_count()),
      static_cast<unsigned long long>(migrations->requested.load()),
      static_cast<unsigned long long>(migrations->after_death.load()),
      static_cast<unsigned long long>(migrations->unexpected_deaths.load()),
      static_cast<unsigned long long>(migrations->other.load()),
      static_cast<unsigned long long>(flow->server.migration_count()), to_ms(result.max_stall),
      director_errors ? (std::to_string(director_errors) + " in the scenario").c_str() : "none",
      result.send_error ? ("; send: " + result.send_error.message()).c_str() : "",
      result.receive_error ? ("; receive: " + result.receive_error.message()).c_str() : "",
      ok ? "OK: every byte arrived once, in order"
         : (result.intact() ? "FAILED" : "FAILED: SHA-256 MISMATCH"));
  std::cout << summary << std::flush;
  return ok ? 0 : 1;
}

}  // namespace

Command demo_command() {
  return {
      {"demo",
       "migration, failover and re-added path, live, in one process",
       "[--size BYTES] [--paths 2|3] [--mode prime|race|bond]",
       "Runs a client and a server in this process over loopback TCP paths, each through a\n"
       "fault proxy, and transfers --size bytes while migrating, blackholing the active path\n"
       "(failover) and replacing it with a new path. Live status on stderr, summary on stdout;\n"
       "exits non-zero if the SHA-256 differs or any error surfaced.",
       {{"size", OptionSpec::Kind::value, "BYTES", "bytes to transfer (default 512MiB)"},
        {"paths", OptionSpec::Kind::value, "N", "paths, 2 or 3 (default 3)"},
        mode_option()}},
      run};
}

}  // namespace rendr::cli
