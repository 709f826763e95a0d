// ReceivedPackets: ACK ranges under reordering, duplicates and gaps; the range cap; when an
// ACK is due.
#include "core/recovery/received_packets.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace rendr::core::recovery {
namespace {

using namespace std::chrono_literals;
using Receipt = ReceivedPackets::Receipt;
using Ranges = std::vector<wire::PacketRange>;

const Time t0{std::chrono::seconds(1000)};

Ranges ranges_of(const ReceivedPackets& r, Time now = t0) {
  return r.make_ack(now).ranges;
}

TEST(ReceivedPackets, InOrderPacketsMakeOneRange) {
  ReceivedPackets r;
  for (PacketNumber pn = 0; pn < 100; ++pn)
    EXPECT_EQ(r.on_received(pn, true, t0), Receipt::fresh);
  EXPECT_EQ(ranges_of(r), (Ranges{{0, 99}}));
  EXPECT_EQ(r.largest(), 99u);
}

TEST(ReceivedPackets, GapsAndReorderingMergeIntoDisjointRangesHighestFirst) {
  ReceivedPackets r;
  for (PacketNumber pn : {0, 1, 2, 5, 6, 9, 4, 8})
    EXPECT_EQ(r.on_received(pn, true, t0), Receipt::fresh) << pn;
  EXPECT_EQ(ranges_of(r), (Ranges{{8, 9}, {4, 6}, {0, 2}}));
  // 3 fills the gap between two ranges: they merge into one.
  r.on_received(3, true, t0);
  EXPECT_EQ(ranges_of(r), (Ranges{{8, 9}, {0, 6}}));
  r.on_received(7, true, t0);
  EXPECT_EQ(ranges_of(r), (Ranges{{0, 9}}));
}

TEST(ReceivedPackets, DuplicatesAreReportedAndChangeNothing) {
  ReceivedPackets r;
  for (PacketNumber pn : {0, 1, 2, 7})
    r.on_received(pn, true, t0);
  const Ranges before = ranges_of(r);
  for (PacketNumber pn : {0, 2, 7})
    EXPECT_EQ(r.on_received(pn, true, t0), Receipt::duplicate) << pn;
  EXPECT_EQ(ranges_of(r), before);
}

TEST(ReceivedPackets, RangeCapForgetsTheLowestAndTreatsBelowAsDuplicate) {
  RecoveryConfig config;
  config.max_ack_ranges = 4;
  ReceivedPackets r(config);
  // Every other packet: each one is a range of its own.
  for (PacketNumber pn = 0; pn < 20; pn += 2)
    r.on_received(pn, true, t0);
  EXPECT_EQ(r.range_count(), 4u);
  EXPECT_EQ(ranges_of(r), (Ranges{{18, 18}, {16, 16}, {14, 14}, {12, 12}}));
  // Memory stays bounded however many gaps arrive.
  for (PacketNumber pn = 100; pn < 10000; pn += 2)
    r.on_received(pn, true, t0);
  EXPECT_EQ(r.range_count(), 4u);
  // A packet below what is remembered is old: a duplicate, whether it arrived before or not.
  EXPECT_EQ(r.on_received(1, true, t0), Receipt::duplicate);
  EXPECT_EQ(r.on_received(9989, true, t0), Receipt::duplicate);
  EXPECT_EQ(r.floor(), 9991u);  // the last range forgotten was {9990}
  // A gap inside what is kept is still filled normally.
  EXPECT_EQ(r.on_received(9997, true, t0), Receipt::fresh);
}

// A hostile peer numbering its packets to leave a gap after each (or reordering them wildly)
// cannot make the receiver remember more than max_ack_ranges ranges, whatever it sends.
TEST(ReceivedPackets, EveryOtherPacketNumberKeepsTheRangesBounded) {
  RecoveryConfig config;
  ReceivedPackets r(config);
  for (PacketNumber pn = 0; pn < 200'000; pn += 2)
    r.on_received(pn, true, t0);
  for (PacketNumber pn = 1'000'001; pn > 900'000; pn -= 3)  // descending: always below the top
    r.on_received(pn, true, t0);
  EXPECT_EQ(r.range_count(), config.max_ack_ranges);
  const wire::AckRanges ack = r.make_ack(t0);
  EXPECT_EQ(ack.ranges.size(), config.max_ack_ranges);
  EXPECT_EQ(ack.largest(), 1'000'001u);
}

TEST(ReceivedPackets, ManyMoreRangesThanEightAreKept) {
  ReceivedPackets r(RecoveryConfig{});
  for (PacketNumber pn = 0; pn < 100; pn += 2)
    r.on_received(pn, true, t0);
  EXPECT_EQ(r.range_count(), 50u);
  EXPECT_EQ(r.make_ack(t0).ranges.size(), 50u);
}

TEST(ReceivedPackets, FrameRangesCanBeCappedBelowWhatIsKept) {
  ReceivedPackets r;
  for (PacketNumber pn = 0; pn < 20; pn += 2)
    r.on_received(pn, true, t0);
  EXPECT_EQ(r.make_ack(t0, 3).ranges, (Ranges{{18, 18}, {16, 16}, {14, 14}}));
}

TEST(ReceivedPackets, AckDueAfterTwoElicitingPacketsOrAfterMaxAckDelay) {
  ReceivedPackets r;
  r.on_received(0, true, t0);
  EXPECT_TRUE(r.ack_pending());
  EXPECT_FALSE(r.ack_due(t0));
  EXPECT_EQ(r.ack_deadline(), t0 + 25ms);
  EXPECT_FALSE(r.ack_due(t0 + 24ms));
  EXPECT_TRUE(r.ack_due(t0 + 25ms));
  r.on_received(1, true, t0 + 1ms);
  EXPECT_TRUE(r.ack_due(t0 + 1ms));  // the second ack-eliciting packet: at once
  r.on_ack_sent();
  EXPECT_FALSE(r.ack_pending());
  EXPECT_FALSE(r.ack_due(t0 + 1s));
  EXPECT_EQ(r.ack_deadline(), std::nullopt);
}

TEST(ReceivedPackets, AckOnlyPacketsAreAcknowledgedButNeverCauseAnAck) {
  ReceivedPackets r;
  for (PacketNumber pn = 0; pn < 10; ++pn)
    r.on_received(pn, false, t0);
  EXPECT_TRUE(r.ack_pending());  // rides along with the next packet
  EXPECT_FALSE(r.ack_due(t0 + 1s));
  EXPECT_EQ(r.ack_deadline(), std::nullopt);
  EXPECT_EQ(ranges_of(r), (Ranges{{0, 9}}));
  // Even out of order.
  r.on_received(15, false, t0);
  EXPECT_FALSE(r.ack_due(t0));
}

TEST(ReceivedPackets, ReorderingOrAGapMakesTheAckImmediate) {
  {
    ReceivedPackets r;
    r.on_received(0, true, t0);
    r.on_ack_sent();
    r.on_received(2, true, t0);  // 1 is missing
    EXPECT_TRUE(r.ack_due(t0));
  }
  {
    ReceivedPackets r;
    r.on_received(0, true, t0);
    r.on_received(3, true, t0);
    r.on_ack_sent();
    r.on_received(1, true, t0);  // below the largest: reordered
    EXPECT_TRUE(r.ack_due(t0));
  }
  {
    ReceivedPackets r;
    r.on_received(0, true, t0);
    r.on_ack_sent();
    r.on_received(1, true, t0);  // in order: waits
    EXPECT_FALSE(r.ack_due(t0));
  }
}

TEST(ReceivedPackets, AckDelayIsTheTimeSinceTheLargestArrived) {
  ReceivedPackets r;
  r.on_received(5, true, t0);
  r.on_received(3, true, t0 + 4ms);  // not the largest: the delay still counts from 5
  EXPECT_EQ(r.make_ack(t0 + 10ms).ack_delay_us, 10000u);
  r.on_received(6, true, t0 + 10ms);
  EXPECT_EQ(r.make_ack(t0 + 12ms).ack_delay_us, 2000u);
}

TEST(ReceivedPackets, AcknowledgedAckLetsLowerRangesGo) {
  ReceivedPackets r;
  for (PacketNumber pn : {0, 1, 3, 4, 6, 7, 8})
    r.on_received(pn, true, t0);
  ASSERT_EQ(r.range_count(), 3u);
  // Our ACK with largest 4 reached the peer: ranges up to 4 need not be repeated.
  r.on_ack_acknowledged(4);
  EXPECT_EQ(ranges_of(r), (Ranges{{6, 8}}));
  EXPECT_EQ(r.on_received(2, true, t0), Receipt::duplicate);
  EXPECT_EQ(r.on_received(5, true, t0), Receipt::fresh);
  // The top range is kept whole even when the acknowledged ACK covered all of it.
  r.on_ack_acknowledged(8);
  EXPECT_EQ(ranges_of(r), (Ranges{{5, 8}}));
  EXPECT_EQ(r.largest(), 8u);
}

}  // namespace
}  // namespace rendr::core::recovery
