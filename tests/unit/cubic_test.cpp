// CUBIC (RFC 9438): multiplicative decrease by beta, the cubic curve around W_max (concave
// up to it, convex beyond), fast convergence, Reno-friendliness, undo, persistent congestion.
#include "core/recovery/cubic.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "congestion_sim.hpp"
#include "core/recovery/new_reno.hpp"

namespace rendr::core::recovery {
namespace {

using namespace std::chrono_literals;
using testing::RoundDriver;

const Time t0{std::chrono::seconds(1000)};
constexpr std::size_t kMss = 1200;

TEST(Cubic, SlowStartThenReductionByBeta) {
  Cubic cc{RecoveryConfig{}};
  RoundDriver d(cc, kMss, 100ms, t0);
  d.round();
  d.round();
  EXPECT_EQ(cc.congestion_window(), 40 * kMss);
  d.round(true);
  EXPECT_EQ(cc.congestion_window(), 28 * kMss);  // 40 x 0.7
  EXPECT_EQ(cc.slow_start_threshold(), 28 * kMss);
  EXPECT_EQ(cc.w_max(), 40.0 * kMss);
}

// After a reduction from W_max the window regains W_max after about K seconds, most of the
// way there by K/2 (concave), and grows ever faster beyond it (convex).
TEST(Cubic, WindowFollowsTheCubicCurveAroundWmax) {
  Cubic cc{RecoveryConfig{}};
  RoundDriver d(cc, kMss, 100ms, t0);
  for (int i = 0; i < 4; ++i)
    d.round();  // 160 packets
  ASSERT_EQ(d.window_packets(), 160.0);
  d.round(true);
  const double w_max = 160.0;
  ASSERT_NEAR(d.window_packets(), w_max * Cubic::kBeta, 1.0);
  const double k = std::cbrt(w_max * (1 - Cubic::kBeta) / Cubic::kC);  // ~4.93 s
  const int rounds_to_k = static_cast<int>(k / 0.1);
  d.round();  // the first round after the loss is still its recovery period
  for (int i = 0; i < rounds_to_k / 2; ++i)
    d.round();
  const double at_half_k = d.window_packets();
  EXPECT_GT(at_half_k, 0.9 * w_max);  // W_cubic(K/2) = W_max - C (K/2)^3 = 0.95 W_max
  EXPECT_LT(at_half_k, w_max);
  for (int i = rounds_to_k / 2; i < rounds_to_k; ++i)
    d.round();
  EXPECT_NEAR(d.window_packets(), w_max, 0.04 * w_max);
  // A plateau: the next second adds less than the first second after the loss did.
  const double at_k = d.window_packets();
  for (int i = 0; i < 10; ++i)
    d.round();
  EXPECT_LT(d.window_packets() - at_k, 0.05 * w_max);
  for (int i = 0; i < rounds_to_k; ++i)
    d.round();
  // W_cubic(2K) = W_max + C K^3 = 1.3 W_max.
  EXPECT_GT(d.window_packets(), 1.2 * w_max);
}

// RFC 9438 §5.8: seconds in which the application left the window unused do not count as
// time on the curve, so the window does not leap when the application sends again.
TEST(Cubic, TimeTheWindowWasUnusedDoesNotAdvanceTheCurve) {
  Cubic cc{RecoveryConfig{}};
  RoundDriver d(cc, kMss, 100ms, t0);
  for (int i = 0; i < 4; ++i)
    d.round();
  d.round(true);  // W_max 160, cwnd 112
  for (int i = 0; i < 6; ++i)
    d.round();
  const std::uint64_t before_idle = cc.congestion_window();
  // Ten seconds of one packet per round trip: far below the window.
  for (int i = 0; i < 100; ++i) {
    cc.on_packet_sent(kMss, d.now);
    d.now += 100ms;
    cc.on_packets_acked(std::vector<AckedPacket>{{d.next_pn++, kMss, d.now - 100ms}}, d.rtt, d.now);
  }
  EXPECT_EQ(cc.congestion_window(), before_idle);
  d.round();
  // One round of the curve where it left off (a few datagrams), not the 1.5x jump that 10 s
  // further along the curve would allow.
  EXPECT_LT(cc.congestion_window(), before_idle + 8 * kMss);
}

TEST(Cubic, FastConvergenceLowersWmaxWhenTheMaximumFalls) {
  Cubic cc{RecoveryConfig{}};
  RoundDriver d(cc, kMss, 100ms, t0);
  d.round();
  d.round();
  d.round(true);  // W_max = 40, cwnd 28
  d.round();
  d.round(true);  // a loss below the old maximum: W_max = cwnd (1 + beta) / 2
  const double cwnd_at_loss = 28.0 * kMss;
  EXPECT_NEAR(cc.w_max(), cwnd_at_loss * (1 + Cubic::kBeta) / 2, kMss);
  EXPECT_NEAR(static_cast<double>(cc.congestion_window()), cwnd_at_loss * Cubic::kBeta, kMss);
}

// With a short RTT the cubic curve is slow (it is set in seconds); the Reno-friendly estimate
// keeps CUBIC at least as fast as NewReno there.
TEST(Cubic, NeverSlowerThanRenoAtShortRtt) {
  Cubic cubic{RecoveryConfig{}};
  NewReno reno{RecoveryConfig{}};
  RoundDriver c(cubic, kMss, 1ms, t0);
  RoundDriver r(reno, kMss, 1ms, t0);
  for (RoundDriver* d : {&c, &r}) {
    for (int i = 0; i < 4; ++i)
      d->round();
    d->round(true);
  }
  for (int i = 0; i < 200; ++i) {
    c.round();
    r.round();
  }
  // Reno: 80 + ~199 packets; CUBIC starts higher (112) and adds 0.53+ per round at least.
  EXPECT_GE(c.window_packets(), 0.9 * r.window_packets());
  EXPECT_GT(c.window_packets(), 112.0 + 0.5 * 199);
}

TEST(Cubic, SpuriousEventRestoresWindowAndCurve) {
  Cubic cc{RecoveryConfig{}};
  RoundDriver d(cc, kMss, 100ms, t0);
  d.round();
  d.round();
  d.round(true);  // W_max 40
  d.round();
  const double w_max = cc.w_max();
  const std::uint64_t before = cc.congestion_window();
  d.round(true);
  ASSERT_NE(cc.w_max(), w_max);
  cc.on_spurious_congestion_event();
  EXPECT_EQ(cc.w_max(), w_max);
  EXPECT_GE(cc.congestion_window(), before);
}

TEST(Cubic, PersistentCongestionForgetsTheCurve) {
  Cubic cc{RecoveryConfig{}};
  RoundDriver d(cc, kMss, 100ms, t0);
  d.round();
  d.round(true);
  ASSERT_GT(cc.w_max(), 0.0);
  cc.on_persistent_congestion(d.now);
  EXPECT_EQ(cc.congestion_window(), 2 * kMss);
  EXPECT_EQ(cc.w_max(), 0.0);
}

TEST(Cubic, FactoryPicksTheConfiguredAlgorithm) {
  RecoveryConfig config;
  EXPECT_EQ(make_congestion_controller(config)->name(), "bbr");
  config.congestion = CongestionAlgorithm::cubic;
  EXPECT_EQ(make_congestion_controller(config)->name(), "cubic");
  config.congestion = CongestionAlgorithm::new_reno;
  EXPECT_EQ(make_congestion_controller(config)->name(), "newreno");
}

}  // namespace
}  // namespace rendr::core::recovery
