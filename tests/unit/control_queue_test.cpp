// ControlQueue: the control frames a path owes, each at most once, taken in priority order.
#include <gtest/gtest.h>

#include "core/control_queue.hpp"

namespace rendr::core {
namespace {

TEST(ControlQueue, OwesEachKindOnceUntilTaken) {
  ControlQueue q;
  EXPECT_FALSE(q.owes(Control::ping));
  q.owe(Control::ping);
  q.owe(Control::ping);
  EXPECT_TRUE(q.owes(Control::ping));
  EXPECT_TRUE(q.take(Control::ping));
  EXPECT_FALSE(q.take(Control::ping));  // owed once, sent once
  EXPECT_FALSE(q.owes(Control::ping));
}

TEST(ControlQueue, KindsAreIndependent) {
  ControlQueue q;
  q.owe(Control::pong);
  q.owe(Control::mode_answer);
  q.drop(Control::pong);
  EXPECT_FALSE(q.owes(Control::pong));
  EXPECT_TRUE(q.owes(Control::mode_answer));
  q.owe_if(Control::abort_close, true);
  q.owe_if(Control::mode_answer, false);
  EXPECT_TRUE(q.owes(Control::abort_close));
  EXPECT_FALSE(q.owes(Control::mode_answer));
  q.clear();
  EXPECT_FALSE(q.owes(Control::abort_close));
}

// poll_transmit sends in the enum's order: handshake answers before the abort's CLOSE, the
// PONG before ACK copies, the PING last (so an RTT sample is not delayed by nothing).
TEST(ControlQueue, PriorityIsTheEnumOrder) {
  EXPECT_LT(Control::open_ack, Control::join_ack);
  EXPECT_LT(Control::join_ack, Control::abort_close);
  EXPECT_LT(Control::abort_close, Control::pong);
  EXPECT_LT(Control::pong, Control::ack_copy);
  EXPECT_LT(Control::ack_copy, Control::mode_announce);
  EXPECT_LT(Control::mode_answer, Control::ping);
}

}  // namespace
}  // namespace rendr::core
