// `rendr bench echo`: round-trip latency of small messages sent at a fixed interval, first over
// raw TCP on loopback, then over a rendr flow with planned migrations every few seconds.
// Blocking (default): a thread per direction and blocking calls. --async: coroutines on one
// application io_context, which is also rendr's engine (rendr::Engine over it), for both the
// raw TCP baseline and the rendr flow.
#include <cmath>
#include <cstdio>
#include <ctime>
#include <functional>
#include <future>
#include <optional>
#include <string>
#include <thread>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

#include "async_echo.hpp"
#include "bench_report.hpp"
#include "commands.hpp"
#include "console.hpp"
#include "echo.hpp"
#include "local_flow.hpp"
#include "path_admin.hpp"
#include "tcp_loopback.hpp"

namespace rendr::cli {
namespace {

constexpr std::chrono::seconds kDrain{3};  // for the echoes still in flight at the end

struct EchoRun {
  EchoReport client;
  std::error_code server_error;
  std::uint64_t migrations = 0;
  std::uint64_t admin_errors = 0;
  double io_cpu_us = 0;  // --async: CPU time of the io thread during the run
};

template <class Stream, class DuringRun>
EchoRun run_echo(Stream& client, Stream& server, std::chrono::microseconds interval,
                 DuringRun during_run) {
  EchoRun run;
  std::uint64_t echoed = 0;
  std::thread server_thread([&] { run.server_error = serve_echo(server, echoed); });
  EchoProbe<Stream> probe(client, interval);
  probe.start();
  during_run();
  run.client = probe.finish(kDrain);
  server_thread.join();
  return run;
}

// The same with coroutines on the streams' io_context (which another thread runs).
template <class Stream, class DuringRun>
EchoRun run_async_echo(Stream& client, Stream& server, std::chrono::microseconds interval,
                       DuringRun during_run) {
  EchoRun run;
  std::promise<std::error_code> served;
  asio::co_spawn(server.get_executor(), async_serve_echo(server, served), asio::detached);
  AsyncEchoProbe<Stream> probe(client, interval);
  const auto thread_cpu = [&] {
    std::promise<double> cpu;
    asio::post(server.get_executor(), [&] {
      timespec t{};
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
      cpu.set_value(t.tv_sec * 1e6 + t.tv_nsec / 1e3);
    });
    return cpu.get_future().get();
  };
  const double cpu_before = thread_cpu();
  probe.start();
  during_run();
  run.client = probe.finish(kDrain);
  run.io_cpu_us = thread_cpu() - cpu_before;
  auto server_result = served.get_future();
  if (server_result.wait_for(kDrain) == std::future_status::ready) {
    run.server_error = server_result.get();
  } else {
    run.server_error = std::make_error_code(std::errc::timed_out);
  }
  return run;
}

void log_run(const char* what, const EchoRun& run) {
  const EchoReport& r = run.client;
  char line[300];
  std::snprintf(line, sizeof line,
                "[bench echo] %-8s %llu echoes, %llu lost, p50 %.1f us, p99 %.1f us, max %.1f us, "
                "%llu migrations%s",
                what, static_cast<unsigned long long>(r.received),
                static_cast<unsigned long long>(r.lost()), percentile(r.rtt_us, 50),
                percentile(r.rtt_us, 99), max_of(r.rtt_us),
                static_cast<unsigned long long>(run.migrations),
                r.errors() || run.server_error ? ", ERRORS" : "");
  log_line(line);
  if (run.io_cpu_us > 0 && r.received > 0) {
    std::snprintf(line, sizeof line, "[bench echo] %-8s io thread CPU %.1f us per echo", what,
                  run.io_cpu_us / static_cast<double>(r.received));
    log_line(line);
  }
}

int run(const Args& args) {
  const double duration_s = args.number("duration", 10);
  const double interval_ms = args.number("interval-ms", 1);
  const double migrate_every_s = args.number("migrate-every-s", 1);
  const std::size_t paths = args.count("paths", 2);
  const rendr::Mode mode = args.mode();
  if (interval_ms <= 0) throw UsageError("--interval-ms must be > 0");
  if (paths == 0) throw UsageError("--paths must be >= 1");
  if (paths == 1 && migrate_every_s > 0)
    throw UsageError("migrating needs --paths 2 or more (or --migrate-every-s 0)");
  const auto duration =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(duration_s));
  const auto interval = std::chrono::microseconds(std::llround(interval_ms * 1000));

  const bool async = args.has("async");

  // --async: one application thread runs this context: the coroutines of both ends, and rendr
  // (an Engine over it), so no operation changes threads.
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::thread io_thread;
  std::optional<rendr::Engine> app_engine;
  if (async) {
    io_thread = std::thread([&] { io.run(); });
    app_engine.emplace(io);
  }
  struct StopIo {
    std::function<void()> stop;
    ~StopIo() { stop(); }
  } stop_io{[&] {
    work.reset();
    io.stop();
    if (io_thread.joinable()) io_thread.join();
  }};

