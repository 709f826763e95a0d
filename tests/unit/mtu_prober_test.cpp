// Path-MTU probing (core/mtu_prober.*): binary search upward from 1200, losses, black holes
// and their detection.
#include "core/mtu_prober.hpp"

#include <gtest/gtest.h>

namespace rendr::core {
namespace {

const Time kStart{};

// Drives the prober against a path that passes datagrams up to `path_mtu`; returns the probes.
int search(MtuProber& p, std::size_t path_mtu, Time now) {
  int probes = 0;
  while (auto size = p.probe_due(now)) {
    EXPECT_LT(++probes, 100) << "the search must end";
    if (probes >= 100) break;
    p.on_probe_sent(*size, now);
    EXPECT_FALSE(p.probe_due(now).has_value()) << "one probe in flight at a time";
    if (*size <= path_mtu)
      p.on_probe_acked(*size, now);
    else
      p.on_probe_lost(*size, now);
  }
  return probes;
}

TEST(MtuProber, StartsAtTheSafeSizeAndProbesUpward) {
  MtuProber p;
  EXPECT_EQ(p.current(), 1200u);
  const auto first = p.probe_due(kStart);
  ASSERT_TRUE(first.has_value());
  EXPECT_GT(*first, 1200u);
  EXPECT_LE(*first, 1452u);
}

TEST(MtuProber, ReachesTheConfiguredMaximumOnAnOpenPath) {
  MtuProber p;
  search(p, 65535, kStart);  // loopback: everything passes, the cap holds
  EXPECT_GE(p.current(), 1452u - 20);
  EXPECT_LE(p.current(), 1452u);
  EXPECT_FALSE(p.probe_due(kStart + std::chrono::seconds(1)).has_value());
}

TEST(MtuProber, ConvergesBelowAPathLimitWithoutExceedingIt) {
  for (std::size_t path_mtu : {1200u, 1280u, 1400u, 1420u}) {
    MtuProber p;
    const int probes = search(p, path_mtu, kStart);
    EXPECT_LE(p.current(), path_mtu);
    EXPECT_GT(p.current() + 20, path_mtu) << "within the precision";
    EXPECT_LE(probes, 40) << path_mtu;
  }
}

TEST(MtuProber, ASingleLostProbeIsRetriedBeforeTheSizeIsGivenUp) {
  MtuProber p;
  const std::size_t size = *p.probe_due(kStart);
  p.on_probe_sent(size, kStart);
  p.on_probe_lost(size, kStart);  // random loss, not the MTU
  EXPECT_EQ(p.probe_due(kStart), size);
  p.on_probe_sent(size, kStart);
  p.on_probe_acked(size, kStart);
  EXPECT_EQ(p.current(), size);
}

TEST(MtuProber, StaleReportsChangeNothing) {
  MtuProber p;
  const std::size_t size = *p.probe_due(kStart);
  p.on_probe_sent(size, kStart);
  p.on_probe_lost(size + 7, kStart);
  EXPECT_TRUE(p.probe_in_flight());
  p.on_probe_acked(1100, kStart);  // below current: no effect
  EXPECT_EQ(p.current(), 1200u);
}

TEST(MtuProber, BlackHoleFallsBackAndSearchesAgain) {
  MtuProber p;
  search(p, 1500, kStart);
  ASSERT_GT(p.current(), 1400u);
  p.on_black_hole(kStart);
  EXPECT_EQ(p.current(), 1200u);
  search(p, 1300, kStart);
  EXPECT_LE(p.current(), 1300u);
  EXPECT_GT(p.current(), 1280u);
}

// Black-hole detection: only packets within the search's precision of the current size are
// full-size, and there is none at the base size.
TEST(MtuProber, FullSizeIsTheCurrentSizeWithinThePrecision) {
  MtuProber p;
  EXPECT_FALSE(p.full_size(1200));  // nothing above the base yet
  search(p, 1500, kStart);
  ASSERT_GT(p.current(), 1400u);
  EXPECT_TRUE(p.full_size(p.current()));
  EXPECT_TRUE(p.full_size(p.current() - 20));
  EXPECT_FALSE(p.full_size(p.current() - 21));
  EXPECT_FALSE(p.full_size(1200));
}

// Full-size packets lost, each time after an acknowledgement of only smaller packets (the
// path's MTU shrank below them): the third time is a black hole, and the search starts over.
TEST(MtuProber, FullSizeLossesWhileSmallerPacketsPassAreABlackHole) {
  MtuProber p;
  search(p, 1500, kStart);
  const std::size_t found = p.current();
  ASSERT_GT(found, 1400u);
  for (int i = 0; i < 2; ++i) {
    p.on_packets_acked(false);
    EXPECT_FALSE(p.on_full_size_lost(kStart));
    EXPECT_EQ(p.current(), found);
  }
  p.on_packets_acked(false);
  EXPECT_TRUE(p.on_full_size_lost(kStart));
  EXPECT_EQ(p.current(), 1200u);
  EXPECT_EQ(p.black_holes(), 1u);
  ASSERT_TRUE(p.probe_due(kStart).has_value());  // searched again at once
  search(p, 1300, kStart);
  EXPECT_LE(p.current(), 1300u);
  EXPECT_GT(p.current(), 1280u);
}

// Random loss: full-size packets are acknowledged between the lost ones, and each such
// acknowledgement clears the suspicion.
TEST(MtuProber, AFullSizeAcknowledgementClearsTheSuspicion) {
  MtuProber p;
  search(p, 1500, kStart);
  for (int i = 0; i < 10; ++i) {
    p.on_packets_acked(false);
    EXPECT_FALSE(p.on_full_size_lost(kStart));
    p.on_packets_acked(false);
    EXPECT_FALSE(p.on_full_size_lost(kStart));
    p.on_packets_acked(true);
  }
  EXPECT_EQ(p.black_holes(), 0u);
  EXPECT_GT(p.current(), 1400u);
}

// Losses reported with no acknowledgement of a smaller packet since the last one counted (loss
// timers, or a path that passes nothing at all: that is death, not an MTU) count once.
TEST(MtuProber, LossesWithoutASmallerPacketPassingInBetweenCountOnce) {
  MtuProber p;
  search(p, 1500, kStart);
  p.on_packets_acked(false);
  for (int i = 0; i < 10; ++i)
    EXPECT_FALSE(p.on_full_size_lost(kStart));
  EXPECT_GT(p.current(), 1400u);
  p.on_packets_acked(false);
  EXPECT_FALSE(p.on_full_size_lost(kStart));  // the second
  p.on_packets_acked(false);
  EXPECT_TRUE(p.on_full_size_lost(kStart));  // the third
}

TEST(MtuProber, NoBlackHoleAtTheBaseSize) {
  MtuProber p;
  for (int i = 0; i < 10; ++i) {
    p.on_packets_acked(false);
    EXPECT_FALSE(p.on_full_size_lost(kStart));
  }
  EXPECT_EQ(p.black_holes(), 0u);
}

TEST(MtuProber, ResearchesAfterTheInterval) {
  MtuProber p;
  search(p, 1300, kStart);
  const std::size_t found = p.current();
  EXPECT_FALSE(p.probe_due(kStart + std::chrono::minutes(9)).has_value());
  // The route changed: the path now passes more.
  const Time later = kStart + std::chrono::minutes(11);
  ASSERT_TRUE(p.probe_due(later).has_value());
  search(p, 1500, later);
  EXPECT_GT(p.current(), found);
  EXPECT_GE(p.current(), 1452u - 20);
}

}  // namespace
}  // namespace rendr::core
