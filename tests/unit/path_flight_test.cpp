// PathFlight: a path's unacknowledged ranges and its delivery rate.
#include <gtest/gtest.h>

#include "core/path_flight.hpp"

namespace rendr::core {
namespace {

using namespace std::chrono_literals;

const Time t0{std::chrono::seconds(1000)};

TEST(PathFlight, TracksBytesInFlightUntilTheCumulativeAckPassesThem) {
  PathFlight f;
  f.on_sent(0, 1000, t0);
  f.on_sent(1000, 2000, t0);  // contiguous, same pull: one range
  f.on_sent(5000, 6000, t0);
  EXPECT_EQ(f.bytes(), 3000u);
  f.on_acked(1500, t0 + 10ms);
  EXPECT_EQ(f.bytes(), 1500u);
  f.on_acked(6000, t0 + 20ms);
  EXPECT_EQ(f.bytes(), 0u);
}

TEST(PathFlight, DeliveryRateIsBytesDeliveredOverTheRangesInterval) {
  PathFlight f;
  EXPECT_EQ(f.delivery_rate(), 0.0);
  f.on_sent(0, 100'000, t0);
  f.on_acked(100'000, t0 + 100ms);
  EXPECT_NEAR(f.delivery_rate(), 1'000'000.0, 1.0);  // 100 kB in 100 ms
}

// An application writing 16 KB every millisecond, and one ACK for the four writes 0.1 ms after
// the last: the path delivered 64 KB in 3.1 ms, not 64 KB in the last write's 0.1 ms (which
// made a loopback path look ~30x faster than it was asked to go, and bond then starved a new
// path, estimated at the assumed rate, for good: ModesTest.BondSplitsByWeight...).
TEST(PathFlight, OneAckForRangesSentApartIsNotABurstOfDelivery) {
  PathFlight f;
  for (int i = 0; i < 4; ++i)
    f.on_sent(i * 16'000, (i + 1) * 16'000, t0 + i * 1ms);
  f.on_acked(64'000, t0 + 3100us);
  EXPECT_NEAR(f.delivery_rate(), 64'000 / 3.1e-3, 1.0);
}

// Bulk sending: each range's sample counts from the ACK before it went out, so it is the rate
// at which ACKs covered bytes, whatever the batching.
TEST(PathFlight, BackToBackRangesAreMeasuredFromThePreviousAck) {
  PathFlight f;
  f.on_sent(0, 50'000, t0);
  f.on_acked(50'000, t0 + 10ms);  // 5 MB/s
  f.on_sent(50'000, 100'000, t0 + 10ms);
  f.on_sent(100'000, 150'000, t0 + 15ms);
  f.on_acked(150'000, t0 + 20ms);  // 100 kB since the ACK at 10 ms: 10 MB/s
  EXPECT_NEAR(f.delivery_rate(), 10'000'000.0, 1.0);
}

TEST(PathFlight, ADeadPathHandsItsUnacknowledgedRangesToTheRetransmitQueue) {
  PathFlight f;
  RetransmitQueue rtx;
  f.on_sent(0, 1000, t0);
  f.on_sent(3000, 4000, t0 + 1ms);
  f.requeue_unacked(500, rtx);
  EXPECT_EQ(f.bytes(), 0u);
  auto r = rtx.next(500);
  EXPECT_EQ(r->from, 500u);
  EXPECT_EQ(r->to, 1000u);
  rtx.consumed(1000);
  r = rtx.next(500);
  EXPECT_EQ(r->from, 3000u);
  EXPECT_EQ(r->to, 4000u);
}

}  // namespace
}  // namespace rendr::core
