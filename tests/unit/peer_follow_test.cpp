// Unit tests of core::PeerFollow: which frames move the server to the client's path.
#include <gtest/gtest.h>

#include "core/peer_follow.hpp"

namespace rendr::core {
namespace {

using Signal = PeerFollow::Signal;

TEST(PeerFollow, AdvancingFrameOnAnotherPathIsFollowed) {
  PeerFollow f;
  EXPECT_FALSE(f.should_follow(Signal::data, 1, 1, true));   // already there
  EXPECT_FALSE(f.should_follow(Signal::data, 2, 1, false));  // not past the high mark
  EXPECT_TRUE(f.should_follow(Signal::data, 2, 1, true));
}

// DATA moved the server from 1 to 2; an ACK the client sent before its switch arrives on 1.
TEST(PeerFollow, StaleFrameOfTheOtherKindDoesNotPullBack) {
  PeerFollow f;
  ASSERT_TRUE(f.should_follow(Signal::data, 2, 1, true));
  EXPECT_FALSE(f.should_follow(Signal::ack, 1, 2, true));
  // Once an ACK showed up on 2, an advancing ACK on 1 is the client moving back.
  EXPECT_FALSE(f.should_follow(Signal::ack, 2, 2, true));
  EXPECT_TRUE(f.should_follow(Signal::ack, 1, 2, true));
}

TEST(PeerFollow, TheKindThatMovedUsCanMoveUsBack) {
  PeerFollow f;
  ASSERT_TRUE(f.should_follow(Signal::ack, 2, 1, true));
  EXPECT_TRUE(f.should_follow(Signal::ack, 1, 2, true));
}

TEST(PeerFollow, AThirdPathIsFollowedAtOnce) {
  PeerFollow f;
  ASSERT_TRUE(f.should_follow(Signal::data, 2, 1, true));
  EXPECT_TRUE(f.should_follow(Signal::ack, 3, 2, true));
}

}  // namespace
}  // namespace rendr::core
