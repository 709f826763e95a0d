// Bulk transfers across planned migrations, path death (blackhole, reset), a total outage
// shorter than the migration budget, and path removal: never an error, a lost, duplicated or
// reordered byte, or an early EOF.
#include <optional>
#include <ostream>
#include <string>
#include <system_error>
#include <vector>

#include "harness.hpp"
#include "support/fault_proxy.hpp"

namespace rendr::itest {
namespace {

using testing::FaultMode;
using testing::FaultProxy;

// An up path of `conn` other than `path`, or kNoPath.
PathId other_up_path(const Conn& conn, PathId path) {
  for (const auto& p : conn.stats().paths) {
    if (p.id != path && p.state == "up") return p.id;
  }
  return kNoPath;
}

TEST_F(IntegrationTest, SixtyFourMiBAcrossPlannedMigrationsArrivesIntact) {
  Conn client;
  Conn server;
  ASSERT_TRUE(listen_and_connect(2, client, server));
  MigrationLog client_log;
  client_log.attach(client);

  constexpr std::uint64_t kMigrateEvery = 4 * MiB;  // 15 migrations over 64 MiB
  std::uint64_t next_migration = kMigrateEvery;
  std::vector<std::string> migrate_errors;
  std::size_t migrations_requested = 0;
  StreamWriter upload(
      client, {.seed = 1, .bytes = 64 * MiB, .after_write = [&](std::uint64_t written) {
                 if (written < next_migration) return;
                 // A standby path may be re-dialing after a spurious death (see
                 // PlannedMigrationsUnderLoadKeepEveryPathUp): then the
                 // migration waits for the next write.
                 const PathId target = other_up_path(client, client.active_path());
                 if (target == kNoPath) return;
                 next_migration += kMigrateEvery;
                 if (const error_code ec = client.migrate(target)) {
                   migrate_errors.push_back(ec.message() + " at " + std::to_string(written) +
                                            ":\n" + describe(client.stats()));
                 } else {
                   ++migrations_requested;
                 }
               }});
  StreamReader upload_reader(server, {.seed = 1});
  // The other direction runs at the same time, so replay is exercised both ways.
  StreamWriter download(server, {.seed = 2, .bytes = 16 * MiB});
  StreamReader download_reader(client, {.seed = 2});

  finish_transfer(upload, upload_reader, scaled(40s));
  finish_transfer(download, download_reader, scaled(10s));
  EXPECT_EQ(upload_reader.outcome().bytes, 64 * MiB);
  EXPECT_EQ(download_reader.outcome().bytes, 16 * MiB);
  for (const auto& error : migrate_errors)
    ADD_FAILURE() << "migrate failed: " << error;
  EXPECT_GE(migrations_requested, 10u);
  EXPECT_GE(client.migration_count(), 10u);
  EXPECT_GE(client_log.count(MigrateCause::explicit_request), 10u);
  for (const auto& path : client.stats().paths) {
    EXPECT_GT(path.bytes_sent, 0u) << "path " << path.id << " never carried data";
  }
}

// Planned migrations leave every path up: acknowledgements for what the old path carried may
// come back on the new one, which must not count as the old path going silent.
void expect_migrations_keep_every_path_up(Conn client, Conn server, bool both_ways) {
  StreamWriter upload(client, {.seed = 1});
  StreamReader upload_reader(server, {.seed = 1});
  std::unique_ptr<StreamWriter> download;
  std::unique_ptr<StreamReader> download_reader;
  if (both_ways) {
    download = std::make_unique<StreamWriter>(server, WriteSpec{.seed = 2});
    download_reader = std::make_unique<StreamReader>(client, ReadSpec{.seed = 2});
  }
  for (int i = 1; i <= 8; ++i) {
    ASSERT_TRUE(wait_until([&] { return upload_reader.progress() >= i * 2 * MiB; }, scaled(10s)));
    const PathId new_path = other_up_path(client, client.active_path());
    ASSERT_EQ(client.migrate(new_path), error_code{})
        << "migration " << i << ", no other path up:\n"
        << describe(client.stats()) << "server:\n"
        << describe(server.stats());
  }
  // Well past the 40 ms dead-path floor, with bulk data flowing on the last path.
  const bool a_path_died = wait_until(
      [&] {
        for (const auto& p : client.stats().paths) {
          if (p.down_count > 0) return true;
        }
        return false;
      },
      300ms);
  EXPECT_FALSE(a_path_died) << describe(client.stats()) << "server:\n" << describe(server.stats());
  upload.stop();
  finish_transfer(upload, upload_reader, scaled(20s));
  if (both_ways) {
    download->stop();
    finish_transfer(*download, *download_reader, scaled(20s));
  }
}

// DISABLED until the runtime copes with a contended CPU: with two busy processes on the two
// cores, healthy loopback paths are declared dead (40 ms floor), sometimes all at once. See
// tests/integration/README.md.
TEST_F(IntegrationTest, PlannedMigrationsUnderLoadKeepEveryPathUp) {
  Conn client;
  Conn server;
  ASSERT_TRUE(listen_and_connect(2, client, server));
  expect_migrations_keep_every_path_up(client, server, false);
}

// DISABLED: as above, and more often with traffic both ways.
TEST_F(IntegrationTest, PlannedMigrationsWithTrafficBothWaysKeepEveryPathUp) {
  Conn client;
  Conn server;
  ASSERT_TRUE(listen_and_connect(2, client, server));
  expect_migrations_keep_every_path_up(client, server, true);
}

struct BrokenPath {
  PathId path;
  Clock::time_point at;
};

// Blackholes (or resets) the active path once `reader` has `after` bytes.
BrokenPath break_active_path(const Conn& client, FaultProxy& a, FaultProxy& b,
                             const StreamReader& reader, std::uint64_t after, FaultMode how) {
  // Also waits out a moment with no active path (a spurious death on a loaded host).
  EXPECT_TRUE(wait_until(
      [&] { return reader.progress() >= after && client.active_path() != kNoPath; }, scaled(10s)));
  const PathId active = client.active_path();
  FaultProxy& proxy = active == path_via_port(client, a.port()) ? a : b;
  EXPECT_EQ(active, path_via_port(client, proxy.port()));
  const auto at = Clock::now();
  proxy.set_mode(how);
  return {active, at};
}

struct Kill {
  FaultMode how;
  const char* name;
  const char* seen;  // ConnStats::last_down_cause of the broken path
};
// Names the ctest entries (gtest would print the enum as raw bytes).
void PrintTo(const Kill& kill, std::ostream* out) {
  *out << kill.name;
}

class PathDeathTest : public IntegrationTest, public ::testing::WithParamInterface<Kill> {};

TEST_P(PathDeathTest, ActivePathDeathFailsOverWithoutErrorOrLoss) {
  listen();
  FaultProxy proxy_a("127.0.0.1", "127.0.0.1", listener_.port());
  FaultProxy proxy_b("127.0.0.1", "127.0.0.1", listener_.port());
  Conn client;
  Conn server;
  ASSERT_TRUE(
      connect_all_paths(dialer(loopback_paths({proxy_a.port(), proxy_b.port()})), client, server));
  MigrationLog client_log;
  client_log.attach(client);

  StreamWriter upload(client, {.seed = 1, .bytes = 32 * MiB});
  StreamReader upload_reader(server, {.seed = 1});
  StreamWriter download(server, {.seed = 2, .bytes = 8 * MiB});
  StreamReader download_reader(client, {.seed = 2});

  const BrokenPath broken =
      break_active_path(client, proxy_a, proxy_b, upload_reader, 4 * MiB, GetParam().how);
  // The failover away from the broken path (a loaded host may add earlier, spurious ones).
  const auto failover_entry = [&]() -> std::optional<MigrationLog::Entry> {
    for (const auto& e : client_log.entries()) {
      if (e.from == broken.path && e.cause == MigrateCause::death && e.at >= broken.at) return e;
    }
    return std::nullopt;
  };
  ASSERT_TRUE(wait_until([&] { return failover_entry().has_value(); }, scaled(5s)))
      << "no failover after the active path died:\n"
      << describe(client.stats()) << describe(client_log);
  const ConnStats after_failover = client.stats();
  EXPECT_EQ(after_failover.last_down_path, broken.path);
  EXPECT_EQ(after_failover.last_down_cause, GetParam().seen);
  const auto failover =
      std::chrono::duration_cast<std::chrono::milliseconds>(failover_entry()->at - broken.at);
  RecordProperty("failover_ms", static_cast<int>(failover.count()));
  EXPECT_LT(failover, scaled(2s)) << "failover took " << failover.count() << " ms";
  EXPECT_NE(client.active_path(), broken.path);

  finish_transfer(upload, upload_reader, scaled(30s));
  finish_transfer(download, download_reader, scaled(10s));
  EXPECT_EQ(upload_reader.outcome().bytes, 32 * MiB);
  EXPECT_GE(client.migration_count(), 1u);
  EXPECT_GE(path_info(client, broken.path)->down_count, 1u);
}

INSTANTIATE_TEST_SUITE_P(Kill, PathDeathTest,
                         ::testing::Values(Kill{FaultMode::blackhole, "Blackhole", "silent"},
                                           Kill{FaultMode::reset, "Reset", "reset"}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST_F(IntegrationTest, ResetPathIsRedialedOnceItPassesAgain) {
  listen();
  FaultProxy proxy_a("127.0.0.1", "127.0.0.1", listener_.port());
  FaultProxy proxy_b("127.0.0.1", "127.0.0.1", listener_.port());
  const auto conns = connect_all_up(dialer(loopback_paths({proxy_a.port(), proxy_b.port()})), 2);
  Conn client = conns.first;
  ASSERT_TRUE(client.is_open());
  const PathId path_b = path_via_port(client, proxy_b.port());

  proxy_b.set_mode(FaultMode::reset);
  ASSERT_TRUE(wait_until([&] { return path_info(client, path_b)->down_count >= 1; }, scaled(5s)));
  proxy_b.set_mode(FaultMode::pass);
  // Re-dial backoff is capped at about 2 s.
  EXPECT_TRUE(wait_until([&] { return paths_up(client) == 2; }, scaled(8s)))
      << "path " << path_b << " is " << path_info(client, path_b)->state;
}

// Every path goes dark for less than the migration budget, then one comes back.
class OutageTest : public IntegrationTest {
 protected:
  static constexpr auto kBudget = 20s;

  void SetUp() override {
    ListenOptions options;
    options.migration_budget = kBudget;
    listen(options);
    proxy_a_ = std::make_unique<FaultProxy>("127.0.0.1", "127.0.0.1", listener_.port());
    proxy_b_ = std::make_unique<FaultProxy>("127.0.0.1", "127.0.0.1", listener_.port());
    Dialer d = dialer(loopback_paths({proxy_a_->port(), proxy_b_->port()}));
    d.migration_budget = kBudget;
    ASSERT_TRUE(connect_all_paths(d, client_, server_));
  }

  // Starts the transfer and blacks out every path once it is under way.
  void start_and_black_out() {
    upload_ = std::make_unique<StreamWriter>(client_, WriteSpec{.seed = 1, .bytes = 24 * MiB});
    upload_reader_ = std::make_unique<StreamReader>(server_, ReadSpec{.seed = 1});
    ASSERT_TRUE(wait_until([&] { return upload_reader_->progress() >= 4 * MiB; }, scaled(10s)));
    proxy_a_->set_mode(FaultMode::blackhole);
    proxy_b_->set_mode(FaultMode::blackhole);
    ASSERT_TRUE(wait_until([&] { return paths_up(client_) == 0; }, scaled(5s)))
        << "the client never noticed the outage";
    // Reads and writes wait through the outage: for half a second neither end ends.
    EXPECT_FALSE(
        wait_until([&] { return upload_->wait(0ms) || upload_reader_->wait(0ms); }, 500ms));
  }

  void expect_recovered() {
    finish_transfer(*upload_, *upload_reader_, scaled(20s));
    EXPECT_EQ(upload_reader_->outcome().bytes, 24 * MiB);
  }

  std::unique_ptr<FaultProxy> proxy_a_;
  std::unique_ptr<FaultProxy> proxy_b_;
  Conn client_;
  Conn server_;
  std::unique_ptr<StreamWriter> upload_;
  std::unique_ptr<StreamReader> upload_reader_;
};

TEST_F(OutageTest, ShortOutageEndsWhenAProxyPassesAgain) {
  const PathId via_a = path_via_port(client_, proxy_a_->port());
  start_and_black_out();
  if (HasFatalFailure()) return;
  const auto ups_in_outage = path_info(client_, via_a)->up_count;
  // Blackholed connections stay dead; the client's background re-dial makes a new one.
  proxy_a_->set_mode(FaultMode::pass);
  expect_recovered();
  // Counted, not read from the path's state at the end: a loaded host may have declared the
  // path dead again since (it is then re-dialing; seen once with two test runs in parallel).
  EXPECT_GT(path_info(client_, via_a)->up_count, ups_in_outage)
      << "the path through the passing proxy never came back:\n"
      << describe(client_.stats());
}

TEST_F(OutageTest, ShortOutageEndsWhenANewPathIsAdded) {
  start_and_black_out();
  if (HasFatalFailure()) return;
  FaultProxy fresh("127.0.0.1", "127.0.0.1", listener_.port());
  error_code ec;
  const PathId added = client_.add_path(PathSpec::parse("tcp://" + loopback(fresh.port())), ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_NE(added, kNoPath);
  expect_recovered();
  const auto info = path_info(client_, added);
  ASSERT_TRUE(info.has_value());
  EXPECT_GT(info->bytes_sent, 0u) << "the added path carried nothing";
}

TEST_F(IntegrationTest, RemovingTheActivePathMigratesWithoutLoss) {
  Conn client;
  Conn server;
  ASSERT_TRUE(listen_and_connect(2, client, server));

  StreamWriter upload(client, {.seed = 1, .bytes = 24 * MiB});
  StreamReader upload_reader(server, {.seed = 1});
  ASSERT_TRUE(wait_until([&] { return upload_reader.progress() >= 4 * MiB; }, scaled(10s)));
  const PathId removed = client.active_path();
  EXPECT_EQ(client.remove_path(removed), error_code{});
  EXPECT_TRUE(wait_until(
      [&] {
        const PathId now = client.active_path();
        return now != removed && now != kNoPath;
      },
      scaled(2s)));

  finish_transfer(upload, upload_reader, scaled(20s));
  EXPECT_EQ(upload_reader.outcome().bytes, 24 * MiB);
  const auto gone = path_info(client, removed);
  EXPECT_TRUE(!gone.has_value() || gone->state == "removed");
  EXPECT_EQ(client.migrate(removed), make_error_code(errc::no_such_path));
  EXPECT_EQ(client.remove_path(client.active_path()), make_error_code(errc::last_path));
  EXPECT_EQ(paths_up(client), 1u);
}

}  // namespace
}  // namespace rendr::itest
