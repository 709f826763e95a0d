// MessagePayload: the message queue of packet mode as a Payload (limits, window, boundaries).
#include "core/message_payload.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace rendr::core {
namespace {

constexpr std::uint64_t kOver = wire::kMessageSpanOverhead;
const Time t0{};

FlowConfig config(std::size_t window = 64 * 1024) {
  FlowConfig c;
  c.recv_window = window;
  c.send_buffer = 64 * 1024;
  return c;
}

std::vector<wire::Byte> bytes(std::size_t n, wire::Byte v = 7) {
  return std::vector<wire::Byte>(n, v);
}

// A DATA frame carrying `m` at `offset`.
wire::Data data(std::uint64_t offset, const std::vector<wire::Byte>& m) {
  return wire::Data{offset, wire::ConstBytes(m)};
}

TEST(MessagePayload, TooLargeIsRefusedNeverTruncated) {
  MessagePayload p(config(), PacketOptions{});
  EXPECT_EQ(p.send(bytes(kDefaultMaxMessage)), MessageSendResult::ok);
  EXPECT_EQ(p.send(bytes(kDefaultMaxMessage + 1)), MessageSendResult::too_large);
  EXPECT_EQ(p.written(), kDefaultMaxMessage + kOver);
  PacketOptions small;
  small.max_message = 100;
  MessagePayload q(config(), small);
  EXPECT_EQ(q.send(bytes(101)), MessageSendResult::too_large);
  EXPECT_EQ(q.send(bytes(100)), MessageSendResult::ok);
}

TEST(MessagePayload, FullAndClosed) {
  MessagePayload p(config(), PacketOptions{});
  std::size_t sent = 0;
  while (p.send(bytes(1000)) == MessageSendResult::ok)
    ++sent;
  EXPECT_EQ(sent, 64 * 1024 / (1000 + kOver));
  EXPECT_EQ(p.send(bytes(1000)), MessageSendResult::full);
  p.close();
  EXPECT_EQ(p.send(bytes(1)), MessageSendResult::closed);
}

TEST(MessagePayload, FramesAreWholeMessagesAndTheWindowEndsAtABoundary) {
  MessagePayload p(config(), PacketOptions{});
  p.send(bytes(100, 1));
  p.send(bytes(200, 2));
  p.raise_peer_limit(100 + kOver + 50);  // the second message does not fit the peer's window
  EXPECT_EQ(p.window_end(), 100 + kOver);
  const wire::Slice first = p.frame_payload(0, p.window_end(), 10);  // never split for max_bytes
  EXPECT_EQ(first.size(), 100u);
  EXPECT_EQ(p.frame_end(0, first.size()), 100 + kOver);
  EXPECT_EQ(p.unsplittable_size(100 + kOver), 200u);
  EXPECT_EQ(p.data_flags(), wire::Data::kFlagMessage);
  p.raise_peer_limit(1 << 20);
  EXPECT_EQ(p.window_end(), p.written());
}

TEST(MessagePayload, ReliableResendsUnreliableSkips) {
  EXPECT_TRUE(MessagePayload(config(), PacketOptions{true, false}).resends_lost());
  EXPECT_FALSE(MessagePayload(config(), PacketOptions{false, false}).resends_lost());
}

TEST(MessagePayload, SmallReceiveBufferLeavesTheMessageQueued) {
  MessagePayload p(config(), PacketOptions{});
  FlowStats c;
  const auto m = bytes(300, 9);
  EXPECT_TRUE(p.on_data(data(0, m), {}, c, t0));
  std::vector<wire::Byte> small(299), big(300);
  auto r = p.receive(small);
  EXPECT_EQ(r.status, MessageReceiveResult::Status::buffer_too_small);
  EXPECT_EQ(r.size, 300u);
  EXPECT_EQ(p.next_message_size(), 300u);
  r = p.receive(big);
  EXPECT_EQ(r.status, MessageReceiveResult::Status::ok);
  EXPECT_EQ(r.size, 300u);
  EXPECT_EQ(big, m);
  EXPECT_EQ(p.receive(big).status, MessageReceiveResult::Status::none);
}

TEST(MessagePayload, HostileMessagesAreRefusedWithoutHarm) {
  MessagePayload p(config(16 * 1024), PacketOptions{});
  FlowStats c;
  EXPECT_FALSE(p.on_data(data(0, bytes(kDefaultMaxMessage + 1)), {}, c, t0));  // above the limit
  EXPECT_FALSE(p.on_data(data(16 * 1024, bytes(1)), {}, c, t0));               // beyond the window
  EXPECT_EQ(c.protocol_errors, 2u);
  EXPECT_EQ(p.received_buffered(), 0u);
  EXPECT_TRUE(p.on_data(data(0, bytes(10)), {}, c, t0));  // the flow goes on
  EXPECT_EQ(p.delivered(), 10 + kOver);
}

// A flood of tiny messages never reads: the window holds at most window / overhead of them,
// and once they are read the window opens again.
TEST(MessagePayload, AFloodIsBoundedInCountAndBytes) {
  const std::size_t window = 16 * 1024;
  MessagePayload p(config(window), PacketOptions{});
  FlowStats c;
  std::uint64_t offset = 0;
  std::size_t accepted = 0;
  for (int i = 0; i < 10'000; ++i) {
    if (p.on_data(data(offset, {}), {}, c, t0)) ++accepted;
    offset += kOver;
  }
  EXPECT_EQ(accepted, window / kOver);
  EXPECT_LE(p.readable_messages(), window / kOver);
  EXPECT_GT(c.protocol_errors, 0u);
  // The limit in our ACK does not grow while they wait unread.
  EXPECT_EQ(p.make_ack().limit, window);
  std::vector<wire::Byte> out(16);
  while (p.receive(out).status == MessageReceiveResult::Status::ok) {
  }
  EXPECT_TRUE(p.window_update_due());
  EXPECT_EQ(p.make_ack().limit, 2 * window);
}

// Held (ordered) messages count against the window too.
TEST(MessagePayload, OrderedHeldMessagesCountAgainstTheWindow) {
  const std::size_t window = 4 * 1024;
  MessagePayload p(config(window), PacketOptions{true, true});
  FlowStats c;
  // Everything but the first message arrives: held, nothing readable.
  const std::uint64_t span = 100 + kOver;
  std::uint64_t offset = span;
  while (offset + span <= window) {
    EXPECT_FALSE(p.on_data(data(offset, bytes(100)), {}, c, t0));
    offset += span;
  }
  EXPECT_EQ(p.readable_messages(), 0u);
  EXPECT_EQ(p.make_ack().limit, window);  // never beyond what memory allows
  EXPECT_TRUE(p.on_data(data(0, bytes(100)), {}, c, t0));
  EXPECT_EQ(p.readable_messages(), window / span);
}

TEST(MessagePayload, SkipClosesAGapAndReleasesHeldMessages) {
  FlowStats c;
  MessagePayload p(config(), PacketOptions{false, true});
  EXPECT_FALSE(p.on_data(data(100 + kOver, bytes(5)), {}, c, t0));
  EXPECT_TRUE(p.on_skip(wire::Skip{0, 100 + kOver}, c, t0));
  EXPECT_EQ(p.delivered(), 2 * kOver + 105);
  EXPECT_EQ(c.protocol_errors, 0u);
  EXPECT_FALSE(p.on_skip(wire::Skip{1 << 20, 10}, c, t0));  // beyond the window
  EXPECT_EQ(c.protocol_errors, 1u);
}

}  // namespace
}  // namespace rendr::core
