// No usable path for longer than the migration budget: every pending and later call on both
// ends fails with errc::migration_budget_exceeded — not before the budget, and not much after.
#include <array>

#include <asio/use_future.hpp>

#include "harness.hpp"
#include "support/fault_proxy.hpp"

namespace rendr::itest {
namespace {

using testing::FaultMode;
using testing::FaultProxy;

constexpr auto kBudget = 2s;
// The budget runs from when the path is declared dead, which is after the blackhole; the
// runtime may start it from the last frame heard, a little before.
constexpr auto kEarliest = kBudget - 100ms;

const std::error_code kBudgetExceeded = make_error_code(errc::migration_budget_exceeded);

std::chrono::milliseconds since(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(to - from);
}

TEST_F(IntegrationTest, TotalBlackoutPastTheBudgetFailsBothEnds) {
  ListenOptions options;
  options.migration_budget = kBudget;
  listen(options);
  FaultProxy proxy_a("127.0.0.1", "127.0.0.1", listener_.port());
  FaultProxy proxy_b("127.0.0.1", "127.0.0.1", listener_.port());
  Dialer d = dialer(loopback_paths({proxy_a.port(), proxy_b.port()}));
  d.migration_budget = kBudget;
  Conn client;
  Conn server;
  ASSERT_TRUE(connect_all_paths(d, client, server));

  // The client writes without end (its write is pending once the send buffer fills); the
  // server has a read pending.
  StreamWriter upload(client, {.seed = 1});
  StreamReader upload_reader(server, {.seed = 1});
  ASSERT_TRUE(wait_until([&] { return upload_reader.progress() >= 1 * MiB; }, scaled(10s)));
  const auto blackout = Clock::now();
  proxy_a.set_mode(FaultMode::blackhole);
  proxy_b.set_mode(FaultMode::blackhole);

  const auto limit = kBudget + scaled(5s);
  ASSERT_TRUE(upload_reader.wait(limit)) << "the server's pending read never failed";
  ASSERT_TRUE(upload.wait(limit)) << "the client's pending write never failed";
  const auto& read = upload_reader.outcome();
  const auto& written = upload.outcome();
  EXPECT_EQ(read.error, kBudgetExceeded);
  EXPECT_FALSE(read.eof);
  EXPECT_FALSE(read.first_mismatch.has_value());
  EXPECT_EQ(written.error, kBudgetExceeded);
  EXPECT_GE(since(blackout, read.ended), kEarliest);
  EXPECT_LE(since(blackout, read.ended), limit);
  EXPECT_GE(since(blackout, written.ended), kEarliest);
  EXPECT_LE(since(blackout, written.ended), limit);

  // Later calls fail the same way, sync and async, in both directions.
  std::array<std::uint8_t, 16> buffer{};
  std::error_code ec;
  EXPECT_EQ(client.read_some(asio::buffer(buffer), ec), 0u);
  EXPECT_EQ(ec, kBudgetExceeded);
  EXPECT_EQ(client.write_some(asio::buffer(buffer), ec), 0u);
  EXPECT_EQ(ec, kBudgetExceeded);
  EXPECT_EQ(server.write_some(asio::buffer(buffer), ec), 0u);
  EXPECT_EQ(ec, kBudgetExceeded);
  auto async_read = client.async_read_some(asio::buffer(buffer), asio::use_future);
  ASSERT_EQ(async_read.wait_for(scaled(2s)), std::future_status::ready);
  try {
    async_read.get();
    ADD_FAILURE() << "async read after the budget succeeded";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), kBudgetExceeded);
  }
  EXPECT_EQ(client.stats().state, "failed");
  EXPECT_EQ(server.stats().state, "failed");
}

// Same for an idle client whose only pending call is a read.
TEST_F(IntegrationTest, BlackoutPastTheBudgetFailsAnIdleClientsPendingRead) {
  ListenOptions options;
  options.migration_budget = kBudget;
  listen(options);
  FaultProxy proxy("127.0.0.1", "127.0.0.1", listener_.port());
  Dialer d = dialer(loopback_paths({proxy.port()}));
  d.migration_budget = kBudget;
  Conn client;
  Conn server;
  ASSERT_TRUE(connect_all_paths(d, client, server));

  StreamReader client_reader(client, {.seed = 1});
  StreamReader server_reader(server, {.seed = 2});
  const auto blackout = Clock::now();
  proxy.set_mode(FaultMode::blackhole);

  const auto limit = kBudget + scaled(5s);
  ASSERT_TRUE(client_reader.wait(limit));
  ASSERT_TRUE(server_reader.wait(limit));
  EXPECT_EQ(client_reader.outcome().error, kBudgetExceeded);
  EXPECT_EQ(server_reader.outcome().error, kBudgetExceeded);
  EXPECT_GE(since(blackout, client_reader.outcome().ended), kEarliest);
  EXPECT_GE(since(blackout, server_reader.outcome().ended), kEarliest);
}

}  // namespace
}  // namespace rendr::itest
