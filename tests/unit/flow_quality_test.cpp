// core::Flow over the in-memory harness: prime mode's quality switching and probes.
#include <gtest/gtest.h>

#include "flow_scenarios.hpp"

namespace rendr::test {
namespace {

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
