// Unit tests of core::Flow over the in-memory harness (virtual time, no sockets).
#include <gtest/gtest.h>

#include <numeric>

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
  std::vector<wire::OutFrame> out;
  ASSERT_TRUE(client->poll_transmit(id, t0, 1 << 20, out));
  std::vector<wire::Byte> bytes(out[0].header_bytes().begin(), out[0].header_bytes().end());
  wire::Frame frame;
  ASSERT_EQ(wire::decode(bytes, frame).error, wire::DecodeError::none);
  wire::Status status{};
  auto server = core::Flow::make_server(config, std::get<wire::Open>(frame.body), id, t0, status);
  ASSERT_NE(server, nullptr);
  server->on_timer(t0);
  out.clear();
  ASSERT_TRUE(server->poll_transmit(id, t0, 1 << 20, out));  // OPEN_ACK and a PING
  // A 150 ms round trip: nothing back yet, and the path must still be up.
  server->on_timer(t0 + 150ms);
  EXPECT_EQ(server->path_state(id), core::PathState::up);
  // Silence for longer than a handshake is allowed still kills it.
  server->on_timer(t0 + config.handshake_timeout + 1ms);
  EXPECT_NE(server->path_state(id), core::PathState::up);
}

TEST(Flow, AbortReachesPeer) {
  FlowPair net;
  net.client().abort(net.now());
  net.settle(10ms);
  EXPECT_EQ(net.client().error(), core::FlowError::aborted);
  EXPECT_EQ(net.server().error(), core::FlowError::peer_aborted);
}

}  // namespace
}  // namespace rendr::test
