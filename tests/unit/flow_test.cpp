// Unit tests of core::Flow over the in-memory harness (virtual time, no sockets).
#include <gtest/gtest.h>

#include <functional>
#include <numeric>

#include "core/bond_scheduler.hpp"
#include "flow_harness.hpp"

namespace rendr::test {
namespace {

std::vector<wire::Byte> pattern(std::size_t n, std::uint8_t seed = 7) {
  std::vector<wire::Byte> v(n);
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& b : v) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<wire::Byte>(x >> 24);
  }
  return v;
}

// Pushes `data` from client to server through the harness, reading on the server as it goes.
std::vector<wire::Byte> transfer(FlowPair& net, const std::vector<wire::Byte>& data,
                                 const std::function<void(std::size_t)>& at_offset = {}) {
  std::vector<wire::Byte> got;
  std::size_t written = 0;
  std::vector<wire::Byte> buf(64 * 1024);
  for (int round = 0; round < 100000 && got.size() < data.size(); ++round) {
    if (written < data.size()) {
      const std::size_t before = written;
      written +=
          net.client().write(wire::ConstBytes(data).subspan(
                                 written, std::min<std::size_t>(data.size() - written, 100'000)),
                             net.now());
      if (at_offset && before != written) at_offset(written);
    }
    net.settle(1ms);
    if (net.has_server()) {
      std::size_t n;
      while ((n = net.server().read(buf, net.now())) > 0)
        got.insert(got.end(), buf.begin(), buf.begin() + n);
    }
    if (net.client().state() == core::FlowState::failed) break;
  }
  return got;
}

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

TEST(Flow, SilentPathDeathFailsOverWithinMilliseconds) {
  FlowPair net;
  auto data = pattern(2 * 1024 * 1024);
  bool killed = false;
  core::Time killed_at{};
  auto got = transfer(net, data, [&](std::size_t off) {
    if (!killed && off > 512 * 1024) {
      killed = true;
      killed_at = net.now();
      net.blackhole(1);
      net.refuse(1);
    }
  });
  ASSERT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
  EXPECT_EQ(net.client().active_path(), 2u);
  EXPECT_GE(net.client().migration_count(), 1u);
  EXPECT_EQ(net.client().error(), core::FlowError::none);
  (void)killed_at;
}

TEST(Flow, AllPathsDeadPastBudgetFailsBothEnds) {
  core::FlowConfig config;
  config.migration_budget = 2s;
  FlowPair net(config);
  auto data = pattern(64 * 1024);
  transfer(net, data);
  for (core::PathId id : {1u, 2u}) {
    net.blackhole(id);
    net.refuse(id);
  }
  net.client().write(data, net.now());
  net.advance(1500ms);
  EXPECT_EQ(net.client().error(), core::FlowError::none);
  EXPECT_EQ(net.client().state(), core::FlowState::migrating);
  net.advance(2s);
  EXPECT_EQ(net.client().error(), core::FlowError::migration_budget_exceeded);
  EXPECT_EQ(net.server().error(), core::FlowError::migration_budget_exceeded);
  EXPECT_FALSE(net.server().eof());
}

TEST(Flow, AllPathsDeadThenOneRecoversCompletes) {
  FlowPair net;
  auto data = pattern(1024 * 1024);
  bool cut = false;
  auto got = transfer(net, data, [&](std::size_t off) {
    if (!cut && off > 300 * 1024) {
      cut = true;
      for (core::PathId id : {1u, 2u}) {
        net.blackhole(id);
        net.refuse(id);
      }
      net.advance(3s);
      EXPECT_EQ(net.client().state(), core::FlowState::migrating);
      net.blackhole(2, false);
      net.refuse(2, false);
    }
  });
  ASSERT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
  EXPECT_EQ(net.client().state(), core::FlowState::established);
}

TEST(Flow, KilledPathIsRedialedAndRejoins) {
  FlowPair net;
  const auto dials = net.client_dials;
  net.kill(2);
  net.settle(100ms);
  EXPECT_GT(net.client_dials, dials);
  EXPECT_EQ(net.client().path_state(2), core::PathState::up);
  EXPECT_EQ(net.server().path_state(2), core::PathState::up);
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

// The path a migration leaves still carried data the peer had not acknowledged yet; the
// peer's ACK goes out on its new active path, so it must also answer on the old one, or the
// old path looks silent and is declared dead although nothing is wrong with it.
TEST(Flow, PathMigratedAwayFromIsNotDeclaredDead) {
  FlowPair net;
  auto data = pattern(64 * 1024);
  std::vector<wire::Byte> sink(1 << 20);
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(net.client().write(data, net.now()), data.size());
    net.settle(0ms);  // delivered on the active path, the server's ACK is still delayed
    const core::PathId other = net.client().active_path() == 1 ? 2 : 1;
    ASSERT_TRUE(net.client().migrate(other, net.now()));
    ASSERT_EQ(net.client().write(data, net.now()), data.size());
    net.settle(200ms);
    while (net.server().read(sink, net.now()) > 0) {
    }
  }
  for (const auto& p : net.client().stats(net.now()).paths) {
    EXPECT_EQ(p.down_count, 0u) << "path " << p.id;
    EXPECT_EQ(p.state, core::PathState::up) << "path " << p.id;
  }
  EXPECT_EQ(net.client().migration_count(), 10u);
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

// Regression (found by tests/sim): a server path has no RTT sample right after OPEN/JOIN; it
// was declared dead after dead_floor (40 ms), so a path with a longer RTT could never be used.
TEST(Flow, FreshServerPathOnLongRttIsNotDeclaredDead) {
  core::FlowConfig config;
  const core::Time t0{std::chrono::seconds(1000)};
  auto client = core::Flow::make_client(config, t0);
  const core::PathId id = client->add_path(t0);
  while (client->poll_event()) {
  }
  client->on_path_connected(id, t0);
  wire::TransmitBatch out(1 << 20);
  ASSERT_TRUE(client->poll_transmit(id, t0, out));
  const wire::OutFrame& first = out.frames()[0];
  std::vector<wire::Byte> bytes(first.header_bytes().begin(), first.header_bytes().end());
  wire::Frame frame;
  ASSERT_EQ(wire::decode(bytes, frame).error, wire::DecodeError::none);
  wire::Status status{};
  auto server = core::Flow::make_server(config, std::get<wire::Open>(frame.body), id, t0, status);
  ASSERT_NE(server, nullptr);
  server->on_timer(t0);
  out.reset(1 << 20);
  ASSERT_TRUE(server->poll_transmit(id, t0, out));  // OPEN_ACK and a PING
  // A 150 ms round trip: nothing back yet, and the path must still be up.
  server->on_timer(t0 + 150ms);
  EXPECT_EQ(server->path_state(id), core::PathState::up);
  // Silence for longer than a handshake is allowed still kills it.
  server->on_timer(t0 + config.handshake_timeout + 1ms);
  EXPECT_NE(server->path_state(id), core::PathState::up);
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
  const auto answer = server->open_ack_for_repeated_open(repeated);
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
    EXPECT_FALSE(server->open_ack_for_repeated_open(other).has_value());
  }
  EXPECT_FALSE(client->open_ack_for_repeated_open(open).has_value());  // servers only

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
    EXPECT_EQ(server->on_join(join, later).status, wire::Status::ok);
    client->on_frame(id, sent_on(*server, id, later), {}, later);
    EXPECT_EQ(client->path_state(id), core::PathState::up);
  }
  EXPECT_EQ(client->state(), core::FlowState::established);
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

// ---------------------------------------------------------------------------------------------
// Modes.

core::FlowConfig with_mode(core::Mode mode) {
  core::FlowConfig config;
  config.mode = mode;
  return config;
}

std::uint64_t bytes_sent_on(const core::FlowStats& stats, core::PathId id) {
  for (const auto& p : stats.paths) {
    if (p.id == id) return p.bytes_sent;
  }
  return 0;
}

// Longest virtual time between two reads that returned bytes while `data` streams through.
struct TimedTransfer {
  std::vector<wire::Byte> got;
  core::Duration longest_gap{};
};
TimedTransfer transfer_timed(FlowPair& net, const std::vector<wire::Byte>& data,
                             const std::function<void(std::size_t)>& at_offset) {
  TimedTransfer r;
  std::size_t written = 0;
  std::vector<wire::Byte> buf(64 * 1024);
  core::Time last_progress = net.now();
  for (int round = 0; round < 100000 && r.got.size() < data.size(); ++round) {
    if (written < data.size()) {
      written +=
          net.client().write(wire::ConstBytes(data).subspan(
                                 written, std::min<std::size_t>(data.size() - written, 16 * 1024)),
                             net.now());
      at_offset(written);
    }
    net.settle(200us);
    std::size_t n;
    bool progress = false;
    while ((n = net.server().read(buf, net.now())) > 0) {
      r.got.insert(r.got.end(), buf.begin(), buf.begin() + n);
      progress = true;
    }
    if (progress) {
      r.longest_gap = std::max(r.longest_gap, net.now() - last_progress);
      last_progress = net.now();
    }
  }
  return r;
}

TEST(FlowModes, RaceSendsEveryFrameOnEveryPathAndCountsDuplicates) {
  FlowPair net(with_mode(core::Mode::race));
  EXPECT_EQ(net.server().mode(), core::Mode::race);  // from OPEN
  auto data = pattern(1024 * 1024);
  auto got = transfer(net, data);
  ASSERT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
  const auto client = net.client().stats(net.now());
  EXPECT_GE(bytes_sent_on(client, 1), data.size());
  EXPECT_GE(bytes_sent_on(client, 2), data.size());
  const auto server = net.server().stats(net.now());
  EXPECT_GT(server.recv_dups, 0u);
  EXPECT_EQ(server.bytes_delivered, data.size());
  EXPECT_EQ(client.migrations, 0u);
  EXPECT_EQ(server.migrations, 0u);  // the server does not chase DATA across paths
}

// A blackholed path in race mode: the other path already carries every byte, so the reader
// never waits for the dead path to be detected. Prime, for contrast, waits for the detector.
TEST(FlowModes, RaceBlackholedPathCausesNoStall) {
  for (core::Mode mode : {core::Mode::race, core::Mode::prime}) {
    FlowPair net(with_mode(mode), {{1ms, {}}, {1ms, {}}});
    auto data = pattern(2 * 1024 * 1024);
    bool cut = false;
    auto r = transfer_timed(net, data, [&](std::size_t off) {
      if (!cut && off > 512 * 1024) {
        cut = true;
        net.blackhole(1);
        net.refuse(1);
      }
    });
    ASSERT_EQ(r.got.size(), data.size()) << core::to_string(mode);
    EXPECT_TRUE(r.got == data);
    if (mode == core::Mode::race) {
      EXPECT_LE(r.longest_gap, 3ms);
    } else {
      EXPECT_GE(r.longest_gap, 30ms);  // the dead-path floor: the test can see a stall
    }
  }
}

// Like transfer(), but keeps the send buffer full: bond shares out what the paths can carry,
// so an application that writes a trickle would never need the second path.
std::vector<wire::Byte> saturating_transfer(FlowPair& net, const std::vector<wire::Byte>& data) {
  std::vector<wire::Byte> got;
  std::size_t written = 0;
  std::vector<wire::Byte> buf(1 << 20);
  for (int round = 0; round < 100000 && got.size() < data.size(); ++round) {
    written += net.client().write(wire::ConstBytes(data).subspan(written), net.now());
    net.settle(200us);
    std::size_t n;
    while ((n = net.server().read(buf, net.now())) > 0)
      got.insert(got.end(), buf.begin(), buf.begin() + n);
  }
  net.settle(50ms);  // the last ACKs arrive
  return got;
}

TEST(FlowModes, BondUsesBothPaths) {
  FlowPair net(with_mode(core::Mode::bond), {{1ms, {}}, {1ms, {}}});
  net.set_poll_bytes(64 * 1024);
  auto data = pattern(8 * 1024 * 1024);
  auto got = saturating_transfer(net, data);
  ASSERT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
  const auto stats = net.client().stats(net.now());
  EXPECT_GE(bytes_sent_on(stats, 1), data.size() / 4);
  EXPECT_GE(bytes_sent_on(stats, 2), data.size() / 4);
  EXPECT_LT(bytes_sent_on(stats, 1) + bytes_sent_on(stats, 2), data.size() * 11 / 10);
  for (const auto& p : stats.paths) {
    EXPECT_GT(p.delivery_rate, 0u) << "path " << p.id;
    EXPECT_EQ(p.in_flight, 0u) << "path " << p.id;  // everything acknowledged
  }
  EXPECT_GT(net.server().stats(net.now()).recv_queue_hwm, 0u);  // it did reorder
}

TEST(FlowModes, BondSkipsFarSlowerPath) {
  core::FlowConfig config = with_mode(core::Mode::bond);
  config.recv_window = 512 * 1024;
  FlowPair net(config, {{1ms, {}}, {100ms, {}}});
  net.set_poll_bytes(64 * 1024);
  auto data = pattern(4 * 1024 * 1024);
  auto got = saturating_transfer(net, data);
  ASSERT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
  const auto stats = net.client().stats(net.now());
  EXPECT_GT(stats.bond_stuck_skips, 0u);
  EXPECT_LT(bytes_sent_on(stats, 2), data.size() / 20);
  EXPECT_LE(net.server().stats(net.now()).recv_buffered, config.recv_window);
}

// A weight scales the delivery rate the scheduler believes in: a weight-3 path with three
// times the bytes in flight is as good a choice as an equal weight-1 path.
TEST(FlowModes, BondWeightScalesTheEstimate) {
  const core::BondCandidate light{4ms, 100'000, 10e6, 1};
  core::BondCandidate heavy = light;
  heavy.weight = 3;
  EXPECT_LT(core::estimated_arrival(heavy, 64 * 1024), core::estimated_arrival(light, 64 * 1024));
  heavy.in_flight = 3 * (light.in_flight + 64 * 1024) - 64 * 1024;
  EXPECT_NEAR(core::estimated_arrival(heavy, 64 * 1024), core::estimated_arrival(light, 64 * 1024),
              1e-9);
  // Within the tolerance (half the window at the aggregate rate) a later path is admitted.
  EXPECT_TRUE(core::bond_admits(0.010, 0.002, 20e6, 1'000'000));   // 8 ms late, 25 ms allowed
  EXPECT_FALSE(core::bond_admits(0.100, 0.002, 20e6, 1'000'000));  // 98 ms late
  EXPECT_TRUE(core::bond_admits(0.002, 0.002, 20e6, 0));           // the best is always admitted

  FlowPair net(with_mode(core::Mode::bond));
  ASSERT_TRUE(net.client().set_path_weight(2, 3));
  EXPECT_FALSE(net.client().set_path_weight(9, 3));
  EXPECT_EQ(net.client().stats(net.now()).paths[1].weight, 3u);
  EXPECT_EQ(net.client().add_path(net.now(), 5), 3u);
  EXPECT_EQ(net.client().stats(net.now()).paths[2].weight, 5u);
}

// While the paths have room (the application writes less than they carry), the bytes are split
// by the weights; the delivery-time estimate alone would split them evenly.
TEST(FlowModes, BondSplitsByWeightWhilePathsHaveRoom) {
  FlowPair net(with_mode(core::Mode::bond), {{1ms, {}}, {1ms, {}}});
  ASSERT_TRUE(net.client().set_path_weight(1, 3));
  const auto chunk = pattern(32 * 1024);
  std::vector<wire::Byte> sink(1 << 20);
  std::uint64_t written = 0;
  std::uint64_t delivered = 0;
  for (int i = 0; i < 512; ++i) {
    written += net.client().write(chunk, net.now());
    net.settle(1ms);
    delivered += net.server().read(sink, net.now());
  }
  net.settle(50ms);
  delivered += net.server().read(sink, net.now());
  ASSERT_EQ(delivered, written);
  const auto stats = net.client().stats(net.now());
  EXPECT_NEAR(double(bytes_sent_on(stats, 1)) / double(written), 0.75, 0.05);
  EXPECT_NEAR(double(bytes_sent_on(stats, 2)) / double(written), 0.25, 0.05);
}

TEST(FlowModes, BondPathDeathResendsItsRangesOnTheOthers) {
  for (bool silent : {false, true}) {
    FlowPair net(with_mode(core::Mode::bond), {{1ms, {}}, {1ms, {}}, {1ms, {}}});
    net.set_poll_bytes(64 * 1024);
    auto data = pattern(4 * 1024 * 1024);
    bool cut = false;
    auto got = transfer(net, data, [&](std::size_t off) {
      if (!cut && off > 1024 * 1024) {
        cut = true;
        net.refuse(2);
        if (silent) {
          net.blackhole(2);
        } else {
          net.kill(2);
        }
      }
    });
    ASSERT_EQ(got.size(), data.size());
    EXPECT_TRUE(got == data);
    const auto stats = net.client().stats(net.now());
    EXPECT_GT(stats.retransmitted_bytes, 0u);
    EXPECT_LT(stats.retransmitted_bytes, 1024u * 1024);  // its ranges, not everything
  }
}

void expect_modes(FlowPair& net, core::Mode mode) {
  EXPECT_EQ(net.client().mode(), mode);
  EXPECT_EQ(net.server().mode(), mode);
  EXPECT_EQ(net.client().stats(net.now()).mode, mode);
}

TEST(FlowModes, LegalSwitchesAgreeOnBothEnds) {
  FlowPair net;
  const core::Mode sequence[] = {core::Mode::race, core::Mode::prime, core::Mode::bond,
                                 core::Mode::prime};
  for (core::Mode mode : sequence) {
    ASSERT_EQ(net.client().set_mode(mode, net.now()), core::SetModeResult::ok);
    EXPECT_EQ(net.client().mode(), mode);
    net.settle(10ms);
    expect_modes(net, mode);
  }
  EXPECT_EQ(net.server_mode_changes,
            std::vector<core::Mode>(std::begin(sequence), std::end(sequence)));
  EXPECT_TRUE(net.client_mode_changes.empty());  // our own switches are not events
  EXPECT_EQ(net.client().stats(net.now()).mode_switches, 4u);
  EXPECT_EQ(net.server().stats(net.now()).mode_switches, 4u);
  EXPECT_EQ(net.server().stats(net.now()).protocol_errors, 0u);
  // Setting the current mode again is a no-op.
  EXPECT_EQ(net.client().set_mode(core::Mode::prime, net.now()), core::SetModeResult::ok);
  EXPECT_EQ(net.client().stats(net.now()).mode_switches, 4u);
}

TEST(FlowModes, ServerInitiatedSwitchIsFollowedByClient) {
  FlowPair net;
  ASSERT_EQ(net.server().set_mode(core::Mode::bond, net.now()), core::SetModeResult::ok);
  net.settle(10ms);
  expect_modes(net, core::Mode::bond);
  EXPECT_EQ(net.client_mode_changes, std::vector<core::Mode>{core::Mode::bond});
}

TEST(FlowModes, RaceBondSwitchIsIllegalAndChangesNothing) {
  for (core::Mode from : {core::Mode::race, core::Mode::bond}) {
    FlowPair net(with_mode(from));
    const core::Mode to = from == core::Mode::race ? core::Mode::bond : core::Mode::race;
    EXPECT_EQ(net.client().set_mode(to, net.now()), core::SetModeResult::illegal);
    EXPECT_EQ(net.server().set_mode(to, net.now()), core::SetModeResult::illegal);
    net.settle(10ms);
    expect_modes(net, from);
    EXPECT_EQ(net.client().stats(net.now()).mode_switches, 0u);
    EXPECT_EQ(net.server().stats(net.now()).mode_switches, 0u);
  }
}

// A peer announcing race -> bond (which no honest peer does) is ignored and counted.
TEST(FlowModes, PeerIllegalModeIsIgnoredAndCounted) {
  FlowPair net(with_mode(core::Mode::race));
  wire::Frame frame{0, wire::Mode{1, wire::ModeCode::bond}};
  net.server().on_frame(1, frame, wire::Slice{}, net.now());
  EXPECT_EQ(net.server().mode(), core::Mode::race);
  EXPECT_EQ(net.server().stats(net.now()).protocol_errors, 1u);
  net.settle(10ms);
  EXPECT_EQ(net.server().mode(), core::Mode::race);
  // An older seq is stale, not an error.
  net.server().on_frame(1, wire::Frame{0, wire::Mode{1, wire::ModeCode::prime}}, wire::Slice{},
                        net.now());
  EXPECT_EQ(net.server().mode(), core::Mode::race);
  EXPECT_EQ(net.server().stats(net.now()).protocol_errors, 1u);
}

// Announcements overtaking one another on different paths: race -> prime (seq 1) is still on
// its way when prime -> bond (seq 2) arrives. The later one wins; the earlier arrives stale.
TEST(FlowModes, OvertakingAnnouncementsEndInTheLatestMode) {
  FlowPair net(with_mode(core::Mode::race));
  net.server().on_frame(2, wire::Frame{0, wire::Mode{2, wire::ModeCode::bond}}, wire::Slice{},
                        net.now());
  net.server().on_frame(1, wire::Frame{0, wire::Mode{1, wire::ModeCode::prime}}, wire::Slice{},
                        net.now());
  EXPECT_EQ(net.server().mode(), core::Mode::bond);
  EXPECT_EQ(net.server().stats(net.now()).protocol_errors, 0u);
}

// Both ends announce at once with the same seq: the client's mode wins on both ends.
TEST(FlowModes, CrossingAnnouncementsSettleOnTheClientsMode) {
  FlowPair net;
  ASSERT_EQ(net.client().set_mode(core::Mode::race, net.now()), core::SetModeResult::ok);
  ASSERT_EQ(net.server().set_mode(core::Mode::bond, net.now()), core::SetModeResult::ok);
  net.settle(10ms);
  expect_modes(net, core::Mode::race);
  EXPECT_EQ(net.server().stats(net.now()).protocol_errors, 0u);
  EXPECT_EQ(net.client().stats(net.now()).protocol_errors, 0u);
}

// The only path carrying the MODE dies with it; the announcement goes out again on the path
// that comes up next, and the flow does not finish before the peer confirmed it.
TEST(FlowModes, ModeAnnouncementSurvivesDeathOfItsPath) {
  FlowPair net;
  net.refuse(2);
  net.kill(2);
  net.blackhole(1);
  ASSERT_EQ(net.client().set_mode(core::Mode::race, net.now()), core::SetModeResult::ok);
  net.settle(20ms);
  EXPECT_EQ(net.server().mode(), core::Mode::prime);  // lost in the blackhole
  net.refuse(2, false);
  net.settle(3s);
  expect_modes(net, core::Mode::race);
}

// Switching every 128 KiB through every legal transition, in both directions of the stream,
// with a path killed now and then: nothing lost, duplicated or reordered.
TEST(FlowModes, SwitchesMidTransferLoseNothing) {
  FlowPair net(core::FlowConfig{}, {{1ms, {}}, {3ms, {}}});
  net.set_poll_bytes(64 * 1024);
  const core::Mode cycle[] = {core::Mode::race, core::Mode::prime, core::Mode::bond,
                              core::Mode::prime};
  auto data = pattern(6 * 1024 * 1024);
  std::size_t next_switch = 128 * 1024;
  int switches = 0;
  auto got = transfer(net, data, [&](std::size_t off) {
    if (off < next_switch) return;
    next_switch += 128 * 1024;
    // The server switches too, once it agrees with the client (no crossing announcements).
    const bool agreed = net.client().mode() == net.server().mode();
    core::Flow& side = switches % 3 == 2 && agreed ? net.server() : net.client();
    const core::Mode target = cycle[switches % 4];
    const auto expected = core::mode_switch_legal(side.mode(), target)
                              ? core::SetModeResult::ok
                              : core::SetModeResult::illegal;
    ASSERT_EQ(side.set_mode(target, net.now()), expected);
    if (++switches % 7 == 0) net.kill(switches % 2 == 0 ? 1 : 2);
  });
  ASSERT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
  EXPECT_GE(switches, 40);
  net.settle(100ms);
  EXPECT_EQ(net.client().mode(), net.server().mode());
  EXPECT_EQ(net.client().stats(net.now()).protocol_errors, 0u);
  EXPECT_EQ(net.server().stats(net.now()).protocol_errors, 0u);
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

// The server process stalls for 150 ms (descheduled, stopped), far past the 40 ms dead-path
// floor: it is silent on every path at once, so nothing shows that one path is worse than the
// other, and no path is declared dead: nothing is re-dialed or replayed.
TEST(Flow, PeerSilentOnEveryPathIsNotDeclaredDeadWithinTheGrace) {
  for (core::Mode mode : {core::Mode::prime, core::Mode::race, core::Mode::bond}) {
    FlowPair net(with_mode(mode), {{1ms, {}}, {1ms, {}}});
    auto data = pattern(256 * 1024);
    ASSERT_TRUE(transfer(net, data) == data);
    net.stall_server(150ms);
    net.client().write(data, net.now());
    net.settle(1s);
    std::vector<wire::Byte> got(data.size());
    EXPECT_EQ(net.server().read(got, net.now()), data.size()) << core::to_string(mode);
    EXPECT_TRUE(got == data) << core::to_string(mode);
    for (core::Flow* side : {&net.client(), &net.server()}) {
      for (const auto& p : side->stats(net.now()).paths)
        EXPECT_EQ(p.down_count, 0u) << core::to_string(mode) << " path " << p.id;
      EXPECT_EQ(side->migration_count(), 0u) << core::to_string(mode);
    }
  }
}

// Past the grace, a peer silent everywhere does cost the paths (and then the budget decides).
TEST(Flow, PeerSilentOnEveryPathBeyondTheGraceLosesItsPaths) {
  FlowPair net(core::FlowConfig{}, {{1ms, {}}, {1ms, {}}});
  auto data = pattern(64 * 1024);
  ASSERT_TRUE(transfer(net, data) == data);
  net.stall_server(core::FlowConfig{}.silent_peer_grace + 200ms);
  net.client().write(data, net.now());
  net.settle(core::FlowConfig{}.silent_peer_grace + 100ms);
  EXPECT_NE(net.client().path_state(1), core::PathState::up);
  EXPECT_NE(net.client().path_state(2), core::PathState::up);
  net.settle(3s);  // the server wakes up; the client re-dials and the flow carries on
  std::vector<wire::Byte> got(data.size());
  EXPECT_EQ(net.server().read(got, net.now()), data.size());
  EXPECT_TRUE(got == data);
}

// The active path is blackholed while the other answers: the peer is alive, so the silent path
// is dead at its deadline (40 ms floor), not after the grace.
TEST(Flow, SilentPathIsDeadAtItsDeadlineWhenThePeerAnswersElsewhere) {
  FlowPair net(core::FlowConfig{}, {{1ms, {}}, {1ms, {}}});
  auto data = pattern(64 * 1024);
  ASSERT_TRUE(transfer(net, data) == data);
  net.blackhole(1);
  const core::Time start = net.now();
  net.client().write(data, net.now());
  for (int i = 0; i < 1000 && net.client().path_state(1) == core::PathState::up; ++i)
    net.settle(1ms);
  EXPECT_NE(net.client().path_state(1), core::PathState::up);
  EXPECT_LE(net.now() - start, 50ms);
  EXPECT_EQ(net.client().active_path(), 2u);
}

// ---------------------------------------------------------------------------------------------
// Prime quality switching.

TEST(FlowQuality, MovesToClearlyBetterPathAfterDwell) {
  FlowPair net(core::FlowConfig{}, {{20ms, {}}, {2ms, {}}});
  ASSERT_EQ(net.client().active_path(), 1u);  // first up
  net.advance(1500ms);
  EXPECT_EQ(net.client().active_path(), 1u);  // not before the dwell
  net.advance(1500ms);
  EXPECT_EQ(net.client().active_path(), 2u);
  EXPECT_EQ(net.client_migrations, std::vector<core::MigrateCause>{core::MigrateCause::quality});
  const auto stats = net.client().stats(net.now());
  EXPECT_EQ(stats.migrations_quality, 1u);
  EXPECT_EQ(stats.migrations, 1u);
  auto data = pattern(256 * 1024);
  ASSERT_TRUE(transfer(net, data) == data);
  EXPECT_EQ(net.server().active_path(), 2u);  // the server follows
}

TEST(FlowQuality, SmallGainIsNotWorthASwitch) {
  FlowPair net(core::FlowConfig{}, {{10ms, {}}, {9ms, {}}});
  net.advance(10s);
  EXPECT_EQ(net.client().active_path(), 1u);
  EXPECT_EQ(net.client().migration_count(), 0u);
}

// Two equal paths with jitter under 30 s of traffic: never a quality migration.
TEST(FlowQuality, EqualPathsWithJitterNeverFlap) {
  FlowPair net(core::FlowConfig{}, {{5ms, 4ms}, {5ms, 4ms}});
  auto chunk = pattern(16 * 1024);
  std::vector<wire::Byte> sink(1 << 20);
  std::uint64_t delivered = 0;
  const core::Time end = net.now() + 30s;
  while (net.now() < end) {
    net.client().write(chunk, net.now());
    net.settle(5ms);
    delivered += net.server().read(sink, net.now());
  }
  EXPECT_GT(delivered, 30u * 1024 * 1024);
  const auto stats = net.client().stats(net.now());
  EXPECT_EQ(stats.migrations_quality, 0u);
  EXPECT_EQ(stats.migrations, 0u);
  EXPECT_GT(stats.paths[0].srtt, 8ms);  // the jitter really was there
}

// Keeps the client writing 16 KiB every 5 ms (its flight never drains by itself) for `d`;
// returns the bytes the server read.
std::uint64_t keep_busy(FlowPair& net, core::Duration d) {
  const auto chunk = pattern(16 * 1024);
  std::vector<wire::Byte> sink(1 << 20);
  std::uint64_t delivered = 0;
  const core::Time end = net.now() + d;
  while (net.now() < end) {
    net.client().write(chunk, net.now());
    net.settle(5ms);
    delivered += net.server().read(sink, net.now());
  }
  return delivered;
}

// A busy active path has no unloaded RTT samples of its own; the flow probes it (drains its
// flight, then pings) and still moves to the clearly better standby after the dwell.
TEST(FlowQuality, BusyActivePathIsProbedAndLeftForAClearlyBetterOne) {
  FlowPair net(core::FlowConfig{}, {{20ms, {}}, {2ms, {}}});
  ASSERT_EQ(net.client().active_path(), 1u);
  EXPECT_GT(keep_busy(net, 6s), 4u * 1024 * 1024);
  EXPECT_EQ(net.client().active_path(), 2u);
  EXPECT_EQ(net.client_migrations, std::vector<core::MigrateCause>{core::MigrateCause::quality});
}

// The active path's only unloaded sample is from before it got busy and its RTT fell to the
// standby's since: that old sample must not be weighed against the standby's many fresh ones.
TEST(FlowQuality, OneOldSampleOfABusyPathDoesNotMakeAStandbyLookBetter) {
  FlowPair net(core::FlowConfig{}, {{20ms, {}}, {2ms, {}}});
  net.set_poll_bytes(64 * 1024);
  keep_busy(net, 200ms);
  net.set_latency(1, 2ms);
  keep_busy(net, 15s);
  EXPECT_EQ(net.client().active_path(), 1u);
  EXPECT_EQ(net.client().stats(net.now()).migrations_quality, 0u);
}

}  // namespace
}  // namespace rendr::test
