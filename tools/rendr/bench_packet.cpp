// `rendr bench packet`: messages at a fixed rate, echoed back, first over raw UDP on loopback
// (the baseline), then over a rendr packet flow with planned migrations: rate achieved, loss,
// duplicates, reordering and round-trip times of both, in the same run (issue 10, target G3).
//
// Each message carries its sequence number and its send time (steady clock, read just before
// the send). One sender thread paces by the clock: it sends every message due by now, then
// sleeps until the next one is due (at least 100 us), so a rate of 100,000/s costs a sleep per
// batch of about ten, not per message. One receiver thread counts what comes back.
#include <sys/resource.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench_report.hpp"
#include "bench_transport.hpp"
#include "commands.hpp"
#include "console.hpp"
#include "local_flow.hpp"
#include "packet_service.hpp"
#include "path_admin.hpp"
#include "stats.hpp"
#include "support/test_cert.hpp"

namespace rendr::cli {
namespace {

constexpr std::size_t kHeader = 16;  // sequence number, send time (ns), both host order
// How long the end waits for echoes still in flight (bounded: whatever is missing then is lost).
constexpr std::chrono::seconds kDrain{3};
constexpr std::chrono::milliseconds kUdpPoll{50};  // how soon the UDP threads see `stop`
constexpr std::chrono::seconds kMoveWait{1};  // how long a planned move waits for the one before
constexpr int kUdpBufferBytes = 4 * 1024 * 1024;

struct PacketConfig {
  double pps = 0;
  std::size_t size = 0;
  double duration_s = 0;
  std::size_t paths = 1;
  rendr::Mode mode = rendr::Mode::prime;
  BenchTransport transport = BenchTransport::udpflow;
  std::uint64_t migrations = 0;                // --migrations K: evenly over the run
  std::chrono::milliseconds migrate_every{0};  // --migrate-every-ms M
  bool reliable = true;
  bool ordered = true;
  bool async_echo = false;

  std::uint64_t total() const { return std::uint64_t(std::llround(pps * duration_s)); }
};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// CPU time (user + system, every thread of this process) used so far, in seconds: both ends of
// each run live in this process.
double process_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// What the receiver saw. Written by the receiver thread only; `distinct` is also read while it
// runs (to end the drain early).
class Tally {
 public:
  explicit Tally(std::uint64_t total) : seen_(total, 0) { rtt_us_.reserve(total); }

  void on_message(const std::byte* data, std::size_t size) {
    const std::int64_t arrived = now_ns();
    if (size < kHeader) {
      ++malformed_;
      return;
    }
    std::uint64_t seq = 0;
    std::int64_t sent = 0;
    std::memcpy(&seq, data, 8);
    std::memcpy(&sent, data + 8, 8);
    if (seq >= seen_.size()) {
      ++malformed_;
      return;
    }
    if (seen_[seq] != 0) {
      ++duplicated_;
      return;
    }
    seen_[seq] = 1;
    if (highest_ && seq < *highest_) ++reordered_;
    highest_ = std::max(highest_.value_or(0), seq);
    rtt_us_.push_back(double(arrived - sent) / 1e3);
    distinct_.fetch_add(1, std::memory_order_release);
  }

  std::uint64_t distinct() const { return distinct_.load(std::memory_order_acquire); }
  std::uint64_t duplicated() const { return duplicated_; }
  std::uint64_t reordered() const { return reordered_; }
  std::uint64_t malformed() const { return malformed_; }
  const std::vector<double>& rtt_us() const { return rtt_us_; }

