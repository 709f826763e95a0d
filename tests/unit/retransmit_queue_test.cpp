// RetransmitQueue: ranges to send again, taken front to back, never below the acked offset.
#include <gtest/gtest.h>

#include "core/retransmit_queue.hpp"

namespace rendr::core {
namespace {

TEST(RetransmitQueue, RangesAreTakenInOrderAndClippedToTheAcknowledgedOffset) {
  RetransmitQueue q;
  q.add(100, 200);
  q.add(300, 400);
  q.add(50, 50);  // empty: ignored
  auto r = q.next(150);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->from, 150u);
  EXPECT_EQ(r->to, 200u);
  q.consumed(180);
  r = q.next(150);
  EXPECT_EQ(r->from, 180u);
  q.consumed(200);
  r = q.next(150);
  EXPECT_EQ(r->from, 300u);
  EXPECT_EQ(q.lowest(0), std::optional<std::uint64_t>(300));
}

TEST(RetransmitQueue, WhatTheAckPassedIsNeverSentAgain) {
  RetransmitQueue q;
  q.add(100, 200);
  q.add(300, 400);
  EXPECT_TRUE(q.pending(0));
  EXPECT_EQ(q.next(350)->from, 350u);
  EXPECT_FALSE(q.pending(400));
  EXPECT_FALSE(q.next(400).has_value());
}

TEST(RetransmitQueue, ResetReplacesEverything) {
  RetransmitQueue q;
  q.add(100, 200);
  q.reset(0, 50);
  EXPECT_EQ(q.next(0)->to, 50u);
  q.clear();
  EXPECT_FALSE(q.pending(0));
}

}  // namespace
}  // namespace rendr::core
