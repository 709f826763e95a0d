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