 private:
  std::vector<std::uint8_t> seen_;  // per sequence number: arrived yet
  std::vector<double> rtt_us_;      // of each first copy
  std::optional<std::uint64_t> highest_;
  std::uint64_t duplicated_ = 0;
  std::uint64_t reordered_ = 0;
  std::uint64_t malformed_ = 0;  // too short, or a sequence number never sent
  std::atomic<std::uint64_t> distinct_{0};
};

// The shortest sleep between batches. A sleep costs a system call, a timer and a wakeup: at
// 100,000 messages/s one per message cost about a fifth of a core here, taken from the system
// being measured (the baseline's as much as rendr's). Each message is stamped just before its
// send, so a batch's wait is not in its round trip.
constexpr auto kMinSleep = std::chrono::microseconds(100);

// Sends config.total() messages at config.pps: every message due by now, then a sleep until the
// next is due, at least kMinSleep. `send` returns false to stop (an error). Returns how many
// were sent.
template <class Send>
std::uint64_t paced_send(const PacketConfig& config, Send send) {
  std::vector<std::byte> message(config.size, std::byte{0x5a});
  const std::uint64_t total = config.total();
  const Clock::time_point start = Clock::now();
  const auto due_time = [&](std::uint64_t seq) {
    return start + std::chrono::duration_cast<Clock::duration>(
                       std::chrono::duration<double>(double(seq) / config.pps));
  };
  std::uint64_t sent = 0;
  while (sent < total) {
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    const std::uint64_t due = std::min(total, std::uint64_t(std::floor(elapsed * config.pps)) + 1);
    for (; sent < due; ++sent) {
      const std::int64_t stamp = now_ns();
      std::memcpy(message.data(), &sent, 8);
      std::memcpy(message.data() + 8, &stamp, 8);
      if (!send(message)) return sent;
    }
    if (sent < total)
      std::this_thread::sleep_until(std::max(due_time(sent), Clock::now() + kMinSleep));
  }
  return sent;
}

// Waits until every message sent came back, or kDrain.
void drain(const Tally& tally, std::uint64_t sent) {
  const Clock::time_point deadline = Clock::now() + kDrain;
  while (tally.distinct() < sent && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

struct RunResult {
  std::uint64_t sent = 0;
  std::uint64_t received = 0;  // distinct sequence numbers echoed back
  std::uint64_t duplicated = 0;
  std::uint64_t reordered = 0;
  std::uint64_t malformed = 0;
  double send_s = 0;  // from the first send to the last
  std::vector<double> rtt_us;
  double cpu_s = 0;
  std::uint64_t migrations = 0;
  std::uint64_t unrequested_migrations = 0;  // failovers (or other moves) nobody asked for
  // One QUIC or udpflow path moved to a new local address (not a change of the active path, so
  // not in `migrations`): the calls accepted.
  std::uint64_t local_address_moves = 0;
  // The longest a planned move waited for the one before it to finish (refused meanwhile with
  // operation_in_progress), in ms.
  double move_wait_ms_max = 0;
  std::uint64_t admin_errors = 0;
  std::string error;

  std::uint64_t lost() const { return sent - std::min(sent, received); }
  double achieved_pps() const { return send_s > 0 ? double(sent) / send_s : 0; }
  void take(const Tally& tally) {
    received = tally.distinct();
    duplicated = tally.duplicated();
    reordered = tally.reordered();
    malformed = tally.malformed();
    rtt_us = tally.rtt_us();
  }
};

// ---- raw UDP baseline

int udp_socket(std::string& error) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) {
    error = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  const timeval poll{0, int(std::chrono::microseconds(kUdpPoll).count())};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &poll, sizeof poll);
  // As large as the system allows (net.core.*mem_max), so a burst is not lost in the kernel.
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kUdpBufferBytes, sizeof kUdpBufferBytes);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kUdpBufferBytes, sizeof kUdpBufferBytes);
  sockaddr_in any{};
  any.sin_family = AF_INET;
  any.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&any), sizeof any) != 0) {
    error = std::string("bind: ") + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

sockaddr_in local_address(int fd) {
  sockaddr_in address{};
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  return address;
}

RunResult run_udp_baseline(const PacketConfig& config) {
  RunResult result;
  const int server = udp_socket(result.error);
  const int client = server < 0 ? -1 : udp_socket(result.error);
  if (client < 0) {
    if (server >= 0) ::close(server);
    return result;
  }
  const sockaddr_in server_address = local_address(server);
  ::connect(client, reinterpret_cast<const sockaddr*>(&server_address), sizeof server_address);

  const double cpu_start = process_cpu_seconds();
  std::atomic<bool> stop{false};
  std::thread echo([&] {
    std::vector<std::byte> buffer(65536);
    while (!stop.load(std::memory_order_relaxed)) {
      sockaddr_in from{};
      socklen_t length = sizeof from;
      const ssize_t n = ::recvfrom(server, buffer.data(), buffer.size(), 0,
                                   reinterpret_cast<sockaddr*>(&from), &length);
      if (n < 0) continue;  // the poll timeout (or EINTR): look at `stop`
      ::sendto(server, buffer.data(), std::size_t(n), 0, reinterpret_cast<sockaddr*>(&from),
               length);
    }
  });
  Tally tally(config.total());
  std::thread receiver([&] {
    std::vector<std::byte> buffer(65536);
    while (!stop.load(std::memory_order_relaxed)) {
      const ssize_t n = ::recv(client, buffer.data(), buffer.size(), 0);
      if (n >= 0) tally.on_message(buffer.data(), std::size_t(n));
    }
  });
  const Clock::time_point start = Clock::now();
  result.sent = paced_send(config, [&](const std::vector<std::byte>& m) {
    // A full socket buffer (ENOBUFS) loses the datagram, as UDP does: it counts as lost.
    while (::send(client, m.data(), m.size(), 0) < 0 && errno == EINTR) {
    }
    return true;
  });
  result.send_s = std::chrono::duration<double>(Clock::now() - start).count();
  drain(tally, result.sent);
  stop = true;
  receiver.join();
  echo.join();
  result.cpu_s = process_cpu_seconds() - cpu_start;
  ::close(client);
  ::close(server);
  result.take(tally);
  return result;
}

// ---- rendr

// The planned migrations' times from the start: --migrations K evenly (at i/(K+1) of the run),
// or every --migrate-every-ms.
std::vector<Clock::duration> migration_times(const PacketConfig& config) {
  std::vector<Clock::duration> times;
  const auto run =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(config.duration_s));
  if (config.migrations > 0) {
    for (std::uint64_t i = 1; i <= config.migrations; ++i)
      times.push_back(run * std::int64_t(i) / std::int64_t(config.migrations + 1));
  } else if (config.migrate_every.count() > 0) {
    for (Clock::duration t = config.migrate_every; t < run; t += config.migrate_every)
      times.push_back(t);
  }
  return times;
}

