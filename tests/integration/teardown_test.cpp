// A process that exits right after its flow ended must not take the flow's last frames with it
// (issue 7, defect 7): `rendr listen --stdio` read every byte and exited, and the dialer, whose
// last bytes were never acknowledged, waited out its whole migration budget. Here the
// listener's engine (what a process exit destroys) is torn down the moment the listener has
// read EOF, and the dialer's close must still complete at once.
#include <memory>

#include <asio/use_future.hpp>

#include "harness.hpp"
#include "support/fault_proxy.hpp"

namespace rendr::itest {
namespace {

// Rounds: the loss was a race (5 of 12 runs over shaped links); each round takes well under a
// second when the close completes.
constexpr int kRounds = 8;
// Far below the budget: only a completed close handshake ends the client's flow this soon.
constexpr auto kCloseBound = 3s;
constexpr auto kBudget = 30s;

TEST(TeardownTest, EngineTornDownRightAfterEofStillCompletesThePeersClose) {
  Engine client_engine(1);
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    auto server_engine = std::make_unique<Engine>(1);
    ListenOptions listen_options;
    listen_options.engine = server_engine.get();
    listen_options.migration_budget = kBudget;
    std::error_code ec;
    Listener listener = listen_tcp("127.0.0.1:0", listen_options, ec);
    ASSERT_FALSE(ec) << ec.message();

    // Bond over a fast and a slow path (as 300 + 100 Mbit/s links were): the FIN may arrive on
    // the fast path before the last bytes of the slow one.
    testing::FaultProxy slow_path("127.0.0.1", "127.0.0.1", listener.port());
    slow_path.set_shaping({.delay = 5ms, .rate_bps = 100'000'000}, {.delay = 5ms});
    Dialer dialer;
    dialer.mode = Mode::bond;
    dialer.paths = loopback_paths({listener.port(), slow_path.port()});
    dialer.migration_budget = kBudget;
    dialer.dial_timeout = scaled(5s);
    dialer.engine = &client_engine;
    auto accepted = listener.async_accept(asio::use_future);
    Conn client = dialer.dial(ec);
    ASSERT_FALSE(ec) << ec.message();
    ASSERT_EQ(accepted.wait_for(scaled(5s)), std::future_status::ready);
    Conn server = accepted.get();

    const std::uint64_t size = 4 * MiB + std::uint64_t(round) * 4099;
    // Like `rendr listen --stdio < /dev/null`: the listener's own direction ends at once, it
    // reads until EOF, and its process exits right then.
    server.close();
    StreamWriter writer(client, {.seed = std::uint64_t(round), .bytes = size});
    std::vector<std::uint8_t> buffer(256 * KiB);
    std::uint64_t received = 0;
    for (;;) {
      const std::size_t n = server.read_some(asio::buffer(buffer), ec);
      received += n;
      if (ec) break;
    }
    server = Conn();
    listener.close();
    server_engine.reset();
    EXPECT_EQ(ec, asio::error::eof);
    EXPECT_EQ(received, size);
    ASSERT_TRUE(writer.wait(scaled(5s)));
    EXPECT_FALSE(writer.outcome().error) << writer.outcome().error.message();

    const auto torn_down = Clock::now();
    ConnStats stats;
    const bool closed = wait_until(
        [&] {
          stats = client.stats();
          return stats.state == "closed" || stats.state == "failed";
        },
        scaled(kCloseBound));
    EXPECT_TRUE(closed)
        << "the client's close still waits "
        << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - torn_down).count()
        << " ms after the listener went away: " << describe(stats);
    EXPECT_EQ(stats.state, "closed");
    EXPECT_EQ(stats.bytes_acked, stats.bytes_written) << describe(stats);
    client.abort();  // ends a flow left waiting, so the next round starts clean
  }
}

}  // namespace
}  // namespace rendr::itest
