// core::Flow over the in-memory harness: race and bond end to end, and mode switches (the
// schedulers alone are tested in schedulers_test.cpp).
#include <gtest/gtest.h>

#include "core/bond_scheduler.hpp"
#include "flow_scenarios.hpp"

namespace rendr::test {
namespace {

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

// A carrier that wrote everything it pulled pulls again only when wants_pull says so: in bond
// mode once more, to find nothing (which tells the scheduler its carrier is idle), then not.
TEST(FlowModes, AnEmptyPullIsWantedOnlyWhereItInformsTheScheduler) {
  for (core::Mode mode : {core::Mode::prime, core::Mode::bond}) {
    SCOPED_TRACE(static_cast<int>(mode));
    FlowPair net(with_mode(mode), {{1ms, {}}, {1ms, {}}});
    const core::PathId active = net.client().active_path();
    ASSERT_EQ(net.client().write(pattern(1000), net.now()), 1000u);
    wire::TransmitBatch batch(64 * 1024);
    ASSERT_TRUE(net.client().poll_transmit(active, net.now(), batch));
    EXPECT_FALSE(net.client().wants_transmit(active));
    if (mode == core::Mode::bond) {
      EXPECT_TRUE(net.client().wants_pull(active));
      batch.reset(64 * 1024);
      EXPECT_FALSE(net.client().poll_transmit(active, net.now(), batch));
    }
    EXPECT_FALSE(net.client().wants_pull(active));
  }
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

}  // namespace
}  // namespace rendr::test