  TcpPair tcp = connect_tcp_loopback(io);
  log_line(std::string("[bench echo] raw tcp for ") + short_number(duration_s) + " s" +
           (async ? ", coroutines on one io_context" : ""));
  const auto sleep = [&] { std::this_thread::sleep_for(duration); };
  const EchoRun baseline = async ? run_async_echo(tcp.client, tcp.server, interval, sleep)
                                 : run_echo(tcp.client, tcp.server, interval, sleep);
  log_run("raw tcp", baseline);

  std::error_code ec;
  auto flow = LocalFlow::open(
      {.paths = paths, .mode = mode, .engine = app_engine ? &*app_engine : nullptr}, ec);
  if (!flow)
    return report_setup_failure(args, "echo",
                                "cannot open a rendr flow with " + std::to_string(paths) +
                                    " path(s), mode " + std::string(rendr::to_string(mode)) + ": " +
                                    ec.message());
  log_line("[bench echo] rendr for " + short_number(duration_s) + " s, migrating every " +
           short_number(migrate_every_s) + " s");
  const auto tally =
      watch_migrations(flow->client, "[bench echo] client", LogMigrations::unrequested);
  std::uint64_t admin_errors = 0;
  const auto migrate_while_running = [&] {
    const Clock::time_point end = Clock::now() + duration;
    const auto period =
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(migrate_every_s));
    for (Clock::time_point next = Clock::now() + period; migrate_every_s > 0 && next < end;
         next += period) {
      std::this_thread::sleep_until(next);
      const rendr::PathId target = next_path_round_robin(flow->client);
      const std::error_code migrate_ec = target == rendr::kNoPath
                                             ? make_error_code(rendr::errc::no_such_path)
                                             : flow->client.migrate(target);
      if (migrate_ec) {
        ++admin_errors;
        log_line("[bench echo] migrate failed: " + migrate_ec.message());
      }
    }
    std::this_thread::sleep_until(end);
  };
  EchoRun rendr_run =
      async ? run_async_echo(flow->client, flow->server, interval, migrate_while_running)
            : run_echo(flow->client, flow->server, interval, migrate_while_running);
  rendr_run.migrations = flow->client.migration_count();
  rendr_run.admin_errors = admin_errors;
  log_run("rendr", rendr_run);

  const EchoReport& r = rendr_run.client;
  const EchoReport& b = baseline.client;
  const double baseline_p50 = percentile(b.rtt_us, 50);
  const double baseline_p99 = percentile(b.rtt_us, 99);
  const std::uint64_t errors = r.errors() + (rendr_run.server_error ? 1 : 0) + b.errors() +
                               (baseline.server_error ? 1 : 0) + admin_errors;
  JsonObject result;
  result.add("bench", "echo")
      .add("duration_s", duration_s)
      .add("interval_ms", interval_ms)
      .add("migrate_every_s", migrate_every_s)
      .add("paths", std::uint64_t{paths})
      .add("mode", rendr::to_string(mode))
      .add("echoes", r.received)
      .add("lost", r.lost())
      .add("migrations", rendr_run.migrations)
      .add("unrequested_migrations", tally->unrequested())
      .add("rendr_p50_us", percentile(r.rtt_us, 50))
      .add("rendr_p99_us", percentile(r.rtt_us, 99))
      .add("rendr_max_us", max_of(r.rtt_us))
      .add("baseline_echoes", b.received)
      .add("baseline_p50_us", baseline_p50)
      .add("baseline_p99_us", baseline_p99)
      .add("baseline_max_us", max_of(b.rtt_us))
      .add("p99_ratio", baseline_p99 > 0 ? percentile(r.rtt_us, 99) / baseline_p99 : 0.0)
      .add("p50_ratio", baseline_p50 > 0 ? percentile(r.rtt_us, 50) / baseline_p50 : 0.0)
      .add("async", async)
      .add("errors", errors);
  print_result(args, "rendr bench echo", result);
  return errors == 0 && r.lost() == 0 ? 0 : 1;
}

}  // namespace

Command bench_echo_command() {
  return {{"bench echo",
           "echo latency vs raw TCP, with planned migrations",
           "--duration SECONDS --interval-ms MS --migrate-every-s S [--paths N] [--async] [--json]",
           "Sends a 32-byte timestamped message every --interval-ms and measures the echo's\n"
           "round trip: first over raw TCP on loopback, then over a rendr flow with N loopback\n"
           "paths and a planned round-robin migration every --migrate-every-s seconds.\n"
           "--async: both runs as coroutines on one application io_context, which is also\n"
           "rendr's engine (rendr::Engine over it); default: blocking calls on threads.",
           {{"duration", OptionSpec::Kind::value, "SECONDS", "length of each run (default 10)"},
            {"interval-ms", OptionSpec::Kind::value, "MS", "send interval (default 1)"},
            {"migrate-every-s", OptionSpec::Kind::value, "S",
             "planned migration period (default 1; 0 = never)"},
            {"paths", OptionSpec::Kind::value, "N", "rendr paths (default 2)"},
            {"async", OptionSpec::Kind::flag, "", "coroutines on the application's io_context"},
            mode_option(),
            json_option()}},
          run};
}

}  // namespace rendr::cli