// Whether one path migrates by moving its local address (a new UDP socket): QUIC connection
// migration, or a udpflow client path's move the server validates.
bool moves_local_address(BenchTransport transport) {
  return transport == BenchTransport::quic || transport == BenchTransport::udpflow;
}

// One planned migration: to the next up path (round robin), or with one QUIC or udpflow path a
// move of its local address.
std::error_code migrate_once(rendr::PacketConn& conn, const PacketConfig& config) {
  const rendr::ConnStats stats = conn.stats();
  if (config.paths == 1 && moves_local_address(config.transport))
    return conn.migrate_local_address(stats.active_path, "127.0.0.1:0");
  const std::vector<rendr::PathId> ids = up_paths(stats);
  const auto after = std::upper_bound(ids.begin(), ids.end(), stats.active_path);
  const rendr::PathId next = after != ids.end() ? *after : (ids.empty() ? rendr::kNoPath : ids[0]);
  if (next == rendr::kNoPath || next == stats.active_path)
    return make_error_code(rendr::errc::no_such_path);
  return conn.migrate(next);
}

RunResult run_rendr(const PacketConfig& config,
                    const std::optional<testing::TestCertificate>& cert) {
  RunResult result;
  std::error_code ec;
  auto flow = LocalFlow::open(
      {.paths = config.paths,
       .transport = std::string(to_string(config.transport)),
       .quic_server = cert ? rendr::TlsServerConfig{cert->cert_file(), cert->key_file()}
                           : rendr::TlsServerConfig{},
       .quic_client = cert ? rendr::TlsClientConfig{cert->cert_file(), "localhost", true}
                           : rendr::TlsClientConfig{},
       .mode = config.mode,
       .engine_per_end = true,
       .packet = rendr::PacketOptions{.reliable = config.reliable, .ordered = config.ordered}},
      ec);
  if (!flow) {
    result.error = "cannot open a rendr packet flow with " + std::to_string(config.paths) +
                   " path(s), mode " + std::string(rendr::to_string(config.mode)) + ": " +
                   ec.message();
    return result;
  }
  rendr::PacketConn& client = flow->packet_client;
  // The listener's echo (`rendr listen --packet --echo` semantics) on a thread of its own with
  // blocking calls, as the baseline's UDP echo: --async-echo serves it as `rendr listen` does.
  std::thread echo;
  if (config.async_echo) {
    serve_packets_async(flow->packet_server, FlowService::echo, "", nullptr);
  } else {
    echo = std::thread([server = flow->packet_server]() mutable {
      std::vector<std::byte> buffer(rendr::kMaxMessageSize);
      for (;;) {
        std::error_code echo_ec;
        const std::size_t n = server.receive(asio::buffer(buffer), echo_ec);
        if (!echo_ec) server.send(asio::buffer(buffer.data(), n), echo_ec);
        if (echo_ec) break;
      }
      server.close();
    });
  }
  auto unrequested = std::make_shared<std::atomic<std::uint64_t>>(0);
  client.on_migrate([unrequested](rendr::PathId from, rendr::PathId to, rendr::MigrateCause cause) {
    if (cause == rendr::MigrateCause::explicit_request) return;
    ++*unrequested;
    log_line("[bench packet] client: active path " + std::to_string(from) + " -> " +
             std::to_string(to) + " (" + std::string(rendr::to_string(cause)) + ")");
  });

  const double cpu_start = process_cpu_seconds();
  Tally tally(config.total());
  std::atomic<bool> receiving{true};
  std::string receive_error;
  std::thread receiver([&] {
    std::vector<std::byte> buffer(rendr::kMaxMessageSize);
    for (;;) {
      std::error_code receive_ec;
      const std::size_t n = client.receive(asio::buffer(buffer), receive_ec);
      if (receive_ec) {
        if (receive_ec != asio::error::eof) receive_error = "receive: " + receive_ec.message();
        break;
      }
      tally.on_message(buffer.data(), n);
    }
    receiving = false;
  });
  std::string send_error;
  std::atomic<bool> sending{true};
  Clock::time_point start;
  std::thread sender([&] {
    start = Clock::now();
    result.sent = paced_send(config, [&](const std::vector<std::byte>& m) {
      std::error_code send_ec;
      client.send(asio::buffer(m), send_ec);
      if (send_ec) send_error = "send: " + send_ec.message();
      return !send_ec;
    });
    result.send_s = std::chrono::duration<double>(Clock::now() - start).count();
    sending = false;
  });
  const Clock::time_point migrate_start = Clock::now();
  for (const Clock::duration at : migration_times(config)) {
    std::this_thread::sleep_until(migrate_start + at);
    if (!sending) break;
    // A move still validating refuses the next one: the next waits for it (bounded, reported).
    const Clock::time_point asked = Clock::now();
    std::error_code migrate_ec = migrate_once(client, config);
    while (migrate_ec == std::errc::operation_in_progress && sending &&
           Clock::now() - asked < kMoveWait) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      migrate_ec = migrate_once(client, config);
    }
    result.move_wait_ms_max =
        std::max(result.move_wait_ms_max,
                 std::chrono::duration<double, std::milli>(Clock::now() - asked).count());
    if (migrate_ec) {
      ++result.admin_errors;
      log_line("[bench packet] migrate failed: " + migrate_ec.message());
    } else if (config.paths == 1) {
      ++result.local_address_moves;
    }
  }
  sender.join();
  drain(tally, result.sent);
  // The echo server closes its side on our close: the receiver then sees EOF.
  client.close();
  const Clock::time_point deadline = Clock::now() + kDrain;
  while (receiving && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  if (receiving) client.abort();  // unblocks the receiver
  receiver.join();
  if (echo.joinable()) {
    flow->packet_server.abort();  // if it is still blocked (it has nothing left to echo)
    echo.join();
  }
  result.cpu_s = process_cpu_seconds() - cpu_start;
  result.migrations = client.migration_count();
  result.unrequested_migrations = *unrequested;
  result.error = !send_error.empty() ? send_error : receive_error;
  result.take(tally);
  return result;
}

