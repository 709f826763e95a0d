// Messages in a reliable path's datagrams (QUIC DATAGRAM; core/message_datagrams.hpp): the core
// marks the DATA of a message that fits the carrier's datagram with an id, and answers the
// carrier's verdicts on it: a lost reliable message goes out again, a lost unreliable one is
// replaced by a SKIP, an acknowledged one never goes again; frames received in datagrams are
// taken only if they are a message's DATA on an up path.
#include <gtest/gtest.h>

#include <vector>

#include "core/message_datagrams.hpp"
#include "flow_harness.hpp"

namespace rendr::core {
namespace {

using test::FlowPair;

// ---- MessageDatagrams

TEST(MessageDatagrams, IdsAreConsecutiveAndEachGetsOneVerdict) {
  MessageDatagrams d;
  const Time t0{std::chrono::seconds(1)};
  const std::uint64_t a = d.on_sent(0, 10, t0);
  const std::uint64_t b = d.on_sent(10, 20, t0);
  const std::uint64_t c = d.on_sent(20, 30, t0);
  EXPECT_EQ(b, a + 1);
  EXPECT_EQ(c, b + 1);
  EXPECT_EQ(d.in_flight(), 3u);

  const auto lost = d.on_lost(b);
  ASSERT_TRUE(lost.has_value());
  EXPECT_EQ(lost->from, 10u);
  EXPECT_EQ(lost->to, 20u);
  EXPECT_FALSE(d.on_acked(b));  // a spurious loss acknowledged later: judged already
  EXPECT_FALSE(d.on_lost(b));   // reported twice
  EXPECT_TRUE(d.on_acked(a));
  EXPECT_FALSE(d.on_lost(a));   // acknowledged first: not lost
  EXPECT_FALSE(d.on_lost(99));  // never sent
  EXPECT_EQ(d.in_flight(), 1u);

  d.clear();  // a new carrier: the old ids mean nothing
  EXPECT_FALSE(d.on_lost(c));
  EXPECT_EQ(d.in_flight(), 0u);
  EXPECT_GT(d.on_sent(30, 40, t0), c);  // never reused
}

// ngtcp2 may drop a datagram without a verdict: the records behind it must not pile up forever.
TEST(MessageDatagrams, AnUnjudgedDatagramIsTakenAsLostWhenOverdueOrTooManyWaitBehindIt) {
  MessageDatagrams d;
  const Time t0{std::chrono::seconds(1)};
  const Duration max_age = std::chrono::milliseconds(100);
  const std::uint64_t forgotten = d.on_sent(0, 10, t0);
  const std::uint64_t later = d.on_sent(10, 20, t0 + std::chrono::milliseconds(50));
  ASSERT_TRUE(d.on_acked(later));
  EXPECT_EQ(d.records(), 2u);  // the acknowledged one waits behind the unjudged one
  EXPECT_EQ(d.overdue_at(max_age), t0 + max_age);
  EXPECT_FALSE(d.take_overdue(t0 + max_age - std::chrono::milliseconds(1), max_age, 1000));
  const auto lost = d.take_overdue(t0 + max_age, max_age, 1000);
  ASSERT_TRUE(lost.has_value());
  EXPECT_EQ(lost->from, 0u);
  EXPECT_EQ(lost->to, 10u);
  EXPECT_EQ(d.records(), 0u);
  EXPECT_EQ(d.in_flight(), 0u);
  EXPECT_FALSE(d.on_lost(forgotten));  // judged now: a late verdict finds nothing
  EXPECT_FALSE(d.overdue_at(max_age).has_value());

  // Too many records: the oldest go, young as they are, until the bound holds.
  const std::size_t bound = 8;
  for (std::uint64_t i = 0; i < bound + 3; ++i)
    (void)d.on_sent(100 + i, 101 + i, t0);
  std::vector<std::uint64_t> taken;
  while (const auto r = d.take_overdue(t0, max_age, bound))
    taken.push_back(r->from);
  EXPECT_EQ(taken, (std::vector<std::uint64_t>{100, 101, 102}));
  EXPECT_EQ(d.records(), bound);
  EXPECT_EQ(d.in_flight(), bound);
}

// ---- Flow

FlowConfig packet_config(PacketOptions options) {
  FlowConfig c;
  c.packet = options;
  c.accept_packet_flows = true;
  return c;
}

struct Sent {
  wire::Frame frame;
  std::vector<wire::Byte> bytes;  // backing of frame's payload
  std::optional<std::uint64_t> datagram_id;
};

// One poll of the client's path 1, decoded.
std::vector<Sent> poll(Flow& flow, Time now) {
  TransmitBatch batch(64 * 1024);
  (void)flow.poll_transmit(1, now, batch);
  std::vector<Sent> out;
  for (const OutFrame& f : batch.frames()) {
    Sent s;
    s.bytes.assign(f.header_bytes().begin(), f.header_bytes().end());
    s.bytes.insert(s.bytes.end(), f.payload.bytes().begin(), f.payload.bytes().end());
    s.datagram_id = f.datagram_id;
    out.push_back(std::move(s));
  }
  for (Sent& s : out)  // after the moves: the payload points into s.bytes
    EXPECT_EQ(wire::decode(s.bytes, s.frame, 1 << 20).error, wire::DecodeError::none);
  return out;
}

const wire::Data* data_of(const Sent& s) {
  return std::get_if<wire::Data>(&s.frame.body);
}

// The DATA frames of a poll.
std::vector<const Sent*> data_frames(const std::vector<Sent>& sent) {
  std::vector<const Sent*> out;
  for (const Sent& s : sent)
    if (data_of(s) != nullptr) out.push_back(&s);
  return out;
}

TEST(FlowMessageDatagrams, MessagesThatFitGoInDatagramsLargerOnesOnTheStream) {
  FlowPair pair(packet_config({}), 1);
  Flow& client = pair.client();
  client.set_message_datagram_size(1, 600);
  const std::vector<wire::Byte> small(500, 1), large(1000, 2);
  ASSERT_EQ(client.send_message(small, pair.now()), MessageSendResult::ok);
  ASSERT_EQ(client.send_message(large, pair.now()), MessageSendResult::ok);
  const auto sent = poll(client, pair.now());
  const auto data = data_frames(sent);
  ASSERT_EQ(data.size(), 2u);
  EXPECT_TRUE(data[0]->datagram_id.has_value());
  EXPECT_EQ(data_of(*data[0])->payload.size(), small.size());  // whole, never cut to fit
  EXPECT_FALSE(data[1]->datagram_id.has_value());
  EXPECT_EQ(data_of(*data[1])->payload.size(), large.size());
  for (const Sent& s : sent) {  // control frames always ride the stream
    if (data_of(s) == nullptr) {
      EXPECT_FALSE(s.datagram_id.has_value());
    }
  }
  EXPECT_EQ(client.stats(pair.now()).paths.at(0).datagrams_sent, 1u);
}

TEST(FlowMessageDatagrams, NoDatagramsWithoutASizeOrOnAStreamFlow) {
  FlowPair packets(packet_config({}), 1);
  ASSERT_EQ(packets.client().send_message(std::vector<wire::Byte>(100, 1), packets.now()),
            MessageSendResult::ok);
  const auto packet_frames = poll(packets.client(), packets.now());
  for (const Sent* s : data_frames(packet_frames)) {
    EXPECT_FALSE(s->datagram_id.has_value());
  }

  FlowPair stream(FlowConfig{}, 1);
  stream.client().set_message_datagram_size(1, 60'000);  // ignored: not a packet flow
  const std::vector<wire::Byte> bytes(100, 1);
  ASSERT_EQ(stream.client().write(bytes, stream.now()), bytes.size());
  const auto stream_frames = poll(stream.client(), stream.now());
  for (const Sent* s : data_frames(stream_frames)) {
    EXPECT_FALSE(s->datagram_id.has_value());
  }
}

TEST(FlowMessageDatagrams, LostReliableMessageGoesOutAgainAcknowledgedOneDoesNot) {
  FlowPair pair(packet_config({.reliable = true}), 1);
  Flow& client = pair.client();
  client.set_message_datagram_size(1, 1200);
  for (int i = 0; i < 2; ++i)
    ASSERT_EQ(
        client.send_message(std::vector<wire::Byte>(100, static_cast<wire::Byte>(i)), pair.now()),
        MessageSendResult::ok);
  const auto first = poll(client, pair.now());
  const auto data = data_frames(first);
  ASSERT_EQ(data.size(), 2u);
  ASSERT_TRUE(data[0]->datagram_id && data[1]->datagram_id);

  client.on_datagram_acked(1, *data[0]->datagram_id, pair.now());
  client.on_datagram_lost(1, *data[1]->datagram_id, pair.now());
  client.on_datagram_lost(1, *data[0]->datagram_id, pair.now());  // acknowledged: not lost
  ASSERT_TRUE(client.wants_transmit(1));
  const auto second = poll(client, pair.now());
  const auto again = data_frames(second);
  ASSERT_EQ(again.size(), 1u);  // only the lost one
  EXPECT_EQ(data_of(*again[0])->offset, data_of(*data[1])->offset);
  EXPECT_EQ(data_of(*again[0])->payload.size(), 100u);
  ASSERT_TRUE(again[0]->datagram_id.has_value());
  EXPECT_NE(*again[0]->datagram_id, *data[1]->datagram_id);  // a new datagram
  const PathStats stats = client.stats(pair.now()).paths.at(0);
  EXPECT_EQ(stats.datagrams_sent, 3u);
  EXPECT_EQ(stats.datagrams_acked, 1u);
  EXPECT_EQ(stats.datagrams_lost, 1u);
}

TEST(FlowMessageDatagrams, LostUnreliableMessageIsReplacedByASkip) {
  FlowPair pair(packet_config({.reliable = false}), 1);
  Flow& client = pair.client();
  client.set_message_datagram_size(1, 1200);
  ASSERT_EQ(client.send_message(std::vector<wire::Byte>(100, 7), pair.now()),
            MessageSendResult::ok);
  const auto first = poll(client, pair.now());
  const auto data = data_frames(first);
  ASSERT_EQ(data.size(), 1u);
  ASSERT_TRUE(data[0]->datagram_id.has_value());
  client.on_datagram_lost(1, *data[0]->datagram_id, pair.now());
  const auto sent = poll(client, pair.now());
  EXPECT_TRUE(data_frames(sent).empty());  // never sent again
  const wire::Skip* skip = nullptr;
  for (const Sent& s : sent) {
    if (const auto* k = std::get_if<wire::Skip>(&s.frame.body)) skip = k;
  }
  ASSERT_NE(skip, nullptr);
  EXPECT_EQ(skip->offset, data_of(*data[0])->offset);
}

// The carrier never judges a datagram (ngtcp2 dropped it on a path change): after a few PTOs the
// flow takes it as lost and the reliable message still arrives. The path itself stays up: the
// PING sent on it halfway through its silence is answered on the stream (before, the lost
// datagram's DATA left the only path silent and it died, and the replay re-sent the message).
TEST(FlowMessageDatagrams, AReliableMessageInADatagramNeverJudgedGoesOutAgain) {
  FlowPair pair(packet_config({.reliable = true}), 1);
  Flow& client = pair.client();
  client.set_message_datagram_size(1, 1200);
  ASSERT_EQ(client.send_message(std::vector<wire::Byte>(100, 7), pair.now()),
            MessageSendResult::ok);
  const auto first = poll(client, pair.now());  // taken here: the server never sees it
  const auto data = data_frames(first);
  ASSERT_EQ(data.size(), 1u);
  ASSERT_TRUE(data[0]->datagram_id.has_value());

  pair.advance(std::chrono::seconds(3));  // no verdict ever comes
  const PathStats stats = client.stats(pair.now()).paths.at(0);
  EXPECT_EQ(stats.down_count, 0u);
  // The first copy, then the second (the harness carries it to the server, whose ACK leaves
  // nothing to send again when it too expires unjudged).
  EXPECT_EQ(stats.datagrams_unjudged, 2u);
  EXPECT_EQ(stats.datagrams_lost, 2u);
  EXPECT_EQ(stats.datagrams_sent, 2u);
  std::vector<wire::Byte> buffer(2000);
  const MessageReceiveResult r = pair.server().receive_message(buffer, pair.now());
  EXPECT_EQ(r.status, MessageReceiveResult::Status::ok);
  EXPECT_EQ(r.size, 100u);
  // A late verdict on the first copy changes nothing.
  client.on_datagram_lost(1, *data[0]->datagram_id, pair.now());
  EXPECT_EQ(client.stats(pair.now()).paths.at(0).datagrams_lost, 2u);
}

TEST(FlowMessageDatagrams, AFallenPathsDatagramVerdictsChangeNothing) {
  FlowPair pair(packet_config({.reliable = true}), 2);
  Flow& client = pair.client();
  client.set_message_datagram_size(1, 1200);
  ASSERT_EQ(client.send_message(std::vector<wire::Byte>(100, 7), pair.now()),
            MessageSendResult::ok);
  const auto first = poll(client, pair.now());
  const auto data = data_frames(first);
  ASSERT_EQ(data.size(), 1u);
  ASSERT_TRUE(data[0]->datagram_id.has_value());
  pair.kill(1);  // its loss recovery replays what it carried; its ids are void
  client.on_datagram_lost(1, *data[0]->datagram_id, pair.now());
  EXPECT_EQ(client.stats(pair.now()).paths.at(0).datagrams_lost, 0u);
}

TEST(FlowMessageDatagrams, ReceivedDatagramsMayOnlyBeMessageData) {
  FlowPair pair(packet_config({.reliable = true}), 1);
  Flow& client = pair.client();
  Flow& server = pair.server();
  client.set_message_datagram_size(1, 1200);
  ASSERT_EQ(client.send_message(std::vector<wire::Byte>(100, 7), pair.now()),
            MessageSendResult::ok);
  const auto sent = poll(client, pair.now());
  const auto data = data_frames(sent);
  ASSERT_EQ(data.size(), 1u);
  const PathId server_path = server.stats(pair.now()).paths.at(0).id;
  const std::uint64_t errors = server.stats(pair.now()).protocol_errors;

  const wire::Frame ping{0, wire::Ping{42}};
  server.on_datagram_frames(server_path, std::span(&ping, 1), wire::Slice(), pair.now());
  EXPECT_EQ(server.stats(pair.now()).protocol_errors, errors + 1);

  auto block = wire::make_block(data[0]->bytes.size());
  std::memcpy(block->data.get(), data[0]->bytes.data(), data[0]->bytes.size());
  block->used = data[0]->bytes.size();
  wire::Frame frame;
  ASSERT_EQ(wire::decode(wire::ConstBytes(block->data.get(), block->used), frame, 1 << 20).error,
            wire::DecodeError::none);
  server.on_datagram_frames(server_path, std::span(&frame, 1), wire::Slice(block, 0, block->used),
                            pair.now());
  std::vector<wire::Byte> buffer(2000);
  const MessageReceiveResult r = server.receive_message(buffer, pair.now());
  EXPECT_EQ(r.status, MessageReceiveResult::Status::ok);
  EXPECT_EQ(r.size, 100u);
  EXPECT_EQ(server.stats(pair.now()).protocol_errors, errors + 1);
}

}  // namespace
}  // namespace rendr::core
