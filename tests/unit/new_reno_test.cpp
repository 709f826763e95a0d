// NewReno: slow start, congestion avoidance, one reduction per recovery period, persistent
// congestion, spurious-event undo, pacing rate, application-limited rounds.
#include "core/recovery/new_reno.hpp"

#include <gtest/gtest.h>

#include "congestion_sim.hpp"

namespace rendr::core::recovery {
namespace {

using namespace std::chrono_literals;
using testing::RoundDriver;

const Time t0{std::chrono::seconds(1000)};
constexpr std::size_t kMss = 1200;

TEST(NewReno, SlowStartDoublesTheWindowEveryRound) {
  NewReno cc{RecoveryConfig{}};
  EXPECT_EQ(cc.congestion_window(), 10 * kMss);
  RoundDriver d(cc, kMss, 100ms, t0);
  d.round();
  EXPECT_EQ(cc.congestion_window(), 20 * kMss);
  d.round();
  EXPECT_EQ(cc.congestion_window(), 40 * kMss);
  EXPECT_EQ(cc.bytes_in_flight(), 0u);
}

TEST(NewReno, LossHalvesTheWindowThenItGrowsOneDatagramPerRound) {
  NewReno cc{RecoveryConfig{}};
  RoundDriver d(cc, kMss, 100ms, t0);
  d.round();      // 20 packets
  d.round();      // 40
  d.round(true);  // 40 sent, one lost: 40 -> 20
  EXPECT_EQ(cc.congestion_window(), 20 * kMss);
  EXPECT_EQ(cc.slow_start_threshold(), 20 * kMss);
  d.round();  // packets sent at the loss time: still the recovery period, no growth
  EXPECT_EQ(cc.congestion_window(), 20 * kMss);
  for (int i = 1; i <= 5; ++i) {
    d.round();
    EXPECT_EQ(cc.congestion_window(), (20 + i) * kMss) << i;
  }
}

TEST(NewReno, OneReductionPerRecoveryPeriod) {
  NewReno cc{RecoveryConfig{}};
  for (int i = 0; i < 20; ++i)
    cc.on_packet_sent(kMss, t0);
  cc.on_packets_lost(std::vector<LostPacket>{{0, kMss, t0}}, t0 + 100ms);
  EXPECT_EQ(cc.congestion_window(), 5 * kMss);
  EXPECT_TRUE(cc.in_recovery(t0));
  // More losses of packets sent before the reduction: no second reduction.
  cc.on_packets_lost(std::vector<LostPacket>{{1, kMss, t0}, {2, kMss, t0}}, t0 + 110ms);
  EXPECT_EQ(cc.congestion_window(), 5 * kMss);
  EXPECT_EQ(cc.bytes_in_flight(), 17 * kMss);
  // A packet sent after it is lost: a new period.
  cc.on_packet_sent(kMss, t0 + 120ms);
  cc.on_packets_lost(std::vector<LostPacket>{{20, kMss, t0 + 120ms}}, t0 + 220ms);
  EXPECT_EQ(cc.congestion_window(), 2 * kMss + kMss / 2);
}

TEST(NewReno, WindowNeverFallsBelowTheMinimum) {
  NewReno cc{RecoveryConfig{}};
  Time t = t0;
  for (int i = 0; i < 10; ++i) {
    cc.on_packet_sent(kMss, t);
    t += 1ms;
    cc.on_packets_lost(std::vector<LostPacket>{{static_cast<PacketNumber>(i), kMss, t}}, t);
  }
  EXPECT_EQ(cc.congestion_window(), 2 * kMss);
}

TEST(NewReno, PersistentCongestionCollapsesToTheMinimum) {
  NewReno cc{RecoveryConfig{}};
  RoundDriver d(cc, kMss, 100ms, t0);
  d.round();
  d.round();
  cc.on_packet_sent(kMss, d.now);
  cc.on_packets_lost(std::vector<LostPacket>{{1000, kMss, d.now}}, d.now + 1s);
  cc.on_persistent_congestion(d.now + 1s);
  EXPECT_EQ(cc.congestion_window(), 2 * kMss);
  // Nothing to undo after a collapse.
  cc.on_spurious_congestion_event();
  EXPECT_EQ(cc.congestion_window(), 2 * kMss);
}

TEST(NewReno, SpuriousEventRestoresTheWindowAndThreshold) {
  NewReno cc{RecoveryConfig{}};
  RoundDriver d(cc, kMss, 100ms, t0);
  d.round();
  const std::uint64_t before = cc.congestion_window();
  d.round(true);
  ASSERT_LT(cc.congestion_window(), before * 2);
  cc.on_spurious_congestion_event();
  EXPECT_EQ(cc.congestion_window(), before);
  EXPECT_EQ(cc.slow_start_threshold(), UINT64_MAX);
  EXPECT_FALSE(cc.in_recovery(d.now));
  d.round();  // back in slow start
  EXPECT_EQ(cc.congestion_window(), 2 * before);
}

TEST(NewReno, NoGrowthWhileTheApplicationLeavesTheWindowUnused) {
  NewReno cc{RecoveryConfig{}};
  RttStats rtt(100ms);
  Time t = t0;
  for (int i = 0; i < 50; ++i) {
    cc.on_packet_sent(kMss, t);  // one packet per round: a tenth of the window
    t += 100ms;
    cc.on_packets_acked(std::vector<AckedPacket>{{static_cast<PacketNumber>(i), kMss, t - 100ms}},
                        rtt, t);
  }
  EXPECT_EQ(cc.congestion_window(), 10 * kMss);
}

TEST(NewReno, PacingRateIsAMultipleOfWindowOverRtt) {
  NewReno cc{RecoveryConfig{}};
  RttStats rtt(100ms);
  rtt.update(100ms, 0ms);
  // Slow start: 2 x 12000 B / 0.1 s.
  EXPECT_EQ(cc.pacing_rate(rtt), 240000u);
  cc.on_packet_sent(kMss, t0);
  cc.on_packets_lost(std::vector<LostPacket>{{0, kMss, t0}}, t0 + 1ms);
  // Avoidance: 1.25 x 6000 B / 0.1 s.
  EXPECT_EQ(cc.pacing_rate(rtt), 75000u);
}

TEST(NewReno, DatagramSizeChangeKeepsTheWindowInDatagrams) {
  NewReno cc{RecoveryConfig{}};
  cc.set_max_datagram_size(1400);
  EXPECT_EQ(cc.congestion_window(), 10 * 1400u);
}

}  // namespace
}  // namespace rendr::core::recovery
