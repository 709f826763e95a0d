// DatagramTransport: two ends exchanging numbered packets and ACK_RANGES through a lossy
// in-memory link; congestion gating, pacing, PTO probes, stats, ack-of-ack.
#include "core/recovery/datagram_transport.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <set>

namespace rendr::core::recovery {
namespace {

using namespace std::chrono_literals;

const Time t0{std::chrono::seconds(1000)};
constexpr std::size_t kMss = 1200;

PacketContent data_packet(std::uint64_t from, std::uint64_t to) {
  PacketContent c;
  c.ack_eliciting = true;
  c.add_data(from, to);
  return c;
}

TEST(DatagramTransport, IsTheDatagramKindAndReliableIsNot) {
  DatagramTransport d;
  EXPECT_EQ(d.kind(), TransportKind::datagram);
  EXPECT_EQ(d.datagram(), &d);
  ReliableTransport r;
  EXPECT_EQ(r.datagram(), nullptr);
}

TEST(DatagramTransport, CongestionWindowGatesSendingAndPtoProbesBypassIt) {
  DatagramTransport d;
  EXPECT_EQ(d.send_allowance(), 10 * kMss);
  for (std::uint64_t i = 0; i < 10; ++i) {
    EXPECT_EQ(d.next_packet_number(), i);
    EXPECT_EQ(d.on_packet_sent(kMss, data_packet(i * kMss, (i + 1) * kMss), t0), i);
  }
  EXPECT_EQ(d.send_allowance(), 0u);
  // Nothing comes back: the PTO fires and owes probes, which may go into the full window.
  const auto timer = d.next_timer();
  ASSERT_TRUE(timer);
  RetransmitQueue q;
  d.on_timer(*timer, q);
  EXPECT_EQ(d.probes_owed(), 2u);
  EXPECT_GE(d.send_allowance(), kMss);
  EXPECT_EQ(d.consecutive_ptos(), 1u);
  EXPECT_EQ(d.stats().pto_count, 1u);
}

TEST(DatagramTransport, InitialWindowLeavesInOneBurstThenPacingHoldsBack) {
  RecoveryConfig config;
  config.initial_window_packets = 40;
  DatagramTransport d(config);
  int sent = 0;
  while (d.send_allowance() >= kMss && !d.next_send_time() && sent < 100) {
    d.on_packet_sent(kMss, data_packet(0, 1), t0);
    ++sent;
  }
  EXPECT_EQ(sent, 10);  // the burst, not the whole 40-packet window
  ASSERT_TRUE(d.next_send_time());
  EXPECT_GT(*d.next_send_time(), t0);
}

// A link between two transports that drops the packet numbers it is told to.
struct Link {
  DatagramTransport a;  // sends DATA
  DatagramTransport b;  // acknowledges
  RetransmitQueue lost;
  std::set<PacketNumber> drop;
  Time now = t0;

