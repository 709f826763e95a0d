// HyStart++ (RFC 9406): the first slow start ends when the round trip grows, not at a loss.
#include "core/recovery/hystart.hpp"

#include <gtest/gtest.h>

#include "core/recovery/cubic.hpp"
#include "core/recovery/new_reno.hpp"

namespace rendr::core::recovery {
namespace {

using namespace std::chrono_literals;
using Phase = HyStart::Phase;

const Time t0{std::chrono::seconds(1000)};

// Rounds of ACKs: each acknowledges packets sent when the round began, `rtt` later.
struct Rounds {
  HyStart hystart;
  Time now = t0;

  Phase round(Duration rtt, int acks = 10) {
    const Time sent = now;
    now += rtt;
    Phase phase = Phase::slow_start;
    for (int i = 0; i < acks; ++i) {
      phase = hystart.on_ack(sent, rtt, now);
      now += 10us;
    }
    return phase;
  }
};

TEST(HyStart, ASteadyRoundTripStaysInSlowStart) {
  Rounds r;
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(r.round(50ms), Phase::slow_start);
}

TEST(HyStart, AGrowingRoundTripSlowsGrowthThenEndsSlowStartAfterFiveRounds) {
  Rounds r;
  EXPECT_EQ(r.round(40ms), Phase::slow_start);
  EXPECT_EQ(r.round(40ms), Phase::slow_start);
  // Each round against the one before: an eighth of 40 ms is 5 ms, so 44 ms is noise; an
  // eighth of 44 ms is 5.5 ms, so 50 ms is a queue.
  EXPECT_EQ(r.round(44ms), Phase::slow_start);
  EXPECT_EQ(r.round(50ms), Phase::conservative);
  for (int i = 0; i < HyStart::kCssRounds - 1; ++i)
    EXPECT_EQ(r.round(50ms), Phase::conservative);
  EXPECT_EQ(r.round(50ms), Phase::finished);
  EXPECT_EQ(r.round(30ms), Phase::finished);  // for good
}

TEST(HyStart, TheThresholdIsAtLeastFourMilliseconds) {
  Rounds r;
  r.round(1ms);
  EXPECT_EQ(r.round(4900us), Phase::slow_start);    // a rise of 3.9 ms over the last round
  EXPECT_EQ(r.round(8900us), Phase::conservative);  // 4 ms over it
}

TEST(HyStart, TooFewSamplesInARoundDecideNothing) {
  Rounds r;
  r.round(40ms);
  EXPECT_EQ(r.round(80ms, HyStart::kRttSamplesPerRound - 1), Phase::slow_start);
}

TEST(HyStart, ARoundTripThatFallsBackResumesSlowStart) {
  Rounds r;
  r.round(40ms);
  ASSERT_EQ(r.round(60ms), Phase::conservative);
  EXPECT_EQ(r.round(41ms), Phase::slow_start);
}

TEST(HyStart, StoppedByALossItDecidesNothingMore) {
  Rounds r;
  r.round(40ms);
  r.hystart.stop();
  EXPECT_EQ(r.round(60ms), Phase::slow_start);
  EXPECT_EQ(r.round(80ms), Phase::slow_start);
}

// The controllers: ACKs every two packets, the RTT grows by 8 ms a round from the fourth on (a
// queue building), and no packet is lost. The first slow start ends on the delay alone, the
// window grows a quarter as fast meanwhile, and congestion avoidance follows.
template <class Controller>
void leaves_slow_start_without_a_loss() {
  constexpr std::size_t kMss = 1200;
  Controller cc{RecoveryConfig{}};
  RttStats rtt{40ms};
  Time now = t0;
  Duration base = 40ms;
  std::uint64_t window_at_exit = 0;
  for (int round = 0; round < 12 && window_at_exit == 0; ++round) {
    const Duration this_rtt = base + (round >= 3 ? (round - 2) * 8ms : 0ms);
    const std::size_t n = cc.congestion_window() / kMss;
    const Time sent = now;
    for (std::size_t i = 0; i < n; ++i)
      cc.on_packet_sent(kMss, sent);
    now += this_rtt;
    for (std::size_t i = 0; i + 1 < n; i += 2) {
      rtt.update(this_rtt, Duration::zero());
      const AckedPacket acked[2] = {{0, kMss, sent}, {0, kMss, sent}};
      cc.on_packets_acked(acked, rtt, now);
      now += 100us;
    }
    if (cc.slow_start_threshold() != UINT64_MAX) window_at_exit = cc.congestion_window();
  }
  ASSERT_NE(window_at_exit, 0u) << "never left slow start";
  // The threshold is the window when slow start ended; avoidance grew it a little since.
  EXPECT_LE(cc.slow_start_threshold(), window_at_exit);
  EXPECT_GT(cc.slow_start_threshold(), 40 * kMss);
  // Slow start alone would have doubled from 10 packets each round to 1280 by the seventh.
  EXPECT_LT(window_at_exit, 400 * kMss);
  EXPECT_GT(window_at_exit, 40 * kMss);
}

TEST(HyStart, NewRenoLeavesSlowStartWhenTheRoundTripGrows) {
  leaves_slow_start_without_a_loss<NewReno>();
}

TEST(HyStart, CubicLeavesSlowStartWhenTheRoundTripGrows) {
  leaves_slow_start_without_a_loss<Cubic>();
}

}  // namespace
}  // namespace rendr::core::recovery
