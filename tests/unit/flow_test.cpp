// core::Flow over the in-memory harness (virtual time, no sockets): handshake, stream,
// migration, back-pressure, close and abort.
#include <gtest/gtest.h>

#include "flow_scenarios.hpp"

namespace rendr::test {
namespace {

TEST(Flow, HandshakeEstablishesBothPaths) {
  FlowPair net;
  ASSERT_TRUE(net.has_server());
  EXPECT_EQ(net.client().state(), core::FlowState::established);
  EXPECT_EQ(net.server().state(), core::FlowState::established);
  EXPECT_EQ(net.client().flow_id(), net.server().flow_id());
  EXPECT_EQ(net.client().path_state(1), core::PathState::up);
  EXPECT_EQ(net.client().path_state(2), core::PathState::up);
  EXPECT_EQ(net.server().path_state(2), core::PathState::up);
  EXPECT_EQ(net.client().active_path(), 1u);
}

TEST(Flow, StreamArrivesInOrderAndEofAfterLastByte) {
  FlowPair net;
  auto data = pattern(3 * 1024 * 1024 + 17);
  auto got = transfer(net, data);
  ASSERT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
  EXPECT_FALSE(net.server().eof());
  net.client().close(net.now());
  net.settle(10ms);
  EXPECT_TRUE(net.server().eof());
  net.server().close(net.now());
  net.settle(10ms);
  EXPECT_EQ(net.client().state(), core::FlowState::closed);
  EXPECT_EQ(net.server().state(), core::FlowState::closed);
  EXPECT_EQ(net.client().error(), core::FlowError::none);
}

TEST(Flow, ExplicitMigrationsLoseNothingAndServerFollows) {
  FlowPair net;
  auto data = pattern(4 * 1024 * 1024);
  std::size_t next_migration = 256 * 1024;
  int migrations = 0;
  auto got = transfer(net, data, [&](std::size_t off) {
    if (off >= next_migration) {
      next_migration += 256 * 1024;
      const core::PathId target = net.client().active_path() == 1 ? 2 : 1;
      ASSERT_TRUE(net.client().migrate(target, net.now()));
      ++migrations;
    }
  });
  ASSERT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
  EXPECT_GE(migrations, 10);
  EXPECT_EQ(net.client().migration_count(), static_cast<std::uint64_t>(migrations));
  EXPECT_EQ(net.server().active_path(), net.client().active_path());
}

// The client's ACK goes on its new active path and a copy on the path it just left (which
// still delivered the server's DATA). On a faster old path the copy arrives first; a server
// that followed it would flip back and forth. Each planned migration is followed exactly once.
TEST(Flow, ServerFollowsEachPlannedMigrationOnceNotAnAckCopy) {
  FlowPair net(core::FlowConfig{}, {{1ms, {}}, {4ms, {}}});
  auto data = pattern(64 * 1024);
  std::vector<wire::Byte> sink(1 << 20);
  int migrations = 0;
  for (int round = 0; round < 600 && migrations < 6; ++round) {
    net.client().write(data, net.now());
    net.server().write(data, net.now());
    net.settle(1ms);
    while (net.server().read(sink, net.now()) > 0) {
    }
    while (net.client().read(sink, net.now()) > 0) {
    }
    if (round % 50 == 49) {
      const core::PathId target = net.client().active_path() == 1 ? 2 : 1;
      ASSERT_TRUE(net.client().migrate(target, net.now()));
      ++migrations;
    }
  }
  for (int round = 0; round < 50; ++round) {  // traffic after the last migration
    net.client().write(data, net.now());
    net.server().write(data, net.now());
    net.settle(1ms);
    while (net.server().read(sink, net.now()) > 0) {
    }
    while (net.client().read(sink, net.now()) > 0) {
    }
  }
  ASSERT_EQ(migrations, 6);
  EXPECT_EQ(net.client().migration_count(), 6u);
  EXPECT_EQ(net.server().migration_count(), 6u);
  EXPECT_EQ(net.server().active_path(), net.client().active_path());
}

TEST(Flow, BackPressureBoundsSendBuffer) {
  core::FlowConfig config;
  config.send_buffer = 64 * 1024;
  config.recv_window = 32 * 1024;
  FlowPair net(config);
  auto data = pattern(1024 * 1024);
  const std::size_t n = net.client().write(data, net.now());
  EXPECT_EQ(n, 64u * 1024);
  net.settle(10ms);
  // The server never reads: only the window's worth can be in flight and buffered there.
  EXPECT_LE(net.server().readable_bytes(), 32u * 1024);
  EXPECT_EQ(net.client().write(data, net.now()), 32u * 1024);  // acked part freed
  EXPECT_EQ(net.client().write(data, net.now()), 0u);
}

TEST(Flow, RemovePathRefusesLastOne) {
  FlowPair net(core::FlowConfig{}, 1);
  EXPECT_FALSE(net.client().remove_path(1, net.now()));
  FlowPair two;
  EXPECT_TRUE(two.client().remove_path(1, two.now()));
  two.settle(10ms);
  EXPECT_EQ(two.client().active_path(), 2u);
}

TEST(Flow, JoinWithWrongMacOrReplayIsRefused) {
  FlowPair net;
  wire::Join join;
  join.flow_id = net.client().flow_id();
  join.path_id = 5;
  join.counter = 99;
  EXPECT_EQ(net.server().on_join(join, net.now()).status, wire::Status::bad_proof);
  auto stats = net.server().stats(net.now());
  EXPECT_EQ(stats.joins_rejected, 1u);
}

// Regression (found by tests/sim): the window update that reopened a full window was lost
// with the path it went out on; nothing re-sent it and the sender waited forever.
TEST(Flow, WindowUpdateLostWithItsPathIsResent) {
  core::FlowConfig config;
  config.send_buffer = 64 * 1024;
  config.recv_window = 32 * 1024;
  FlowPair net(config);
  auto data = pattern(64 * 1024);
  ASSERT_EQ(net.client().write(data, net.now()), data.size());
  net.settle(10ms);
  ASSERT_EQ(net.server().readable_bytes(), 32u * 1024);  // window full, the rest waits
  net.blackhole(1);  // the active path; the window update below goes out on it and vanishes
  std::vector<wire::Byte> got(data.size());
  std::size_t n = net.server().read(got, net.now());
  net.settle(3s);
  n += net.server().read(wire::MutableBytes(got).subspan(n), net.now());
  ASSERT_EQ(n, data.size());
  EXPECT_TRUE(got == data);
}

// The OPEN's path dies after the server got it but before its OPEN_ACK reached the client: the
// client sends the same OPEN on its other path, and the server answers it with the OPEN_ACK it
// sent first. Anything else naming the flow gets nothing.
TEST(Flow, RepeatedOpenIsAnsweredWithTheFirstOpenAckOnly) {
  core::FlowConfig config;
  const core::Time t0{std::chrono::seconds(1000)};
  auto client = core::Flow::make_client(config, t0);
  const core::PathId first = client->add_path(t0);
  const core::PathId second = client->add_path(t0);
  while (client->poll_event()) {
  }
  client->on_path_connected(first, t0);
  client->on_path_connected(second, t0);
  auto sent_on = [&](core::Flow& flow, core::PathId id, core::Time now) {
    wire::TransmitBatch out(1 << 20);
    EXPECT_TRUE(flow.poll_transmit(id, now, out));
    const wire::OutFrame& first = out.frames()[0];
    std::vector<wire::Byte> bytes(first.header_bytes().begin(), first.header_bytes().end());
    wire::Frame frame;
    EXPECT_EQ(wire::decode(bytes, frame).error, wire::DecodeError::none);
    return frame;
  };
  const wire::Open open = std::get<wire::Open>(sent_on(*client, first, t0).body);
  EXPECT_FALSE(client->wants_transmit(second));  // waits for the OPEN_ACK, then JOINs
  wire::Status status{};
  auto server = core::Flow::make_server(config, open, first, t0, status);
  ASSERT_NE(server, nullptr);
  const wire::OpenAck first_ack = std::get<wire::OpenAck>(sent_on(*server, first, t0).body);

  // The first path dies with the OPEN_ACK on it.
  client->on_path_down(first, core::DownCause::reset, t0 + 1ms);
  server->on_path_down(first, core::DownCause::reset, t0 + 1ms);
  const wire::Frame resent = sent_on(*client, second, t0 + 1ms);
  const wire::Open repeated = std::get<wire::Open>(resent.body);
  EXPECT_EQ(repeated.path_id, second);
  const auto answer = server->open_ack_for_repeated_open(repeated, t0 + 1ms);
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(*answer, first_ack);

  // A FlowId alone, or a captured OPEN with anything changed, is someone else's.
  std::vector<std::function<void(wire::Open&)>> changes = {
      [](wire::Open& o) { o.key_share[0] ^= 1; },
      [](wire::Open& o) { o.nonce[15] ^= 1; },
      [](wire::Open& o) { o.window += 1; },
      [](wire::Open& o) { o.mode = wire::ModeCode::race; },
      [](wire::Open& o) { o.version += 1; },
      [](wire::Open& o) { o.flow_id[0] ^= 1; },
  };
  for (const auto& change : changes) {
    wire::Open other = open;
    change(other);
    EXPECT_FALSE(server->open_ack_for_repeated_open(other, t0 + 1ms).has_value());
  }
  EXPECT_FALSE(client->open_ack_for_repeated_open(open, t0).has_value());  // servers only

  // The client takes the answer; the listener then closes that connection, unattached. The
  // flow stays established (no error), and the path is re-dialed and JOINs with a MAC.
  client->on_frame(second, wire::Frame{0, *answer}, {}, t0 + 2ms);
  client->on_path_down(second, core::DownCause::eof, t0 + 2ms);
  EXPECT_EQ(client->error(), core::FlowError::none);
  EXPECT_NE(client->state(), core::FlowState::failed);
  EXPECT_NE(client->state(), core::FlowState::opening);
  bool established = false;
  while (auto e = client->poll_event())
    established = established || e->kind == core::Event::Kind::established;
  EXPECT_TRUE(established);
  EXPECT_EQ(client->path_state(second), core::PathState::idle);
  const core::Time later = t0 + config.redial_initial + 2ms;
  client->on_timer(later);
  std::vector<core::PathId> dialed;
  while (auto e = client->poll_event()) {
    if (e->kind == core::Event::Kind::dial_path) dialed.push_back(e->path);
  }
  ASSERT_EQ(dialed.size(), 2u);
  for (core::PathId id : dialed) {
    client->on_path_connected(id, later);
    const wire::Join join = std::get<wire::Join>(sent_on(*client, id, later).body);
    const core::JoinVerdict verdict = server->on_join(join, later);
    EXPECT_EQ(verdict.status, wire::Status::ok);
    client->on_frame(id, sent_on(*server, verdict.provisional, later), {}, later);
    EXPECT_EQ(client->path_state(id), core::PathState::up);
    // The client's PROOF over the JOIN_ACK's challenge attaches the path (and, as no PROOF
    // came on the first path, authenticates the flow).
    server->on_frame(verdict.provisional, sent_on(*client, id, later), {}, later);
    EXPECT_EQ(server->path_state(id), core::PathState::up);
  }
  EXPECT_EQ(client->state(), core::FlowState::established);
  EXPECT_TRUE(server->authenticated());
}

// The same through the harness: the dial completes on the one server flow and data flows.
TEST(Flow, OpenAckLostWithItsPathStillEstablishesTheFlow) {
  core::FlowConfig config;
  FlowPair net(config, {{.latency = 20ms}, {.latency = 5ms}}, 0ms);
  net.settle(30ms);  // the OPEN has arrived (20 ms), its OPEN_ACK is on its way back
  ASSERT_TRUE(net.has_server());
  ASSERT_EQ(net.client().state(), core::FlowState::opening);
  const core::Flow* server = &net.server();
  net.kill(1);
  net.settle(500ms);
  EXPECT_EQ(net.repeated_opens_answered, 1u);
  EXPECT_EQ(net.opens_refused, 0u);
  EXPECT_EQ(&net.server(), server);
  EXPECT_EQ(net.client().state(), core::FlowState::established);
  EXPECT_EQ(net.client().error(), core::FlowError::none);
  EXPECT_EQ(net.client().path_state(1), core::PathState::up);
  EXPECT_EQ(net.client().path_state(2), core::PathState::up);
  EXPECT_EQ(net.server().path_state(1), core::PathState::up);
  EXPECT_EQ(net.server().path_state(2), core::PathState::up);
  const auto data = pattern(300'000);
  const auto got = transfer(net, data);
  ASSERT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
}

TEST(Flow, AbortReachesPeer) {
  FlowPair net;
  net.client().abort(net.now());
  net.settle(10ms);
  EXPECT_EQ(net.client().error(), core::FlowError::aborted);
  EXPECT_EQ(net.server().error(), core::FlowError::peer_aborted);
}

// Both ends are done (FINs acknowledged) and their "done" notices are on the way when the
// client's active path goes: losing a path in the closing exchange is no migration to report,
// and the flow still closes (at the latest after close_linger, if the server's notice was lost
// with the path).
TEST(Flow, PathLostWhileClosingIsNoMigration) {
  for (core::Mode mode : {core::Mode::prime, core::Mode::race}) {
    FlowPair net(with_mode(mode), {{1ms, {}}, {1ms, {}}});
    auto data = pattern(64 * 1024);
    ASSERT_TRUE(transfer(net, data) == data);
    net.client().close(net.now());
    net.server().close(net.now());
    net.settle(2500us);  // FINs and their ACKs crossed (1 ms each way); the notices did not
    ASSERT_NE(net.client().state(), core::FlowState::closed);
    net.client().on_path_down(net.client().active_path(), core::DownCause::eof, net.now());
    net.settle(core::FlowConfig{}.close_linger + 1s);
    EXPECT_EQ(net.client().state(), core::FlowState::closed) << core::to_string(mode);
    EXPECT_EQ(net.server().state(), core::FlowState::closed) << core::to_string(mode);
    EXPECT_EQ(net.client().migration_count(), 0u) << core::to_string(mode);
    EXPECT_TRUE(net.client_migrations.empty()) << core::to_string(mode);
  }
}

}  // namespace
}  // namespace rendr::test
