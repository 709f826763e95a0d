// BBR (core/recovery/bbr.hpp) and its inputs (delivery_rate.hpp, windowed_max_filter.hpp),
// driven with injected time: through a DatagramTransport over a simulated bottleneck
// (bottleneck_sim.hpp), as a udpflow path's sender runs it.
#include "core/recovery/bbr.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <limits>

#include "bottleneck_sim.hpp"
#include "core/recovery/delivery_rate.hpp"
#include "core/recovery/windowed_max_filter.hpp"

namespace rendr::core::recovery {
namespace {

using namespace std::chrono_literals;
using testing::BottleneckSim;

const Time t0{std::chrono::seconds(1000)};
constexpr double kRate = 10e6;  // the bottleneck: 80 Mbit/s, 20 ms RTT, a BDP of 200 kB

const Bbr& bbr_of(const BottleneckSim& sim) {
  return dynamic_cast<const Bbr&>(sim.controller());
}

TEST(WindowedMaxFilter, KeepsTheMaximumOfTheWindowThenForgetsIt) {
  WindowedMaxFilter f(10);
  f.update(100, 0);
  f.update(50, 3);
  f.update(70, 6);
  EXPECT_EQ(f.best(), 100u);
  f.update(40, 11);  // 100 is older than the window: the best of what remains
  EXPECT_EQ(f.best(), 70u);
  f.update(30, 30);  // everything expired
  EXPECT_EQ(f.best(), 30u);
}

// Packets sent every millisecond and acknowledged 20 ms later: each ACK's sample is the rate
// they were sent at (from the second flight on); those sent while the sender had nothing more are
// marked app-limited.
TEST(DeliveryRateSampler, SamplesTheRateThePathDeliveredAt) {
  DeliveryRateSampler s;
  struct Sent {
    Time at;
    DeliverySnapshot snapshot;
  };
  std::deque<Sent> sent;
  std::uint64_t in_flight = 0;
  RateSample last;
  for (int ms = 0; ms < 100; ++ms) {
    const Time now = t0 + std::chrono::milliseconds(ms);
    if (ms == 60) s.on_app_limited(in_flight);
    sent.push_back({now, s.on_packet_sent(now, in_flight)});
    in_flight += 1000;
    if (ms >= 20) {
      s.on_packet_acked(1000, sent.front().at, sent.front().snapshot, now);
      sent.pop_front();
      in_flight -= 1000;
      last = s.take_sample(20ms);
      ASSERT_TRUE(last.valid);
      // The first flight's samples span its first round trip as well (nothing was delivered
      // before it); from the second flight on they show the sending rate.
      if (ms > 40) {
        EXPECT_NEAR(static_cast<double>(last.rate()), 1e6, 0.06e6) << ms;
      }
      // Packets sent from 60 ms on are acknowledged from 80 ms on.
      EXPECT_EQ(last.app_limited, ms >= 80) << ms;
    }
  }
}

// Startup doubles the rate each round until it stops growing, then Drain and ProbeBW: the
// estimate is the bottleneck's rate, and the path carries about that.
TEST(Bbr, StartupFindsTheBottleneckRate) {
  BottleneckSim sim(CongestionAlgorithm::bbr, {.rate = kRate}, t0);
  sim.run(2s);
  const Bbr& bbr = bbr_of(sim);
  EXPECT_TRUE(bbr.full_bandwidth_reached());
  EXPECT_EQ(bbr.state(), Bbr::State::probe_bw);
  EXPECT_NEAR(static_cast<double>(bbr.bandwidth_estimate()), kRate, 0.1 * kRate);
  EXPECT_NEAR(std::chrono::duration<double>(bbr.min_rtt()).count(), 0.020, 0.002);
  EXPECT_GT(sim.goodput(2s), 0.9 * kRate);
  // The window is about twice the BDP (plus an allowance), not the queue's worth more.
  EXPECT_LT(bbr.congestion_window(), 2.5 * kRate * 0.020);
}

// 5 % of the packets vanish at random (not for want of room in any queue): the estimate and
// the pacing rate stay at the bottleneck's rate, where CUBIC's window collapses.
TEST(Bbr, RandomLossDoesNotCollapseThePacingRate) {
  const BottleneckSim::Link lossy{.rate = kRate, .loss = 0.05};
  BottleneckSim bbr_sim(CongestionAlgorithm::bbr, lossy, t0);
  bbr_sim.run(2s);
  const double bbr_goodput = bbr_sim.goodput(4s);
  const Bbr& bbr = bbr_of(bbr_sim);
  EXPECT_GT(bbr_sim.sender().stats().packets_lost, 1000u);
  EXPECT_GT(static_cast<double>(bbr.bandwidth_estimate()), 0.85 * kRate);
  EXPECT_GT(static_cast<double>(bbr_sim.sender().stats().pacing_rate), 0.7 * kRate);
  EXPECT_GT(bbr_goodput, 0.75 * kRate);

  BottleneckSim cubic_sim(CongestionAlgorithm::cubic, lossy, t0);
  cubic_sim.run(2s);
  EXPECT_GT(bbr_goodput, 3 * cubic_sim.goodput(4s));
}

// The bottleneck's rate falls to a quarter: within a few bandwidth windows the estimate
// follows it down and the queue the old rate would build stays bounded by the window.
TEST(Bbr, ARateDropMakesItBackOff) {
  BottleneckSim sim(CongestionAlgorithm::bbr, {.rate = kRate}, t0);
  sim.run(3s);
  sim.set_link({.rate = kRate / 4});
  sim.run(2s);
  const Bbr& bbr = bbr_of(sim);
  EXPECT_LT(static_cast<double>(bbr.bandwidth_estimate()), 0.35 * kRate);
  EXPECT_LT(static_cast<double>(sim.sender().stats().pacing_rate), 0.45 * kRate);
  EXPECT_LT(sim.queued_bytes(), 0.5 * kRate * 0.020);
}

// Another flow's standing queue adds 80 ms to the round trip: BBR does not fill the queue to
// match; what it keeps in flight stays bounded by its window (twice the BDP it measured), so
// its rate falls rather than the queue growing further.
TEST(Bbr, PersistentQueueGrowthMakesItBackOff) {
  BottleneckSim sim(CongestionAlgorithm::bbr, {.rate = kRate}, t0);
  sim.run(3s);
  const std::uint64_t window_before = bbr_of(sim).congestion_window();
  sim.set_link({.rate = kRate, .one_way = 50ms});
  const double goodput = sim.goodput(3s);
  EXPECT_LE(bbr_of(sim).congestion_window(), window_before);
  EXPECT_LT(goodput, 0.6 * kRate);
  EXPECT_LT(static_cast<double>(bbr_of(sim).bandwidth_estimate()), 0.7 * kRate);
}

// Ten seconds without a lower RTT sample: ProbeRTT drains to four packets for 200 ms, then
// the flow returns to ProbeBW with its window.
TEST(Bbr, ProbeRttDrainsTheWindowEveryTenSeconds) {
  BottleneckSim sim(CongestionAlgorithm::bbr, {.rate = kRate}, t0);
  bool probed = false;
  std::uint64_t window_in_probe = std::numeric_limits<std::uint64_t>::max();
  sim.on_tick = [&](BottleneckSim& s) {
    const Bbr& bbr = bbr_of(s);
    if (bbr.state() != Bbr::State::probe_rtt) return;
    probed = true;
    window_in_probe = std::min(window_in_probe, bbr.congestion_window());
  };
  sim.run(12s);
  EXPECT_TRUE(probed);
  EXPECT_EQ(window_in_probe, Bbr::kMinWindowPackets * BottleneckSim::kPacket);
  EXPECT_EQ(bbr_of(sim).state(), Bbr::State::probe_bw);
  EXPECT_GT(sim.goodput(1s), 0.8 * kRate);
}

// The application offers a fifth of the path's rate for many bandwidth windows: its samples
// are app-limited and do not lower the estimate of what the path can carry.
TEST(Bbr, AppLimitedSamplesDoNotLowerTheEstimate) {
  BottleneckSim sim(CongestionAlgorithm::bbr, {.rate = kRate}, t0);
  sim.run(2s);
  ASSERT_GT(static_cast<double>(bbr_of(sim).bandwidth_estimate()), 0.9 * kRate);
  const double offered = sim.goodput(3s, kRate / 5);
  EXPECT_NEAR(offered, kRate / 5, 0.05 * kRate);
  EXPECT_GT(static_cast<double>(bbr_of(sim).bandwidth_estimate()), 0.9 * kRate);
}

// A tail-drop queue that overflows (the bottleneck's buffer is a tenth of the BDP): losses
// come in bursts, and the window's packet conservation and BDP bound keep them a small share.
TEST(Bbr, AShallowBufferKeepsLossesFew) {
  BottleneckSim sim(CongestionAlgorithm::bbr, {.rate = kRate, .queue_limit = 20'000}, t0);
  sim.run(2s);
  const std::uint64_t sent_before = sim.sender().stats().packets_sent;
  const std::uint64_t dropped_before = sim.packets_dropped();
  EXPECT_GT(sim.goodput(4s), 0.8 * kRate);
  const double drop_share = static_cast<double>(sim.packets_dropped() - dropped_before) /
                            static_cast<double>(sim.sender().stats().packets_sent - sent_before);
  EXPECT_LT(drop_share, 0.05);
}

// The first delivery sample may come from a handshake's few packets (app-limited, a few kB/s):
// Startup must not pace at that rate, or a path that could carry megabytes a millisecond sends
// one packet per several of them until the estimate crawls up.
TEST(Bbr, StartupNeverPacesSlowerThanItStarted) {
  Bbr bbr{RecoveryConfig{}};
  RttStats rtt{333ms};
  rtt.update(1ms, 0ms);
  const std::uint64_t initial = bbr.pacing_rate(rtt);  // 2.77 x 10 packets per ms
  EXPECT_GT(initial, 30'000'000u);
  bbr.on_packet_sent(1200, t0);
  RateSample sparse;
  sparse.valid = true;
  sparse.delivered = 100;  // 10 kB/s
  sparse.interval = 10ms;
  sparse.app_limited = true;
  sparse.newly_acked = 1200;
  bbr.on_rate_sample(sparse);
  const AckedPacket acked{.bytes = 1200, .sent_at = t0};
  bbr.on_packets_acked(std::span(&acked, 1), rtt, t0 + 1ms);
  ASSERT_GT(bbr.bandwidth_estimate(), 0u);
  ASSERT_LT(bbr.bandwidth_estimate(), 100'000u);
  EXPECT_GE(bbr.pacing_rate(rtt), initial);
}

// Before any estimate the window is the initial one, counted in datagrams: a path-MTU change
// (probed before data flows) scales it; once data is acknowledged, the model's window stays.
TEST(Bbr, TheInitialWindowFollowsTheDatagramSize) {
  Bbr bbr{RecoveryConfig{}};
  EXPECT_EQ(bbr.congestion_window(), 10 * 1200u);
  bbr.set_max_datagram_size(1452);
  EXPECT_EQ(bbr.congestion_window(), 10 * 1452u);
  bbr.on_packet_sent(1452, t0);
  const AckedPacket acked{.bytes = 1452, .sent_at = t0};
  bbr.on_packets_acked(std::span(&acked, 1), RttStats{20ms}, t0 + 20ms);
  const std::uint64_t window = bbr.congestion_window();
  bbr.set_max_datagram_size(1200);
  EXPECT_EQ(bbr.congestion_window(), window);
}

}  // namespace
}  // namespace rendr::core::recovery
