// Engine::stats(): every flow of one engine, client and server, with totals that only grow.
#include <asio/read.hpp>
#include <asio/write.hpp>

#include "harness.hpp"

namespace rendr::itest {
namespace {

PathSpec tcp_to(std::uint16_t port) {
  return PathSpec::parse("tcp://" + loopback(port));
}

std::uint64_t migrations(const EngineStats& s) {
  return s.migrations_explicit + s.migrations_death + s.migrations_follow + s.migrations_quality;
}

TEST(EngineStatsTest, CountsEveryFlowOfTheEngineAndKeepsTheTotalsOfThoseThatEnded) {
  Engine engine(1);
  EXPECT_EQ(engine.stats().flows_started, 0u);
  EXPECT_TRUE(engine.stats().flows.empty());

  ListenOptions listen_options;
  listen_options.engine = &engine;
  Listener listener = listen_tcp("127.0.0.1:0", listen_options);
  Dialer dialer;
  dialer.engine = &engine;
  dialer.paths = {tcp_to(listener.port()), tcp_to(listener.port())};
  dialer.dial_timeout = scaled(5s);
  Conn client = dialer.dial();
  Conn server = listener.accept();

  const Bytes sent(1 * MiB, 7);
  asio::write(client, asio::buffer(sent));
  Bytes received(sent.size());
  asio::read(server, asio::buffer(received));
  ASSERT_EQ(received, sent);
  PathId other = kNoPath;
  ASSERT_TRUE(wait_until(
      [&] {
        for (const PathInfo& p : client.stats().paths)
          if (p.id != client.active_path() && p.state == "up") other = p.id;
        return other != kNoPath;
      },
      scaled(5s)));
  ASSERT_EQ(client.migrate(other), std::error_code{});

  const EngineStats live = engine.stats();
  EXPECT_EQ(live.flows_started, 2u);  // the client's end and the server's
  EXPECT_EQ(live.flows_closed + live.flows_failed, 0u);
  ASSERT_EQ(live.flows.size(), 2u);
  EXPECT_NE(live.flows[0].flow_id, FlowId{});
  EXPECT_EQ(live.flows[0].flow_id, live.flows[1].flow_id);  // both ends of one flow
  for (const ConnStats& flow : live.flows)
    EXPECT_EQ(flow.paths.size(), 2u);
  EXPECT_GE(live.bytes_written, sent.size());
  EXPECT_GE(live.bytes_delivered, sent.size());
  EXPECT_GE(live.migrations_explicit, 1u);

  // A clean close on both sides: the flows leave the list, their counters stay in the totals.
  client.close();
  Bytes rest(1);
  std::error_code ec;
  EXPECT_EQ(asio::read(server, asio::buffer(rest), ec), 0u);
  EXPECT_EQ(ec, std::error_code(asio::error::eof));
  server.close();
  ASSERT_TRUE(wait_until([&] { return engine.stats().flows_closed == 2; }, scaled(10s)))
      << engine.stats().flows_closed << " closed, " << engine.stats().flows_failed << " failed";
  const EngineStats ended = engine.stats();
  EXPECT_TRUE(ended.flows.empty());
  EXPECT_EQ(ended.flows_failed, 0u);
  EXPECT_GE(ended.bytes_written, live.bytes_written);
  EXPECT_GE(ended.bytes_delivered, live.bytes_delivered);
  EXPECT_GE(migrations(ended), migrations(live));

  // An abort ends a flow as failed, on both ends.
  Conn aborted = dialer.dial();
  Conn aborted_server = listener.accept();
  ASSERT_TRUE(wait_until([&] { return engine.stats().flows.size() == 2; }, scaled(5s)));
  EXPECT_EQ(engine.stats().flows_started, 4u);
  aborted.abort();
  ASSERT_TRUE(wait_until([&] { return engine.stats().flows_failed == 2; }, scaled(10s)))
      << engine.stats().flows_failed << " failed";
  EXPECT_EQ(engine.stats().flows_closed, 2u);
  listener.close();
}

// Each engine counts its own flows only.
TEST(EngineStatsTest, AnotherEngineSeesNoneOfThem) {
  Engine engine(1);
  Engine other(1);
  ListenOptions listen_options;
  listen_options.engine = &engine;
  Listener listener = listen_tcp("127.0.0.1:0", listen_options);
  Dialer dialer;
  dialer.engine = &engine;
  dialer.paths = {tcp_to(listener.port())};
  dialer.dial_timeout = scaled(5s);
  Conn client = dialer.dial();
  Conn server = listener.accept();
  ASSERT_TRUE(wait_until([&] { return engine.stats().flows.size() == 2; }, scaled(5s)));
  EXPECT_EQ(other.stats().flows_started, 0u);
  EXPECT_TRUE(other.stats().flows.empty());
  listener.close();
}

}  // namespace
}  // namespace rendr::itest
