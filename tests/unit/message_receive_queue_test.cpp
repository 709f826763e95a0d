// MessageReceiveQueue: each message at most once, in order or on arrival, SKIPs close gaps,
// overlapping or scattered hostile ranges refused.
#include "core/message_receive_queue.hpp"

#include <gtest/gtest.h>

#include <string>

namespace rendr::core {
namespace {

using Outcome = MessageReceiveQueue::Outcome;

wire::Slice msg(const std::string& s) {
  return wire::Slice::copy_of({reinterpret_cast<const wire::Byte*>(s.data()), s.size()});
}
std::string text(const wire::Slice* s) {
  return s == nullptr ? "<none>" : std::string(s->data(), s->data() + s->size());
}
std::string pop(MessageReceiveQueue& q) {
  std::string t = text(q.front());
  q.pop();
  return t;
}

TEST(MessageReceiveQueue, UnorderedDeliversOnArrival) {
  MessageReceiveQueue q(false, 100);
  EXPECT_EQ(q.insert(100, 200, msg("b")).became_readable, 1u);
  EXPECT_EQ(q.next(), 0u);  // the first message is missing
  EXPECT_EQ(pop(q), "b");
  const auto r = q.insert(0, 100, msg("a"));
  EXPECT_EQ(r.advanced, 200u);
  EXPECT_EQ(pop(q), "a");
  EXPECT_EQ(q.front(), nullptr);
}

TEST(MessageReceiveQueue, OrderedHoldsUntilTheGapFills) {
  MessageReceiveQueue q(true, 100);
  EXPECT_EQ(q.insert(200, 300, msg("c")).became_readable, 0u);
  EXPECT_EQ(q.insert(100, 200, msg("b")).became_readable, 0u);
  EXPECT_EQ(q.front(), nullptr);
  EXPECT_EQ(q.queued_count(), 2u);
  EXPECT_EQ(q.insert(0, 100, msg("a")).became_readable, 3u);
  EXPECT_EQ(pop(q), "a");
  EXPECT_EQ(pop(q), "b");
  EXPECT_EQ(pop(q), "c");
  EXPECT_EQ(q.next(), 300u);
  EXPECT_EQ(q.queued_bytes(), 0u);
  EXPECT_EQ(q.queued_span(), 0u);
}

TEST(MessageReceiveQueue, DuplicatesAreDroppedBeforeAndAfterDelivery) {
  for (bool ordered : {false, true}) {
    MessageReceiveQueue q(ordered, 100);
    EXPECT_EQ(q.insert(100, 200, msg("b")).outcome, Outcome::accepted);
    EXPECT_EQ(q.insert(100, 200, msg("b")).outcome, Outcome::duplicate);  // above next()
    q.insert(0, 100, msg("a"));
    EXPECT_EQ(q.insert(0, 100, msg("a")).outcome, Outcome::duplicate);  // below next()
    EXPECT_EQ(q.insert(100, 200, msg("b")).outcome, Outcome::duplicate);
    EXPECT_EQ(q.queued_count(), 2u);
  }
}

TEST(MessageReceiveQueue, OverlappingRangesAreRefused) {
  MessageReceiveQueue q(false, 100);
  q.insert(100, 200, msg("b"));
  EXPECT_EQ(q.insert(150, 250, msg("x")).outcome, Outcome::refused);
  EXPECT_EQ(q.insert(50, 150, msg("x")).outcome, Outcome::refused);
  q.insert(0, 100, msg("a"));
  EXPECT_EQ(q.insert(150, 300, msg("x")).outcome, Outcome::refused);  // straddles next()
  EXPECT_EQ(q.queued_count(), 2u);
}

TEST(MessageReceiveQueue, UnorderedDeliversAFirstCopyThatASkipOvertookOnce) {
  MessageReceiveQueue q(false, 100);
  q.insert(100, 200, msg("b"));
  q.skip(0, 300);  // a and c declared lost while late
  EXPECT_EQ(q.next(), 300u);
  EXPECT_EQ(pop(q), "b");
  EXPECT_EQ(q.insert(200, 300, msg("c")).became_readable, 1u);
  EXPECT_EQ(q.insert(0, 100, msg("a")).became_readable, 1u);
  EXPECT_EQ(pop(q), "c");
  EXPECT_EQ(pop(q), "a");
  EXPECT_EQ(q.insert(0, 100, msg("a")).outcome, Outcome::duplicate);  // only once
  EXPECT_EQ(q.insert(100, 200, msg("b")).outcome, Outcome::duplicate);
  EXPECT_EQ(q.front(), nullptr);
}

TEST(MessageReceiveQueue, SkipReleasesHeldMessagesAndDropsLateCopies) {
  MessageReceiveQueue q(true, 100);
  q.insert(200, 300, msg("c"));
  const auto r = q.skip(0, 200);  // a and b were lost; the sender will not send them again
  EXPECT_EQ(r.became_readable, 1u);
  EXPECT_EQ(q.next(), 300u);
  EXPECT_EQ(pop(q), "c");
  EXPECT_EQ(q.insert(100, 200, msg("b")).outcome, Outcome::duplicate);  // a late first copy
  EXPECT_EQ(q.front(), nullptr);
}

TEST(MessageReceiveQueue, SkipOverMessagesThatArrivedKeepsThem) {
  MessageReceiveQueue q(true, 100);
  q.insert(100, 200, msg("b"));
  q.skip(0, 300);  // a path died with a, b and c unacknowledged: b had arrived
  EXPECT_EQ(pop(q), "b");
  EXPECT_EQ(q.next(), 300u);
}

TEST(MessageReceiveQueue, ScatteredRangesBeyondTheBoundAreRefused) {
  MessageReceiveQueue q(false, 3);
  for (std::uint64_t i = 1; i <= 3; ++i)
    EXPECT_EQ(q.insert(i * 200, i * 200 + 100, msg("m")).outcome, Outcome::accepted);
  EXPECT_EQ(q.insert(1000, 1100, msg("m")).outcome, Outcome::refused);
  EXPECT_EQ(q.skip(2000, 2100).outcome, Outcome::refused);
  // Adjacent to a range it merges and costs nothing; at next() too.
  EXPECT_EQ(q.insert(300, 400, msg("m")).outcome, Outcome::accepted);
  EXPECT_EQ(q.insert(0, 100, msg("m")).outcome, Outcome::accepted);
  EXPECT_LE(q.ranges(), 3u);
}

}  // namespace
}  // namespace rendr::core
