// ModeSync: the in-band agreement on the scheduling mode (sequenced MODE frames).
#include <gtest/gtest.h>

#include "core/mode_sync.hpp"

namespace rendr::core {
namespace {

TEST(ModeSync, AnAnnouncementIsConfirmedByTheAnswerCarryingItsSeq) {
  ModeSync ours, theirs;
  const std::uint64_t seq = ours.announce();
  EXPECT_TRUE(ours.unconfirmed());
  EXPECT_EQ(theirs.receive(seq), ModeSync::Received::next);
  EXPECT_EQ(theirs.receive(seq), ModeSync::Received::repeat);  // our answer was lost
  EXPECT_EQ(ours.receive(theirs.seq()), ModeSync::Received::confirm);
  EXPECT_FALSE(ours.unconfirmed());
}

TEST(ModeSync, OvertakingAnnouncementsSkipAndTheOvertakenOneIsStale) {
  ModeSync peer;
  EXPECT_EQ(peer.receive(2), ModeSync::Received::skipping);
  EXPECT_EQ(peer.receive(1), ModeSync::Received::stale);
  EXPECT_EQ(peer.receive(3), ModeSync::Received::next);
}

TEST(ModeSync, APeersLaterAnnouncementSupersedesOurs) {
  ModeSync ours;
  ours.announce();  // seq 1, crossing the peer's announcement of seq 2
  EXPECT_EQ(ours.receive(2), ModeSync::Received::next);
  EXPECT_FALSE(ours.unconfirmed());
}

}  // namespace
}  // namespace rendr::core