void log_run(const char* what, const RunResult& r) {
  char line[320];
  std::snprintf(line, sizeof line,
                "[bench packet] %-8s sent %llu at %.0f/s, received %llu, lost %llu, dup %llu, "
                "reordered %llu, rtt p50 %.1f us p95 %.1f us, cpu %.2f s, %llu migrations%s%s",
                what, static_cast<unsigned long long>(r.sent), r.achieved_pps(),
                static_cast<unsigned long long>(r.received),
                static_cast<unsigned long long>(r.lost()),
                static_cast<unsigned long long>(r.duplicated),
                static_cast<unsigned long long>(r.reordered), percentile(r.rtt_us, 50),
                percentile(r.rtt_us, 95), r.cpu_s, static_cast<unsigned long long>(r.migrations),
                r.error.empty() ? "" : ", error: ", r.error.c_str());
  log_line(line);
}

int run(const Args& args) {
  PacketConfig config;
  config.pps = args.number("pps", 10000);
  config.size = args.size("size", 200);
  config.duration_s = args.number("duration", 10);
  config.mode = args.mode();
  config.transport = args.has("transport") ? parse_transport(args) : BenchTransport::udpflow;
  config.migrations = args.count("migrations", 0);
  config.migrate_every = args.millis("migrate-every-ms", std::chrono::milliseconds(0));
  config.reliable = !args.has("unreliable");
  config.ordered = !args.has("unordered");
  config.async_echo = args.has("async-echo");
  if (config.pps <= 0) throw UsageError("--pps must be > 0");
  if (config.duration_s <= 0) throw UsageError("--duration must be > 0");
  if (config.size < kHeader || config.size > rendr::kMaxMessageSize)
    throw UsageError("--size must be from " + std::to_string(kHeader) + " to " +
                     std::to_string(rendr::kMaxMessageSize) + " bytes");
  if (config.total() > 100'000'000) throw UsageError("--pps x --duration is over 100 million");
  if (args.has("migrations") && args.has("migrate-every-ms"))
    throw UsageError("choose one of --migrations and --migrate-every-ms");
  if (config.transport == BenchTransport::mixed)
    throw UsageError("--transport must be udpflow, tcp or quic for bench packet");
  const bool migrating = config.migrations > 0 || config.migrate_every.count() > 0;
  // Migrating needs a second path, except over QUIC, which moves its one path's local address
  // (udpflow can too with --paths 1; it defaults to two paths, as it always did).
  const std::size_t default_paths = migrating && config.transport != BenchTransport::quic ? 2 : 1;
  config.paths = args.count("paths", default_paths);
  if (config.paths == 0) throw UsageError("--paths must be >= 1");
  if (config.paths == 1 && migrating && !moves_local_address(config.transport))
    throw UsageError("migrating over " + std::string(to_string(config.transport)) +
                     " needs --paths 2 or more (quic and udpflow move one path's local address)");

  log_line("[bench packet] raw udp: " + short_number(config.pps) + " messages/s of " +
           std::to_string(config.size) + " bytes for " + short_number(config.duration_s) + " s");
  const RunResult baseline = run_udp_baseline(config);
  log_run("raw udp", baseline);
  if (!baseline.error.empty()) return report_setup_failure(args, "packet", baseline.error);

  std::optional<testing::TestCertificate> cert;
  if (config.transport == BenchTransport::quic) cert.emplace();
  log_line("[bench packet] rendr over " + std::to_string(config.paths) + " " +
           std::string(to_string(config.transport)) + " path(s), mode " +
           std::string(rendr::to_string(config.mode)) + ", " +
           (config.reliable ? "reliable" : "unreliable") + ", " +
           (config.ordered ? "ordered" : "unordered"));
  const RunResult r = run_rendr(config, cert);
  if (r.sent == 0 && !r.error.empty()) return report_setup_failure(args, "packet", r.error);
  log_run("rendr", r);

  const double baseline_p95 = percentile(baseline.rtt_us, 95);
  const double rendr_p95 = percentile(r.rtt_us, 95);
  const std::uint64_t errors = (r.error.empty() ? 0 : 1) + r.malformed;
  JsonObject result;
  result.add("bench", "packet")
      .add("transport", to_string(config.transport))
      .add("mode", rendr::to_string(config.mode))
      .add("paths", std::uint64_t{config.paths})
      .add("pps", config.pps)
      .add("size", std::uint64_t{config.size})
      .add("duration_s", config.duration_s)
      .add("sent", r.sent)
      .add("received", r.received)
      .add("lost", r.lost())
      .add("duplicated", r.duplicated)
      .add("reordered", r.reordered)
      .add("achieved_pps", r.achieved_pps())
      .add("baseline_pps", baseline.achieved_pps())
      .add("rendr_p50_rtt_us", percentile(r.rtt_us, 50))
      .add("rendr_p95_rtt_us", rendr_p95)
      .add("baseline_p50_rtt_us", percentile(baseline.rtt_us, 50))
      .add("baseline_p95_rtt_us", baseline_p95)
      .add("p95_ratio", baseline_p95 > 0 ? rendr_p95 / baseline_p95 : 0.0)
      .add("migrations", r.migrations)
      .add("reliable", config.reliable)
      .add("ordered", config.ordered)
      .add("rendr_p99_rtt_us", percentile(r.rtt_us, 99))
      .add("rendr_max_rtt_us", max_of(r.rtt_us))
      .add("baseline_p99_rtt_us", percentile(baseline.rtt_us, 99))
      .add("baseline_sent", baseline.sent)
      .add("baseline_lost", baseline.lost())
      .add("rendr_cpu_s", r.cpu_s)
      .add("baseline_cpu_s", baseline.cpu_s)
      .add("unrequested_migrations", r.unrequested_migrations)
      .add("async_echo", config.async_echo)
      .add("local_address_moves", r.local_address_moves)
      .add("move_wait_ms_max", r.move_wait_ms_max)
      .add("admin_errors", r.admin_errors)
      .add("errors", errors);
  print_result(args, "rendr bench packet", result);
  // Unreliable flows may lose what the network lost; reliable ones must lose nothing.
  const bool clean = errors == 0 && r.admin_errors == 0 && r.duplicated == 0 &&
                     (!config.reliable || r.lost() == 0);
  return clean ? 0 : 1;
}

}  // namespace

