// DatagramTransport: two ends exchanging numbered packets and ACK_RANGES through a lossy
// in-memory link; congestion gating, pacing, PTO probes, stats, ack-of-ack.
#include "core/recovery/datagram_transport.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <map>
#include <random>
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

RecoveryConfig with_congestion(CongestionAlgorithm algorithm) {
  RecoveryConfig config;
  config.congestion = algorithm;
  return config;
}

// A link between two transports that drops the packet numbers it is told to. CUBIC unless told:
// its window's answer to a loss is exact to state.
struct Link {
  explicit Link(const RecoveryConfig& config = with_congestion(CongestionAlgorithm::cubic))
      : a(config), b(config) {}
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

void steady_lossy_transfer(CongestionAlgorithm algorithm) {
  Link l(with_congestion(algorithm));
  std::uint64_t sent = 0;
  for (int round = 0; round < 200; ++round) {
    // 5 % loss, deterministic, over everything the round may send.
    for (PacketNumber pn = l.a.next_packet_number(); pn < l.a.next_packet_number() + 1000; ++pn)
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

TEST(DatagramTransport, SteadyLossyTransferKeepsRecoveringAndStaysBounded) {
  for (CongestionAlgorithm algorithm : {CongestionAlgorithm::cubic, CongestionAlgorithm::bbr}) {
    SCOPED_TRACE(static_cast<int>(algorithm));
    steady_lossy_transfer(algorithm);
  }
}

// A lossy, duplicating, reordering link in both directions, one tick per millisecond: the
// sender re-sends whatever the recovery declares lost, and once the link heals every byte has
// arrived, nothing is left in flight and the sent map is empty.
class RandomLink {
 public:
  explicit RandomLink(unsigned seed) : rng_(seed) {}

  void run(std::uint64_t total_bytes) {
    total_ = total_bytes;
    for (int tick = 0; tick < 60000 && !(done_sending() && a_.stats().bytes_in_flight == 0);
         ++tick) {
      healed_ = tick > 20000;  // after 20 s the link is clean, so the run must converge
      now_ = t0 + std::chrono::milliseconds(tick);
      deliver();
      send_data();
      send_ack();
      fire_timers();
    }
  }

  std::uint64_t received_contiguous() const {
    std::uint64_t end = 0;
    for (const auto& [from, to] : received_) {
      if (from > end) break;
      end = std::max(end, to);
    }
    return end;
  }
  DatagramTransport& sender() { return a_; }
  DatagramTransport& receiver() { return b_; }
  std::uint64_t dropped() const { return dropped_; }

 private:
  struct InFlight {
    Time arrives;
    bool to_receiver;
    PacketNumber pn;
    PacketContent content;
    wire::AckRanges ack;
  };

  bool chance(double p) { return !healed_ && std::uniform_real_distribution<>(0, 1)(rng_) < p; }
  void put(InFlight f) {
    if (chance(0.05)) {
      ++dropped_;
      return;
    }
    const int jitter = healed_ ? 0 : std::uniform_int_distribution<>(0, 15)(rng_);
    f.arrives = now_ + std::chrono::milliseconds(10 + jitter);
    if (chance(0.02)) link_.push_back(f);  // duplicated
    link_.push_back(std::move(f));
  }
  bool done_sending() const { return next_offset_ >= total_ && !lost_.pending(0); }

  void send_data() {
    for (int n = 0; n < 50; ++n) {
      if (a_.send_allowance() < kMss) return;
      if (auto at = a_.next_send_time(); at && *at > now_) return;
      PacketContent c;
      c.ack_eliciting = true;
      if (auto r = lost_.next(0)) {
        const std::uint64_t to = std::min(r->to, r->from + 1000);
        c.add_data(r->from, to);
        lost_.consumed(to);
      } else if (next_offset_ < total_) {
        const std::uint64_t to = std::min(total_, next_offset_ + 1000);
        c.add_data(next_offset_, to);
        next_offset_ = to;
      } else if (a_.probes_owed() == 0) {
        return;
      }  // else a probe with no data: a PING
      const PacketNumber pn = a_.on_packet_sent(kMss, c, now_);
      put(InFlight{{}, true, pn, c, {}});
    }
  }
  void send_ack() {
    if (!b_.ack_due(now_)) return;
    PacketContent c;
    InFlight f{{}, false, 0, {}, b_.make_ack(now_)};
    c.ack_largest = f.ack.largest();
    f.pn = b_.on_packet_sent(60, c, now_);
    put(std::move(f));
  }
  void deliver() {
    std::stable_sort(link_.begin(), link_.end(),
                     [](const InFlight& x, const InFlight& y) { return x.arrives < y.arrives; });
    while (!link_.empty() && link_.front().arrives <= now_) {
      InFlight f = std::move(link_.front());
      link_.pop_front();
      if (f.to_receiver) {
        if (b_.on_packet_received(f.pn, true, now_) == ReceivedPackets::Receipt::duplicate)
          continue;
        for (std::uint8_t i = 0; i < f.content.data_count; ++i)
          add_received(f.content.data[i].from, f.content.data[i].to);
      } else {
        a_.on_packet_received(f.pn, false, now_);
        ASSERT_FALSE(a_.on_ack_received(f.ack, now_, lost_).invalid);
      }
    }
  }
  void fire_timers() {
    for (DatagramTransport* t : {&a_, &b_}) {
      if (auto at = t->next_timer(); at && *at <= now_) t->on_timer(now_, lost_);
    }
  }
  void add_received(std::uint64_t from, std::uint64_t to) {
    auto& end = received_[from];
    end = std::max(end, to);
  }

  std::mt19937 rng_;
  Time now_ = t0;
  bool healed_ = false;
  std::uint64_t total_ = 0;
  std::uint64_t next_offset_ = 0;
  std::uint64_t dropped_ = 0;
  DatagramTransport a_;
  DatagramTransport b_;
  RetransmitQueue lost_;
  std::deque<InFlight> link_;
  std::map<std::uint64_t, std::uint64_t> received_;  // from -> to
};

TEST(DatagramTransport, RandomLossReorderingAndDuplicationNeverLoseData) {
  for (unsigned seed = 1; seed <= 30; ++seed) {
    RandomLink link(seed);
    link.run(2'000'000);
    ASSERT_EQ(link.received_contiguous(), 2'000'000u) << "seed " << seed;
    const DatagramPathStats s = link.sender().stats();
    EXPECT_EQ(s.bytes_in_flight, 0u) << "seed " << seed;
    EXPECT_GT(s.packets_lost, 0u) << "seed " << seed;
    EXPECT_GE(s.congestion_window, 2 * kMss) << "seed " << seed;
    EXPECT_GT(link.receiver().stats().duplicates_received, 0u) << "seed " << seed;
  }
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
