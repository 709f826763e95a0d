// core::Flow as a packet flow (docs/design.md "Packet mode") over datagram and stream paths:
// boundaries kept 1:1, one message per DATA frame and never split across packets, reliable
// messages all delivered exactly once across loss, unreliable ones never duplicated and lost only
// where the network lost them, ordered delivery in order, race duplicates dropped and counted,
// and the OPEN's kind refused with a clear status where it is not accepted.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <vector>

#include "datagram_harness.hpp"

namespace rendr::core {
namespace {

using test::DatagramPair;
constexpr TransportKind kDatagram = TransportKind::datagram;
constexpr TransportKind kReliable = TransportKind::reliable;

FlowConfig packet_config(PacketOptions options, Mode mode = Mode::prime) {
  FlowConfig c;
  c.mode = mode;
  c.close_linger = 500ms;
  c.packet = options;
  c.accept_packet_flows = true;
  return c;
}

// Message i: its number (4 bytes) then a pattern, 4 + (i * 37) % 1100 bytes long.
std::vector<wire::Byte> message(std::uint32_t i) {
  std::vector<wire::Byte> m(4 + (i * 37) % 1100);
  for (int b = 0; b < 4; ++b)
    m[b] = static_cast<wire::Byte>(i >> (8 * b));
  for (std::size_t k = 4; k < m.size(); ++k)
    m[k] = static_cast<wire::Byte>(i * 7 + k);
  return m;
}

struct Received {
  std::vector<std::uint32_t> order;  // message numbers, as read
  bool corrupt = false;
};

// Sends `count` messages from the client, reads them on the server (checking each is whole and
// intact), then closes both ends.
Received exchange(DatagramPair& pair, std::uint32_t count, Duration limit = 20s) {
  Received got;
  std::uint32_t sent = 0;
  std::vector<wire::Byte> buf(kDefaultMaxMessage);
  const Time stop = pair.now() + limit;
  bool server_closed = false;
  while (pair.now() < stop) {
    while (sent < count &&
           pair.client().send_message(message(sent), pair.now()) == MessageSendResult::ok)
      ++sent;
    if (sent == count && !pair.client().send_closed()) pair.client().close(pair.now());
    if (pair.has_server()) {
      for (;;) {
        const MessageReceiveResult r = pair.server().receive_message(buf, pair.now());
        if (r.status != MessageReceiveResult::Status::ok) break;
        std::uint32_t n = 0;
        for (int b = 0; b < 4 && static_cast<std::size_t>(b) < r.size; ++b)
          n |= static_cast<std::uint32_t>(buf[b]) << (8 * b);
        const auto want = message(n);
        if (r.size != want.size() || !std::equal(want.begin(), want.end(), buf.begin()))
          got.corrupt = true;
        got.order.push_back(n);
      }
      if (pair.server().eof() && !server_closed) {
        server_closed = true;
        pair.server().close(pair.now());
      }
    }
    if (server_closed && pair.client().state() == FlowState::closed) break;
    pair.settle(1ms);
  }
  pair.settle(1s);
  return got;
}

std::size_t distinct(const Received& r) {
  return std::set<std::uint32_t>(r.order.begin(), r.order.end()).size();
}

bool frame_is_message(const wire::Frame& f) {
  return std::holds_alternative<wire::Data>(f.body) && (f.flags & wire::Data::kFlagMessage) != 0;
}

TEST(PacketFlow, ServerTakesKindAndOptionsFromTheOpen) {
  DatagramPair pair(packet_config({false, true}), {kDatagram});
  pair.settle(200ms);
  ASSERT_TRUE(pair.has_server());
  ASSERT_TRUE(pair.server().packet_options().has_value());
  EXPECT_FALSE(pair.server().packet_options()->reliable);
  EXPECT_TRUE(pair.server().packet_options()->ordered);
  EXPECT_EQ(pair.server().state(), FlowState::established);
}

TEST(PacketFlow, BoundariesKeptOneMessagePerDatagram) {
  DatagramPair pair(packet_config({}), {kDatagram});
  // Every DATA the client sends is one whole message: its payload is exactly message(n).
  std::size_t message_frames = 0, split = 0;
  pair.set_filter([&](const DatagramPair::Wire& w, const std::vector<wire::Frame>& frames) {
    if (w.dir != DatagramPair::Dir::to_server) return true;
    for (const auto& f : frames) {
      if (!std::holds_alternative<wire::Data>(f.body)) continue;
      const auto& d = std::get<wire::Data>(f.body);
      ++message_frames;
      std::uint32_t n = 0;
      for (int b = 0; b < 4 && static_cast<std::size_t>(b) < d.payload.size(); ++b)
        n |= static_cast<std::uint32_t>(d.payload[b]) << (8 * b);
      if (!frame_is_message(f) || d.payload.size() != message(n).size()) ++split;
    }
    return true;
  });
  const Received got = exchange(pair, 500);
  EXPECT_FALSE(got.corrupt);
  ASSERT_EQ(got.order.size(), 500u);
  EXPECT_EQ(distinct(got), 500u);
  EXPECT_EQ(pair.client().state(), FlowState::closed);
  EXPECT_EQ(pair.server().state(), FlowState::closed);
  EXPECT_GE(message_frames, 500u);
  EXPECT_EQ(split, 0u);
  EXPECT_LE(pair.max_packet_frame_bytes, kDefaultPacketPayload);
  EXPECT_EQ(pair.client().stats(pair.now()).messages_sent, 500u);
  EXPECT_EQ(pair.server().stats(pair.now()).messages_received, 500u);
}

TEST(PacketFlow, ReliableLosesNothingAcrossLoss) {
  for (bool ordered : {false, true}) {
    DatagramPair pair(packet_config({true, ordered}), {kDatagram});
    int seen = 0;
    pair.set_filter([&](const DatagramPair::Wire& w, const std::vector<wire::Frame>& frames) {
      const bool data = std::any_of(frames.begin(), frames.end(), frame_is_message);
      return !(w.dir == DatagramPair::Dir::to_server && data && ++seen % 7 == 0);
    });
    const Received got = exchange(pair, 400);
    EXPECT_FALSE(got.corrupt);
    ASSERT_EQ(got.order.size(), 400u) << "ordered " << ordered;
    EXPECT_EQ(distinct(got), 400u);
    if (ordered) {
      EXPECT_TRUE(std::is_sorted(got.order.begin(), got.order.end()));
    }
    EXPECT_GT(pair.client().stats(pair.now()).retransmitted_bytes, 0u);
  }
}

TEST(PacketFlow, UnreliableLosesOnlyWhatTheNetworkLostAndNeverDuplicates) {
  for (bool ordered : {false, true}) {
    DatagramPair pair(packet_config({false, ordered}), {kDatagram});
    std::set<std::uint32_t> dropped;  // message numbers whose first copy the network lost
    int seen = 0;
    std::size_t skips = 0;
    pair.set_filter([&](const DatagramPair::Wire& w, const std::vector<wire::Frame>& frames) {
      if (w.dir != DatagramPair::Dir::to_server) return true;
      skips += static_cast<std::size_t>(std::count_if(frames.begin(), frames.end(), [](auto& f) {
        return std::holds_alternative<wire::Skip>(f.body);
      }));
      const bool data = std::any_of(frames.begin(), frames.end(), frame_is_message);
      if (!data || ++seen % 5 != 0) return true;
      for (const auto& f : frames) {
        if (!frame_is_message(f)) continue;
        const auto& d = std::get<wire::Data>(f.body);
        std::uint32_t n = 0;
        for (int b = 0; b < 4; ++b)
          n |= static_cast<std::uint32_t>(d.payload[b]) << (8 * b);
        dropped.insert(n);
      }
      return false;
    });
    pair.duplicate_next(1, DatagramPair::Dir::to_server);
    const Received got = exchange(pair, 400);
    EXPECT_FALSE(got.corrupt);
    EXPECT_EQ(distinct(got), got.order.size()) << "a message was delivered twice";
    ASSERT_FALSE(dropped.empty());
    // Exactly the messages the network dropped are missing: none was sent again.
    std::set<std::uint32_t> missing;
    const std::set<std::uint32_t> have(got.order.begin(), got.order.end());
    for (std::uint32_t i = 0; i < 400; ++i) {
      if (!have.count(i)) missing.insert(i);
    }
    EXPECT_EQ(missing, dropped) << "ordered " << ordered;
    if (ordered) {
      EXPECT_TRUE(std::is_sorted(got.order.begin(), got.order.end()));
    }
    // Both ends still finish cleanly: the SKIPs closed the gaps.
    EXPECT_EQ(pair.client().state(), FlowState::closed);
    EXPECT_EQ(pair.server().state(), FlowState::closed);
    EXPECT_GT(skips, 0u);  // sent where a reliable flow resends
    // A SKIP is not the message sent again: no retransmitted bytes, on the flow or its path.
    const FlowStats st = pair.client().stats(pair.now());
    EXPECT_EQ(st.retransmitted_bytes, 0u);
    for (const auto& p : st.paths)
      EXPECT_EQ(p.bytes_retransmitted, 0u);
  }
}

TEST(PacketFlow, RaceFirstCopyWinsDuplicatesDroppedAndCounted) {
  DatagramPair pair(packet_config({}, Mode::race), {kDatagram, kDatagram});
  const Received got = exchange(pair, 300);
  EXPECT_FALSE(got.corrupt);
  ASSERT_EQ(got.order.size(), 300u);
  EXPECT_EQ(distinct(got), 300u);
  EXPECT_GT(pair.server().stats(pair.now()).recv_dups, 0u);
}

TEST(PacketFlow, BondSpreadsMessagesOverPaths) {
  DatagramPair pair(packet_config({}, Mode::bond), {kDatagram, kReliable});
  const Received got = exchange(pair, 2000);
  ASSERT_EQ(got.order.size(), 2000u);
  EXPECT_EQ(distinct(got), 2000u);
  const FlowStats s = pair.client().stats(pair.now());
  ASSERT_EQ(s.paths.size(), 2u);
  EXPECT_GT(s.paths[0].bytes_sent, 0u);
  EXPECT_GT(s.paths[1].bytes_sent, 0u);
}

TEST(PacketFlow, ReliableSurvivesThePathDying) {
  DatagramPair pair(packet_config({true, true}), {kDatagram, kReliable});
  bool dark = false;
  int seen = 0;
  pair.set_filter([&](const DatagramPair::Wire& w, const std::vector<wire::Frame>& frames) {
    if (w.path == 1 && std::any_of(frames.begin(), frames.end(), frame_is_message) && ++seen == 50)
      dark = true;
    return !(dark && w.path == 1);
  });
  const Received got = exchange(pair, 600, 30s);
  ASSERT_EQ(got.order.size(), 600u);
  EXPECT_EQ(distinct(got), 600u);
  EXPECT_TRUE(std::is_sorted(got.order.begin(), got.order.end()));
  EXPECT_GE(pair.client().migration_count(), 1u);
}

TEST(PacketFlow, MessageCallsOnAStreamFlowAnswerClosed) {
  FlowConfig c;
  auto flow = Flow::make_client(c, Time{});
  const std::vector<wire::Byte> m(10);
  EXPECT_EQ(flow->send_message(m, Time{}), MessageSendResult::closed);
  EXPECT_FALSE(flow->packet_options().has_value());
}

TEST(PacketFlow, PacketOpenRefusedWhereNotAcceptedOrUnknown) {
  FlowConfig server_config;  // accept_packet_flows false
  wire::Open open;
  open.path_id = 1;
  open.kind = wire::StreamKind::packet;
  wire::Status status = wire::Status::ok;
  EXPECT_EQ(Flow::make_server(server_config, open, 1, Time{}, status), nullptr);
  EXPECT_EQ(status, wire::Status::unsupported_kind);
  server_config.accept_packet_flows = true;
  open.kind = static_cast<wire::StreamKind>(9);
  EXPECT_EQ(Flow::make_server(server_config, open, 1, Time{}, status), nullptr);
  EXPECT_EQ(status, wire::Status::unsupported_kind);
  open.kind = wire::StreamKind::packet;
  open.options = 0x80;  // an option this version does not know
  EXPECT_EQ(Flow::make_server(server_config, open, 1, Time{}, status), nullptr);
  EXPECT_EQ(status, wire::Status::unsupported_kind);
}

}  // namespace
}  // namespace rendr::core