Command bench_packet_command() {
  return {
      {"bench packet",
       "messages/s with migrations vs raw UDP: loss, duplicates, RTT",
       "--pps N --size BYTES --duration S [--transport udpflow|tcp|quic] [--paths N]\n"
       "    [--mode prime|race|bond] [--migrate-every-ms M | --migrations K] [--unreliable]\n"
       "    [--unordered] [--async-echo] [--json]",
       "Sends --pps messages per second of --size bytes for --duration seconds, each carrying\n"
       "its sequence number and send time, and measures each echo's round trip: first over raw\n"
       "UDP on loopback (an echo thread), then over a rendr packet flow to an in-process\n"
       "listener echoing each message (a thread with blocking calls, or with --async-echo as\n"
       "`rendr listen --packet --echo` does). One sender thread paced by the clock (every\n"
       "message due, then a sleep of at least 100 us), one receiver thread. lost: sent minus\n"
       "distinct echoes after a drain of up to 3 s; duplicated: extra copies; reordered:\n"
       "echoes below the highest sequence seen. Migrations are planned and round robin over\n"
       "the paths; migrating over udpflow or tcp defaults to --paths 2 (1 otherwise); over\n"
       "quic, or udpflow with --paths 1, one path moves its local address instead (a new UDP\n"
       "socket; counted in local_address_moves, not migrations); a move refused because the one\n"
       "before is still validating is tried again for up to 1 s (the longest wait:\n"
       "move_wait_ms_max). CPU figures are the whole process\n"
       "(both ends of each run).",
       {{"pps", OptionSpec::Kind::value, "N", "messages per second (default 10000)"},
        {"size", OptionSpec::Kind::value, "BYTES", "message size, 16 to 1153 (default 200)"},
        {"duration", OptionSpec::Kind::value, "S", "seconds of sending per run (default 10)"},
        {"transport", OptionSpec::Kind::value, "udpflow|tcp|quic",
         "carrier of the rendr paths (default udpflow); the baseline is always raw UDP"},
        {"paths", OptionSpec::Kind::value, "N",
         "rendr paths (default 1; 2 when migrating over udpflow or tcp)"},
        {"migrations", OptionSpec::Kind::value, "K", "K planned migrations spread evenly"},
        {"migrate-every-ms", OptionSpec::Kind::value, "M", "a planned migration every M ms"},
        {"unreliable", OptionSpec::Kind::flag, "", "lost messages are not sent again"},
        {"unordered", OptionSpec::Kind::flag, "", "deliver on arrival (default: in order)"},
        {"async-echo", OptionSpec::Kind::flag, "",
         "echo with async_receive/async_send on the engine, as `rendr listen --packet --echo` "
         "(default: a thread with blocking calls, as the UDP baseline's echo)"},
        mode_option(),
        json_option()}},
      run};
}

}  // namespace rendr::cli
