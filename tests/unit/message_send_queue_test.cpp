// MessageSendQueue: messages by offset, each n bytes + kMessageSpanOverhead, released whole.
#include "core/message_send_queue.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace rendr::core {
namespace {

constexpr std::uint64_t kOver = wire::kMessageSpanOverhead;

std::vector<wire::Byte> bytes(std::size_t n, wire::Byte v = 1) {
  return std::vector<wire::Byte>(n, v);
}

TEST(MessageSendQueue, MessagesOccupyTheirBytesAndOverhead) {
  MessageSendQueue q(1 << 20);
  ASSERT_TRUE(q.push(bytes(10)));
  ASSERT_TRUE(q.push(bytes(0)));  // an empty message still has an offset of its own
  ASSERT_TRUE(q.push(bytes(100)));
  EXPECT_EQ(q.end(), 10 + kOver + kOver + 100 + kOver);
  ASSERT_NE(q.at(0), nullptr);
  EXPECT_EQ(q.at(0)->size(), 10u);
  ASSERT_NE(q.at(10 + kOver), nullptr);
  EXPECT_EQ(q.at(10 + kOver)->size(), 0u);
  EXPECT_EQ(q.at(1), nullptr);  // not a message boundary
}

TEST(MessageSendQueue, FullQueueRefusesWholeMessages) {
  MessageSendQueue q(2 * (100 + kOver));
  EXPECT_TRUE(q.push(bytes(100)));
  EXPECT_TRUE(q.push(bytes(100)));
  EXPECT_FALSE(q.push(bytes(1)));
  EXPECT_EQ(q.count(), 2u);
  q.release_to(100 + kOver);
  EXPECT_TRUE(q.push(bytes(100)));
}

TEST(MessageSendQueue, ReleaseKeepsAMessageItEndsInside) {
  MessageSendQueue q(1 << 20);
  q.push(bytes(10));
  q.push(bytes(10));
  q.release_to(10 + kOver + 5);
  EXPECT_EQ(q.base(), 10 + kOver);
  EXPECT_EQ(q.count(), 1u);
  q.release_to(q.end());
  EXPECT_EQ(q.base(), q.end());
  EXPECT_EQ(q.count(), 0u);
}

TEST(MessageSendQueue, AlignedEndStopsAtTheLastWholeMessage) {
  MessageSendQueue q(1 << 20);
  q.push(bytes(36));  // [0, 100)
  q.push(bytes(36));  // [100, 200)
  q.push(bytes(36));  // [200, 300)
  EXPECT_EQ(q.aligned_end(0), 0u);
  EXPECT_EQ(q.aligned_end(99), 0u);
  EXPECT_EQ(q.aligned_end(100), 100u);
  EXPECT_EQ(q.aligned_end(250), 200u);
  EXPECT_EQ(q.aligned_end(1000), 300u);
  q.release_to(100);
  EXPECT_EQ(q.aligned_end(150), 100u);
}

}  // namespace
}  // namespace rendr::core