  // a sends `n` DATA packets of kMss, b receives the ones not dropped.
  void send(int n) {
    for (int i = 0; i < n; ++i) {
      const PacketNumber pn = a.next_packet_number();
      a.on_packet_sent(kMss, data_packet(pn * kMss, (pn + 1) * kMss), now);
      if (!drop.count(pn)) b.on_packet_received(pn, true, now + 10ms);
    }
  }
  // b's ACK reaches a one RTT after the sends.
  LossDetector::AckOutcome ack() {
    now += 20ms;
    const wire::AckRanges frame = b.make_ack(now - 10ms);
    PacketContent carried;
    carried.ack_largest = frame.largest();
    b.on_packet_sent(60, carried, now - 10ms);
    return a.on_ack_received(frame, now, lost);
  }
};

TEST(DatagramTransport, LossIsDetectedFromTheAckAndItsDataQueued) {
  Link l;
  l.drop = {3};
  l.send(10);
  const auto out = l.ack();
  EXPECT_FALSE(out.invalid);
  EXPECT_EQ(out.newly_acked, 9u);
  const auto r = l.lost.next(0);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->from, 3 * kMss);
  EXPECT_EQ(r->to, 4 * kMss);
  const DatagramPathStats s = l.a.stats();
  EXPECT_EQ(s.packets_sent, 10u);
  EXPECT_EQ(s.packets_lost, 1u);
  EXPECT_EQ(s.congestion_window, 7 * kMss);  // CUBIC: 0.7 x 10 packets
  EXPECT_EQ(s.bytes_in_flight, 0u);
  EXPECT_EQ(s.srtt, 20ms);
  EXPECT_GT(s.pacing_rate, 0u);
  EXPECT_EQ(l.b.stats().packets_received, 9u);
}

TEST(DatagramTransport, DuplicatesAreCountedAndReportedToTheFlow) {
  DatagramTransport d;
  EXPECT_EQ(d.on_packet_received(0, true, t0), ReceivedPackets::Receipt::fresh);
  EXPECT_EQ(d.on_packet_received(0, true, t0), ReceivedPackets::Receipt::duplicate);
  EXPECT_EQ(d.stats().duplicates_received, 1u);
  EXPECT_EQ(d.largest_received(), 0u);
}

TEST(DatagramTransport, DelayedAckIsInTheTimerAndSendingItClearsIt) {
  DatagramTransport d;
  d.on_packet_received(0, true, t0);
  EXPECT_EQ(d.next_timer(), t0 + 25ms);
  EXPECT_FALSE(d.ack_due(t0));
  EXPECT_TRUE(d.ack_due(t0 + 25ms));
  PacketContent c;
  c.ack_largest = d.make_ack(t0 + 25ms).largest();
  d.on_packet_sent(40, c, t0 + 25ms);
  EXPECT_FALSE(d.ack_pending());
  EXPECT_EQ(d.next_timer(), std::nullopt);  // the ACK was not ack-eliciting: no PTO either
}

TEST(DatagramTransport, AcknowledgedAckShrinksTheRangesSent) {
  Link l;
  l.drop = {2, 5};
  l.send(8);
  // b's ACK rides in an ack-eliciting packet of b's; a acknowledges that packet.
  const wire::AckRanges first = l.b.make_ack(l.now + 10ms);
  EXPECT_EQ(first.ranges.size(), 3u);
  PacketContent carried = data_packet(0, 100);
  carried.ack_largest = first.largest();
  const PacketNumber pn = l.b.on_packet_sent(kMss, carried, l.now + 10ms);
  l.a.on_packet_received(pn, true, l.now + 20ms);
  wire::AckRanges back = l.a.make_ack(l.now + 20ms);
  RetransmitQueue q;
  EXPECT_FALSE(l.b.on_ack_received(back, l.now + 30ms, q).invalid);
  // Ranges up to that largest are no longer repeated.
  l.b.on_packet_received(8, true, l.now + 40ms);
  EXPECT_EQ(l.b.make_ack(l.now + 40ms).ranges, (std::vector<wire::PacketRange>{{6, 8}}));
}

TEST(DatagramTransport, SteadyLossyTransferKeepsRecoveringAndStaysBounded) {
  Link l;
  std::uint64_t sent = 0;
  for (int round = 0; round < 200; ++round) {
    // 5 % loss, deterministic.
    for (PacketNumber pn = l.a.next_packet_number(); pn < l.a.next_packet_number() + 100; ++pn)
      if (pn % 20 == 7) l.drop.insert(pn);
    int n = 0;
    while (l.a.send_allowance() >= kMss && n < 1000) {
      l.send(1);
      ++n;
    }
    sent += static_cast<std::uint64_t>(n);
    l.ack();
    if (auto t = l.a.next_timer(); t && *t <= l.now) l.a.on_timer(l.now, l.lost);
  }
  const DatagramPathStats s = l.a.stats();
  EXPECT_EQ(s.packets_sent, sent);
  EXPECT_GT(s.packets_lost, sent / 25);  // most of the 5 % found
  EXPECT_LE(s.packets_lost, sent / 20 + 1);
  EXPECT_GE(s.congestion_window, 2 * kMss);
  EXPECT_LT(l.a.stats().bytes_in_flight, 1000 * kMss);
}

TEST(DatagramTransport, DatagramSizeChangeScalesTheWindow) {
  DatagramTransport d;
  d.set_max_datagram_size(1452);
  EXPECT_EQ(d.max_datagram_size(), 1452u);
  EXPECT_EQ(d.send_allowance(), 10 * 1452u);
  EXPECT_EQ(d.stats().max_datagram_size, 1452u);
}

}  // namespace
}  // namespace rendr::core::recovery
