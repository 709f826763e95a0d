// core::Flow on datagram paths: packets within the path's payload and the congestion window,
// lost packets' DATA sent again, duplicates dropped, ACK_RANGES sent, death from the oldest
// unacknowledged packet (backed-off PTOs, dead floor), lost flow ACKs and PONGs, and flows
// mixing datagram and stream paths.
#include <gtest/gtest.h>

#include <map>
#include <utility>
#include <vector>

#include "datagram_harness.hpp"

namespace rendr::core {
namespace {

using test::DatagramPair;
constexpr TransportKind kDatagram = TransportKind::datagram;
constexpr TransportKind kReliable = TransportKind::reliable;

FlowConfig config_for(Mode mode = Mode::prime) {
  FlowConfig c;
  c.mode = mode;
  // A lost last "done" (CLOSE) costs its receiver this wait, as on any path.
  c.close_linger = 500ms;
  return c;
}

const PathStats& path_stats(const FlowStats& s, PathId id) {
  for (const auto& p : s.paths) {
    if (p.id == id) return p;
  }
  static const PathStats none;
  return none;
}

bool has_data(const std::vector<wire::Frame>& frames) {
  return std::any_of(frames.begin(), frames.end(),
                     [](const auto& f) { return std::holds_alternative<wire::Data>(f.body); });
}

TEST(FlowDatagram, TheServerPathTakesTheKindOfTheCarrierThatBroughtTheOpen) {
  DatagramPair pair(config_for(), {kDatagram});
  pair.settle(200ms);
  ASSERT_TRUE(pair.has_server());
  ASSERT_EQ(pair.client().state(), FlowState::established);
  ASSERT_EQ(pair.server().state(), FlowState::established);  // the PROOF came in a packet
  EXPECT_EQ(path_stats(pair.client().stats(pair.now()), 1).transport, kDatagram);
  EXPECT_EQ(path_stats(pair.server().stats(pair.now()), 1).transport, kDatagram);
  EXPECT_GT(path_stats(pair.server().stats(pair.now()), 1).packets_received, 0u);
}

TEST(FlowDatagram, PacketsStayWithinThePathPayloadAndAreNumberedInOrder) {
  DatagramPair pair(config_for(), {kDatagram});
  pair.settle(100ms);
  ASSERT_EQ(pair.transfer(300'000, 10s), 300'000u);
  EXPECT_FALSE(pair.corrupt());
  ASSERT_GT(pair.client_packets.size(), 250u);  // 300 kB in ~1.1 kB packets
  EXPECT_LE(pair.max_packet_frame_bytes, kDefaultPacketPayload);
  // Numbered 0, 1, 2, ... on the path, whatever poll they came from.
  for (std::size_t i = 0; i < pair.client_packets.size(); ++i)
    ASSERT_EQ(pair.client_packets[i].number, i);
  // And full: DATA packets use almost all of the payload.
  std::size_t full = 0;
  for (const auto& p : pair.client_packets)
    full += p.bytes + 64 > kDefaultPacketPayload ? 1 : 0;
  EXPECT_GT(full, 200u);
}

TEST(FlowDatagram, OnePollSendsNoMoreThanTheCongestionWindow) {
  DatagramPair pair(config_for(), {kDatagram});
  pair.settle(100ms);
  ASSERT_EQ(pair.client().state(), FlowState::established);
  std::vector<wire::Byte> bytes(1 << 20, 7);
  ASSERT_GT(pair.client().write(bytes, pair.now()), 500'000u);
  const std::uint64_t window = path_stats(pair.client().stats(pair.now()), 1).congestion_window;
  ASSERT_GT(window, 0u);
  wire::TransmitBatch out;
  out.reset(8 << 20);  // the carrier would take far more than the window
  ASSERT_TRUE(pair.client().poll_transmit(1, pair.now(), out));
  std::size_t bytes_sent = 0;
  for (const auto& p : out.packets())
    bytes_sent += p.bytes;
  EXPECT_LE(bytes_sent, window + kDefaultPacketPayload);  // the last packet may overshoot
  EXPECT_GT(bytes_sent, window / 2);
  EXPECT_LT(bytes_sent, 200'000u);
}

TEST(FlowDatagram, ALostPacketsDataIsSentAgain) {
  DatagramPair pair(config_for(), {kDatagram});
  pair.settle(100ms);
  int dropped = 0;
  pair.set_filter([&](const DatagramPair::Wire& w, const std::vector<wire::Frame>& frames) {
    if (w.dir == DatagramPair::Dir::to_server && has_data(frames) && dropped < 3 &&
        w.number % 7 == 3) {
      ++dropped;
      return false;
    }
    return true;
  });
  ASSERT_EQ(pair.transfer(100'000, 10s), 100'000u);
  EXPECT_FALSE(pair.corrupt());
  EXPECT_EQ(dropped, 3);
  const FlowStats s = pair.client().stats(pair.now());
  EXPECT_GE(path_stats(s, 1).packets_lost, 3u);
  EXPECT_GT(s.retransmitted_bytes, 0u);
  EXPECT_EQ(pair.client().state(), FlowState::closed);
}

TEST(FlowDatagram, ADuplicatedPacketIsDroppedWhole) {
  DatagramPair pair(config_for(), {kDatagram});
  pair.settle(100ms);
  std::vector<wire::Byte> bytes(2000, 1);
  ASSERT_EQ(pair.client().write(bytes, pair.now()), bytes.size());
  pair.duplicate_next(1, DatagramPair::Dir::to_server);
  pair.settle(100ms);
  const FlowStats s = pair.server().stats(pair.now());
  EXPECT_EQ(path_stats(s, 1).packets_duplicate, 1u);
  EXPECT_EQ(s.recv_dups, 0u);  // its DATA never reached the stream
  EXPECT_EQ(s.bytes_delivered, 2000u);
}

TEST(FlowDatagram, TheReceiverAcknowledgesPacketsWithAckRanges) {
  DatagramPair pair(config_for(), {kDatagram});
  pair.settle(100ms);
  std::uint64_t largest_acked = 0;
  std::uint64_t last_data_packet = 0;
  std::size_t ack_frames = 0;
  pair.set_filter([&](const DatagramPair::Wire& w, const std::vector<wire::Frame>& frames) {
    if (w.dir == DatagramPair::Dir::to_server && has_data(frames))
      last_data_packet = std::max(last_data_packet, w.number);
    for (const auto& f : frames) {
      if (const auto* a = std::get_if<wire::AckRanges>(&f.body);
          a != nullptr && w.dir == DatagramPair::Dir::to_client) {
        ++ack_frames;
        largest_acked = std::max(largest_acked, a->largest());
      }
    }
    return true;
  });
  ASSERT_EQ(pair.transfer(50'000, 5s), 50'000u);
  pair.settle(200ms);
  ASSERT_GT(ack_frames, 0u);
  // The client's packets are acknowledged up to its last DATA (after it come only ACK_RANGES,
  // which elicit nothing, and the final ACK and close notice, which the closing server does
  // not answer).
  const PathStats p = path_stats(pair.client().stats(pair.now()), 1);
  ASSERT_GT(last_data_packet, 0u);
  EXPECT_GE(largest_acked, last_data_packet);
  EXPECT_EQ(p.packets_lost, 0u);
}

TEST(FlowDatagram, ABlackholedPathDiesAfterConsecutiveProbeTimeoutsAndTheFlowFailsOver) {
  FlowConfig c = config_for();
  DatagramPair pair(c, {kDatagram, kDatagram});
  pair.settle(300ms);
  ASSERT_EQ(pair.client().path_state(1), PathState::up);
  ASSERT_EQ(pair.client().path_state(2), PathState::up);
  const PathId active = pair.client().active_path();
  ASSERT_NE(active, kNoPath);
  std::vector<wire::Byte> bytes(20'000, 3);
  pair.client().write(bytes, pair.now());
  pair.blackhole(active);
  const Time fault = pair.now();
  Time died{};
  std::uint32_t ptos_seen = 0;
  for (int i = 0; i < 3000 && pair.client().path_state(active) == PathState::up; ++i) {
    ptos_seen =
        std::max(ptos_seen, path_stats(pair.client().stats(pair.now()), active).consecutive_ptos);
    pair.settle(1ms);
    died = pair.now();
  }
  EXPECT_NE(pair.client().path_state(active), PathState::up);
  EXPECT_GE(ptos_seen, 2u);  // it went through PTOs first
  // 10 ms round trips: three backed-off PTOs take well under a second; the old silence floor
  // would have taken the whole handshake_timeout without an RTT sample.
  EXPECT_LT(died - fault, 1s);
  EXPECT_NE(pair.client().active_path(), active);
  EXPECT_EQ(pair.client().stats(pair.now()).last_down_cause, DownCause::silent);
  pair.blackhole(active, false);
  pair.settle(2s);
  EXPECT_EQ(pair.server().stats(pair.now()).bytes_delivered, 20'000u);
}

// Issue 9 (slow udpflow failover): an application that keeps writing into a blackholed path
// keeps sending packets, and the PTO timer restarts from each. Death is judged from the oldest
// packet left unacknowledged instead, so it comes as soon as on a stream path: the dead floor
// (the PTOs of a 0.2 ms round trip are far shorter), not once the congestion window is full.
TEST(FlowDatagram, APathThatKeepsSendingIntoABlackholeDiesOnItsOldestUnansweredPacket) {
  const FlowConfig c = config_for();
  DatagramPair pair(c, {kDatagram, kDatagram}, 100us);
  pair.settle(300ms);
  ASSERT_EQ(pair.client().path_state(1), PathState::up);
  ASSERT_EQ(pair.client().path_state(2), PathState::up);
  const PathId active = pair.client().active_path();
  ASSERT_NE(active, kNoPath);
  ASSERT_EQ(pair.transfer(4'000'000, 10s, false), 4'000'000u);  // the window opens wide
  ASSERT_GT(path_stats(pair.client().stats(pair.now()), active).congestion_window, 200'000u);
  pair.blackhole(active);
  const Time fault = pair.now();
  std::vector<wire::Byte> message(200, 9);
  for (int i = 0; i < 2000 && pair.client().path_state(active) == PathState::up; ++i) {
    pair.client().write(message, pair.now());  // a message every millisecond
    pair.settle(1ms);
  }
  ASSERT_NE(pair.client().path_state(active), PathState::up);
  const Duration died = pair.now() - fault;
  EXPECT_GE(died, c.dead_floor);
  EXPECT_LT(died, c.dead_floor + 20ms);
  EXPECT_EQ(pair.client().stats(pair.now()).last_down_cause, DownCause::silent);
  EXPECT_NE(pair.client().active_path(), active);
}

// The same floor gives a path with a short round trip the answer to its third probe: three
// backed-off PTOs of a 0.2 ms round trip pass in about 22 ms, and at 5 % loss the answers to
// two probes in a row are lost every few hundred PTOs (a 200 MiB transfer lost its path so,
// then waited seconds for it to come back).
TEST(FlowDatagram, TwoProbesUnansweredInARowDoNotKillAPathWithAShortRoundTrip) {
  const FlowConfig c = config_for();
  DatagramPair pair(c, {kDatagram}, 100us);
  pair.settle(100ms);
  ASSERT_EQ(pair.transfer(1'000'000, 5s, false), 1'000'000u);
  const Time outage = pair.now();
  pair.set_filter([&](const DatagramPair::Wire& w, const std::vector<wire::Frame>&) {
    return w.dir == DatagramPair::Dir::to_server || w.at < outage || w.at > outage + 15ms;
  });
  ASSERT_EQ(pair.transfer(3'000'000, 5s, false), 3'000'000u);
  const PathStats p = path_stats(pair.client().stats(pair.now()), 1);
  EXPECT_GE(p.pto_count, 3u);  // the third probe was answered
  EXPECT_EQ(p.down_count, 0u);
}

// A PING whose packet was acknowledged counts as answered even if its PONG is lost (a PONG
// elicits no ACK, so nothing would send it again): the flow wakes at the next PING's time and
// keeps pinging, so an idle path's blackhole is still found.
TEST(FlowDatagram, PingsGoOnWhenTheirPongsAreLost) {
  DatagramPair pair(config_for(), {kDatagram}, 100us);
  pair.settle(100ms);
  std::size_t pings = 0;
  pair.set_filter([&](const DatagramPair::Wire& w, const std::vector<wire::Frame>& frames) {
    bool pong = false;
    for (const auto& f : frames) {
      pings += std::holds_alternative<wire::Ping>(f.body) && w.dir == DatagramPair::Dir::to_server;
      pong = pong || std::holds_alternative<wire::Pong>(f.body);
    }
    return !pong;
  });
  pair.settle(1s);  // idle: a PING every ping_interval_active, up to idle_after
  EXPECT_GE(pings, 10u);
  EXPECT_EQ(pair.client().path_state(1), PathState::up);
}

TEST(FlowDatagram, AHealthyLossyPathDoesNotDie) {
  DatagramPair pair(config_for(), {kDatagram});
  pair.settle(100ms);
  std::uint64_t n = 0;
  pair.set_filter([&](const DatagramPair::Wire&, const std::vector<wire::Frame>&) {
    return ++n % 20 != 0;  // 5 % loss both ways
  });
  ASSERT_EQ(pair.transfer(500'000, 30s, false), 500'000u);
  EXPECT_FALSE(pair.corrupt());
  const PathStats p = path_stats(pair.client().stats(pair.now()), 1);
  EXPECT_EQ(p.down_count, 0u);
  EXPECT_GT(p.packets_lost, 0u);
}

// Issue 9 (udpflow hung at 5 % loss): the flow's ACK is the only thing that frees the send
// buffer and opens the peer's window. When the packet with the last one is lost and nothing
// else is left to send (the window, or the application, is done), it must still be sent again:
// its packet elicits an ACK, so the loss is found like any other.
TEST(FlowDatagram, ALostFlowAckIsSentAgain) {
  DatagramPair pair(config_for(), {kDatagram}, 100us);
  pair.settle(100ms);
  ASSERT_EQ(pair.server().state(), FlowState::established);
  constexpr std::uint64_t kBytes = 3000;
  int dropped = 0;
  pair.set_filter([&](const DatagramPair::Wire& w, const std::vector<wire::Frame>& frames) {
    if (w.dir != DatagramPair::Dir::to_client) return true;
    for (const auto& f : frames) {
      const auto* a = std::get_if<wire::Ack>(&f.body);
      if (a != nullptr && a->delivered == kBytes && dropped == 0) {
        ++dropped;
        return false;
      }
    }
    return true;
  });
  std::vector<wire::Byte> bytes(kBytes, 5);
  ASSERT_EQ(pair.client().write(bytes, pair.now()), bytes.size());
  pair.settle(500ms);
  EXPECT_EQ(dropped, 1);
  EXPECT_EQ(pair.server().stats(pair.now()).bytes_delivered, kBytes);
  EXPECT_EQ(pair.client().stats(pair.now()).bytes_acked, kBytes);
  EXPECT_EQ(pair.client().path_state(1), PathState::up);
}

// Issue 9 (udpflow stalls at 5 % loss): with random loss both ways, a long transfer keeps
// moving; no megabyte takes a second of virtual time (each takes tens of milliseconds). Before
// liveness gave a datagram path the dead floor, this run lost its only path to two unanswered
// probes in a row and stalled for 4 s.
TEST(FlowDatagram, ALongTransferAtFivePercentLossNeverStalls) {
  DatagramPair pair(config_for(), {kDatagram}, 100us);
  pair.settle(100ms);
  std::uint64_t state = 28;  // a linear congruential generator: the same losses every run
  pair.set_filter([&](const DatagramPair::Wire&, const std::vector<wire::Frame>&) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (state >> 33) % 100 >= 5;
  });
  constexpr std::uint64_t kStep = 1 << 20;
  Duration slowest{};
  for (std::uint64_t target = kStep; target <= 48 * kStep; target += kStep) {
    const Time start = pair.now();
    ASSERT_EQ(pair.transfer(target, 5s, false), target);
    slowest = std::max(slowest, pair.now() - start);
  }
  EXPECT_FALSE(pair.corrupt());
  EXPECT_LT(slowest, 1s);
  EXPECT_EQ(path_stats(pair.client().stats(pair.now()), 1).down_count, 0u);
}

// The same random loss with BBR on both ends (FlowConfig::datagram_recovery): the transfer
// completes intact and the path's stats show BBR's model (a bandwidth estimate) beside the
// losses it repaired.
TEST(FlowDatagram, ALongTransferAtFivePercentLossCompletesUnderBbr) {
  FlowConfig c = config_for();
  c.datagram_recovery.congestion = recovery::CongestionAlgorithm::bbr;
  DatagramPair pair(c, {kDatagram}, 100us);
  pair.settle(100ms);
  std::uint64_t state = 29;
  pair.set_filter([&](const DatagramPair::Wire&, const std::vector<wire::Frame>&) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (state >> 33) % 100 >= 5;
  });
  constexpr std::uint64_t kBytes = 16 << 20;
  ASSERT_EQ(pair.transfer(kBytes, 60s, false), kBytes);
  EXPECT_FALSE(pair.corrupt());
  const PathStats p = path_stats(pair.client().stats(pair.now()), 1);
  EXPECT_EQ(p.congestion_control, "bbr");
  EXPECT_GT(p.packets_lost, 100u);
  EXPECT_GT(p.bandwidth_estimate, 0u);
  EXPECT_GT(p.pacing_rate, 0u);
  EXPECT_EQ(p.down_count, 0u);
}

// PathOptions::congestion picks a path's controller over the flow's default.
TEST(FlowDatagram, APathsCongestionOptionOverridesTheFlowsDefault) {
  auto client = Flow::make_client(config_for(), Time{});
  PathOptions options;
  options.transport = kDatagram;
  options.congestion = recovery::CongestionAlgorithm::cubic;
  const PathId cubic_path = client->add_path(Time{}, options);
  options.congestion.reset();
  const PathId default_path = client->add_path(Time{}, options);
  client->on_path_connected(cubic_path, Time{});
  client->on_path_connected(default_path, Time{});
  const FlowStats s = client->stats(Time{});
  EXPECT_EQ(path_stats(s, cubic_path).congestion_control, "cubic");
  EXPECT_EQ(path_stats(s, default_path).congestion_control, "bbr");
}

// stats() per path: a datagram path's recovery figures; zeros on a stream path beside it.
TEST(FlowDatagram, PathStatsShowTheDatagramPathsRecovery) {
  // CUBIC: its slow-start threshold shows the losses (BBR's Startup does not end on loss).
  FlowConfig config = config_for();
  config.datagram_recovery.congestion = recovery::CongestionAlgorithm::cubic;
  DatagramPair pair(config, {kDatagram, kReliable});
  pair.settle(200ms);
  ASSERT_EQ(pair.client().active_path(), 1u);
  std::uint64_t n = 0;
  pair.set_filter([&](const DatagramPair::Wire& w, const std::vector<wire::Frame>& frames) {
    return !(w.datagram && w.dir == DatagramPair::Dir::to_server && has_data(frames) &&
             ++n % 10 == 0);
  });
  ASSERT_EQ(pair.transfer(200'000, 10s, false), 200'000u);
  const FlowStats s = pair.client().stats(pair.now());
  const PathStats& d = path_stats(s, 1);
  EXPECT_EQ(d.transport, kDatagram);
  EXPECT_GT(d.packets_sent, 170u);  // 200 kB in ~1.1 kB packets, and more
  EXPECT_GT(d.packets_lost, 5u);
  EXPECT_GT(d.congestion_events, 0u);
  EXPECT_LE(d.congestion_events, d.packets_lost);
  EXPECT_GT(d.bytes_retransmitted, 5'000u);
  EXPECT_GT(d.congestion_window, 0u);
  EXPECT_GT(d.slow_start_threshold, 0u);  // losses ended the first slow start
  EXPECT_LT(d.slow_start_threshold, 1'000'000u);
  EXPECT_EQ(d.persistent_congestions, 0u);  // one packet in ten: never a whole run
  EXPECT_GT(d.pacing_rate, 0u);
  EXPECT_EQ(d.max_datagram_size, 1200u);
  EXPECT_GT(d.srtt, Duration::zero());
  // The window counts what is in flight; nothing is once the transfer is acknowledged.
  std::vector<wire::Byte> more(50'000, 9);
  pair.client().write(more, pair.now());
  wire::TransmitBatch out;
  out.reset(1 << 20);
  pair.client().poll_transmit(1, pair.now(), out);
  EXPECT_GT(path_stats(pair.client().stats(pair.now()), 1).bytes_in_flight, 1'000u);
  const PathStats& r = path_stats(s, 2);
  EXPECT_EQ(r.transport, kReliable);
  EXPECT_EQ(r.packets_sent, 0u);
  EXPECT_EQ(r.congestion_window, 0u);
  EXPECT_EQ(r.slow_start_threshold, 0u);
  EXPECT_EQ(r.bytes_in_flight, 0u);
  EXPECT_EQ(r.max_datagram_size, 0u);
  EXPECT_EQ(r.bytes_retransmitted, 0u);
}

// Heavy loss leaves many gaps: the receiver reports them all, as many ranges as its packet
// holds (not only the highest few), and every ACK_RANGES still fits its packet.
TEST(FlowDatagram, AckRangesCarryEveryGapThePacketHolds) {
  DatagramPair pair(config_for(), {kDatagram});
  pair.settle(100ms);
  std::size_t most_ranges = 0;
  std::uint64_t n = 0;
  pair.set_filter([&](const DatagramPair::Wire& w, const std::vector<wire::Frame>& frames) {
    if (w.dir == DatagramPair::Dir::to_client) {
      for (const auto& f : frames) {
        if (const auto* a = std::get_if<wire::AckRanges>(&f.body))
          most_ranges = std::max(most_ranges, a->ranges.size());
      }
      EXPECT_LE(w.bytes.size(), kDefaultPacketPayload);
      return true;
    }
    // Every third DATA packet lost, and the client's ACK-only packets (the receiver forgets
    // the ranges the client has seen reported, so it would have few left to report).
    const bool ack_only = std::all_of(frames.begin(), frames.end(), [](const auto& f) {
      return std::holds_alternative<wire::AckRanges>(f.body);
    });
    return !ack_only && !(has_data(frames) && ++n % 3 == 0);
  });
  ASSERT_EQ(pair.transfer(400'000, 30s), 400'000u);
  EXPECT_FALSE(pair.corrupt());
  EXPECT_GT(most_ranges, 8u);
}

// Path-MTU discovery over a network that drops every datagram above its MTU (1400 bytes of
// UDP payload here): the flow probes up from 1200 with padded PING packets, grows its packets
// to what passes, never sends DATA in a probe, and the lost (too big) probes cost no
// congestion window.
TEST(FlowDatagram, PathMtuProbingGrowsPacketsToWhatThePathCarries) {
  constexpr std::size_t kMtu = 1400, kOverhead = 13 + 16;
  DatagramPair pair(config_for(), {kDatagram}, 5ms, 1452);
  std::size_t probes = 0, too_big = 0, largest_data_packet = 0;
  pair.set_filter([&](const DatagramPair::Wire& w, const std::vector<wire::Frame>& frames) {
    const bool probe = std::any_of(frames.begin(), frames.end(), [](const auto& f) {
      return std::holds_alternative<wire::Extension>(f.body);
    });
    if (probe) {
      ++probes;
      EXPECT_FALSE(has_data(frames));
    } else if (has_data(frames)) {
      largest_data_packet = std::max(largest_data_packet, w.bytes.size() + kOverhead);
    }
    if (w.bytes.size() + kOverhead <= kMtu) return true;
    ++too_big;
    return false;
  });
  EXPECT_EQ(pair.client().max_datagram_size(1), std::optional<std::size_t>(1200));
  pair.settle(100ms);
  ASSERT_EQ(pair.transfer(1'000'000, 30s), 1'000'000u);
  EXPECT_FALSE(pair.corrupt());
  const std::size_t size = pair.client().max_datagram_size(1).value_or(0);
  EXPECT_GT(size, kMtu - 20);  // the search stops within its precision
  EXPECT_LE(size, kMtu);
  EXPECT_GT(probes, 3u);
  EXPECT_GT(too_big, 0u);                 // some probes were too big, and only probes:
  EXPECT_LE(largest_data_packet, kMtu);   // DATA packets never exceeded the MTU
  EXPECT_GT(largest_data_packet, 1200u);  // and grew past the starting size
  const PathStats p = path_stats(pair.client().stats(pair.now()), 1);
  EXPECT_EQ(p.packets_lost, 0u);  // a probe lost to the MTU is not a lost packet
  EXPECT_EQ(p.max_datagram_size, size);
}

// Issue 9: the path's MTU shrinks mid-transfer (a route change): full-size datagrams now vanish
// while small ones pass. The flow must notice (black-hole detection: full-size packets lost
// while only smaller ones are acknowledged), fall back to the 1200-byte base, send the lost DATA
// again in packets that pass and search upward again, all without the path dying.
TEST(FlowDatagram, AShrunkenPathMtuIsDetectedAndThePathFallsBackWithoutDying) {
  constexpr std::size_t kOverhead = 13 + 16;
  std::size_t path_mtu = 1452;
  std::size_t largest_after_fallback = 0;  // DATA packets once the shrink was detected
  bool fell_back = false;
  DatagramPair pair(config_for(), {kDatagram}, 5ms, 1452);
  pair.set_filter([&](const DatagramPair::Wire& w, const std::vector<wire::Frame>& frames) {
    if (fell_back && w.dir == DatagramPair::Dir::to_server && has_data(frames))
      largest_after_fallback = std::max(largest_after_fallback, w.bytes.size() + kOverhead);
    return w.bytes.size() + kOverhead <= path_mtu;
  });
  pair.settle(100ms);
  ASSERT_EQ(pair.transfer(2'000'000, 30s, false), 2'000'000u);
  ASSERT_GT(pair.client().max_datagram_size(1).value_or(0), 1420u);  // probed up to ~1452

  path_mtu = 1300;
  const Time shrunk = pair.now();
  std::optional<Time> detected;
  for (int i = 0; i < 2000 && !detected; ++i) {
    pair.transfer(2'000'000 + 100'000 * (i + 1), 1ms, false);
    if (pair.client().max_datagram_size(1).value_or(0) <= 1200) detected = pair.now();
  }
  ASSERT_TRUE(detected.has_value()) << "the shrink was never detected";
  EXPECT_LT(*detected - shrunk, 1s);
  fell_back = true;
  // Data flows until the upward search has found the smaller MTU, then some more at that size
  // (how much data that search takes depends on how fast the controller fills the link).
  std::uint64_t total = 10'000'000;
  for (int i = 0; i < 600; ++i, total += 1'000'000) {
    ASSERT_EQ(pair.transfer(total, 10s, false), total);
    if (path_stats(pair.client().stats(pair.now()), 1).max_datagram_size > 1300u - 20) break;
  }
  total += 1'000'000;
  ASSERT_EQ(pair.transfer(total, 60s), total);
  EXPECT_FALSE(pair.corrupt());
  const PathStats p = path_stats(pair.client().stats(pair.now()), 1);
  EXPECT_EQ(p.down_count, 0u);  // never declared dead
  EXPECT_EQ(p.mtu_black_holes, 1u);
  // Searched upward again, to what the smaller MTU passes.
  EXPECT_GT(p.max_datagram_size, 1300u - 20);
  EXPECT_LE(p.max_datagram_size, 1300u);
  EXPECT_LE(largest_after_fallback, 1300u);
  EXPECT_GT(largest_after_fallback, 1200u);
}

// Black-hole detection must not take random loss for a shrunken MTU: full-size packets keep
// being acknowledged around the lost ones. (The search itself may stop lower than 1452: a probe
// lost three times to random loss counts as too big.)
TEST(FlowDatagram, RandomLossIsNotTakenForAShrunkenPathMtu) {
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE(seed);
    DatagramPair pair(config_for(), {kDatagram}, 1ms, 1452);
    pair.settle(100ms);
    std::uint64_t state = seed;
    pair.set_filter([&](const DatagramPair::Wire&, const std::vector<wire::Frame>&) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      return (state >> 33) % 100 >= 5;
    });
    ASSERT_EQ(pair.transfer(4'000'000, 30s, false), 4'000'000u);
    EXPECT_FALSE(pair.corrupt());
    for (const Flow* f : {&pair.client(), &pair.server()}) {
      const PathStats p = path_stats(f->stats(pair.now()), 1);
      EXPECT_EQ(p.mtu_black_holes, 0u);
      EXPECT_EQ(p.down_count, 0u);
    }
    EXPECT_GT(path_stats(pair.client().stats(pair.now()), 1).packets_lost, 20u);
  }
}

TEST(FlowDatagram, WithoutACeilingThePathKeepsItsStartingSize) {
  DatagramPair pair(config_for(), {kDatagram});
  pair.settle(100ms);
  ASSERT_EQ(pair.transfer(200'000, 10s), 200'000u);
  EXPECT_EQ(pair.client().max_datagram_size(1), std::optional<std::size_t>(1200));
  EXPECT_EQ(pair.max_packet_frame_bytes, kDefaultPacketPayload);
}

// Drops the first `count` packets towards `dir` whose first frame is a T.
template <class T>
DatagramPair::Filter drop_first(DatagramPair::Dir dir, int count, int& dropped) {
  return
      [dir, count, &dropped](const DatagramPair::Wire& w, const std::vector<wire::Frame>& frames) {
        if (w.dir != dir || frames.empty() || !std::holds_alternative<T>(frames.front().body) ||
            dropped >= count)
          return true;
        ++dropped;
        return false;
      };
}

// The handshake of a datagram path survives lost packets by resending, long before the
// handshake timeout would give up on the path and re-dial it.
TEST(FlowDatagram, ALostOpenIsSentAgain) {
  DatagramPair pair(config_for(), {kDatagram});
  int dropped = 0;
  pair.set_filter(drop_first<wire::Open>(DatagramPair::Dir::to_server, 2, dropped));
  pair.settle(1500ms);
  EXPECT_EQ(dropped, 2);
  ASSERT_TRUE(pair.has_server());
  EXPECT_EQ(pair.client().state(), FlowState::established);
  EXPECT_EQ(pair.server().state(), FlowState::established);
  EXPECT_EQ(pair.client_dials, 1u);  // the path never timed out
  ASSERT_EQ(pair.transfer(20'000, 5s), 20'000u);
}

TEST(FlowDatagram, ALostOpenAckIsAnsweredAgain) {
  DatagramPair pair(config_for(), {kDatagram});
  int dropped = 0;
  pair.set_filter(drop_first<wire::OpenAck>(DatagramPair::Dir::to_client, 1, dropped));
  pair.settle(600ms);
  EXPECT_EQ(dropped, 1);
  EXPECT_EQ(pair.client().state(), FlowState::established);
  ASSERT_TRUE(pair.has_server());
  EXPECT_EQ(pair.server().state(), FlowState::established);
  EXPECT_EQ(pair.client_dials, 1u);
  EXPECT_EQ(path_stats(pair.client().stats(pair.now()), 1).down_count, 0u);
  ASSERT_EQ(pair.transfer(20'000, 5s), 20'000u);
}

TEST(FlowDatagram, ALostProofIsSentAgain) {
  DatagramPair pair(config_for(), {kDatagram});
  int dropped = 0;
  pair.set_filter(drop_first<wire::Proof>(DatagramPair::Dir::to_server, 2, dropped));
  pair.settle(600ms);
  EXPECT_EQ(dropped, 2);
  ASSERT_TRUE(pair.has_server());
  EXPECT_EQ(pair.server().state(), FlowState::established);
  EXPECT_EQ(pair.client_dials, 1u);
  ASSERT_EQ(pair.transfer(20'000, 5s), 20'000u);
}

TEST(FlowDatagram, ALostJoinAndJoinAckAreSentAgain) {
  DatagramPair pair(config_for(), {kDatagram, kDatagram});
  int joins = 0, join_acks = 0;
  const auto drop_join = drop_first<wire::Join>(DatagramPair::Dir::to_server, 1, joins);
  const auto drop_join_ack = drop_first<wire::JoinAck>(DatagramPair::Dir::to_client, 1, join_acks);
  pair.set_filter([&](const DatagramPair::Wire& w, const std::vector<wire::Frame>& frames) {
    return drop_join(w, frames) && drop_join_ack(w, frames);
  });
  pair.settle(600ms);
  EXPECT_EQ(joins, 1);
  EXPECT_EQ(join_acks, 1);
  ASSERT_EQ(pair.client().path_state(2), PathState::up);
  EXPECT_EQ(pair.server().path_state(2), PathState::up);
  EXPECT_EQ(pair.client_dials, 2u);  // each path dialed once
  EXPECT_EQ(pair.server().stats(pair.now()).joins_rejected, 0u);
}

// Where the DATA of packets lost on `lossy` is sent again, per mode: the stream ranges dropped
// there, and for each path the ranges it sent after the first drop.
struct LossRecord {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> dropped;
  std::map<PathId, std::vector<std::pair<std::uint64_t, std::uint64_t>>> later;
  bool covered_on(PathId id, std::pair<std::uint64_t, std::uint64_t> range) const {
    const auto it = later.find(id);
    if (it == later.end()) return false;
    // Re-sent frames may be cut differently: every byte of the range must be in some of them.
    std::uint64_t at = range.first;
    for (bool grew = true; grew && at < range.second;) {
      grew = false;
      for (const auto& [from, to] : it->second) {
        if (from <= at && at < to) {
          at = to;
          grew = true;
        }
      }
    }
    return at >= range.second;
  }
};

// Drops every fifth DATA packet towards the server on `lossy` (once `armed`, if given) until
// `drops` were dropped, and records what the paths carry.
DatagramPair::Filter record_losses(PathId lossy, int drops, LossRecord& record,
                                   const bool* armed = nullptr) {
  return [lossy, drops, &record, armed, n = 0](const DatagramPair::Wire& w,
                                               const std::vector<wire::Frame>& frames) mutable {
    if (w.dir != DatagramPair::Dir::to_server || !has_data(frames)) return true;
    const bool drop = w.path == lossy && static_cast<int>(record.dropped.size()) < drops &&
                      (armed == nullptr || *armed) && ++n % 5 == 0;
    for (const auto& f : frames) {
      if (const auto* d = std::get_if<wire::Data>(&f.body)) {
        const std::pair<std::uint64_t, std::uint64_t> range{d->offset,
                                                            d->offset + d->payload.size()};
        if (drop) {
          record.dropped.push_back(range);
        } else if (!record.dropped.empty()) {
          record.later[w.path].push_back(range);
        }
      }
    }
    return !drop;
  };
}

// Race: every path carries the whole stream, so a path repairs its own copy: what its lost
// packets carried goes out again on it, not on whichever path pulls first, whose copy may die
// with it. Here path 1 goes dark towards the server mid-transfer (its window still open) just
// before path 2 loses packets: re-sent on path 1, their bytes would die with it, and race
// replays nothing for a dead path.
TEST(FlowDatagram, RaceResendsAPathsLostDataOnThatPath) {
  DatagramPair pair(config_for(Mode::race), {kDatagram, kDatagram});
  pair.settle(200ms);
  ASSERT_EQ(pair.client().path_state(1), PathState::up);
  ASSERT_EQ(pair.client().path_state(2), PathState::up);
  LossRecord record;
  bool dark = false;
  auto losses = record_losses(2, 3, record, &dark);
  pair.set_filter([&](const DatagramPair::Wire& w, const std::vector<wire::Frame>& frames) {
    if (w.path == 1 && w.dir == DatagramPair::Dir::to_server) {
      for (const auto& f : frames) {
        if (const auto* d = std::get_if<wire::Data>(&f.body); d != nullptr && d->offset >= 60'000)
          dark = true;
      }
      if (dark) return false;
    }
    return losses(w, frames);
  });
  ASSERT_EQ(pair.transfer(200'000, 10s), 200'000u);
  EXPECT_FALSE(pair.corrupt());
  ASSERT_EQ(record.dropped.size(), 3u);
  for (const auto& range : record.dropped)
    EXPECT_TRUE(record.covered_on(2, range)) << "[" << range.first << ", " << range.second << ")";
  EXPECT_GT(path_stats(pair.client().stats(pair.now()), 2).bytes_retransmitted, 0u);
}

// Prime: lost DATA goes out again on the active path, never on a standby.
TEST(FlowDatagram, PrimeResendsLostDataOnTheActivePath) {
  DatagramPair pair(config_for(Mode::prime), {kDatagram, kDatagram});
  pair.settle(200ms);
  const PathId active = pair.client().active_path();
  const PathId standby = active == 1 ? 2 : 1;
  LossRecord record;
  pair.set_filter(record_losses(active, 3, record));
  ASSERT_EQ(pair.transfer(200'000, 10s), 200'000u);
  ASSERT_EQ(record.dropped.size(), 3u);
  for (const auto& range : record.dropped)
    EXPECT_TRUE(record.covered_on(active, range));
  EXPECT_TRUE(record.later[standby].empty());
  const FlowStats s = pair.client().stats(pair.now());
  EXPECT_GT(path_stats(s, active).bytes_retransmitted, 0u);
  EXPECT_EQ(path_stats(s, standby).bytes_retransmitted, 0u);
}

// Bond: lost DATA goes out again on any path with room, and the stream is whole.
TEST(FlowDatagram, BondResendsLostDataOnSomePath) {
  DatagramPair pair(config_for(Mode::bond), {kDatagram, kDatagram});
  pair.settle(200ms);
  LossRecord record;
  pair.set_filter(record_losses(1, 3, record));
  ASSERT_EQ(pair.transfer(300'000, 10s), 300'000u);
  EXPECT_FALSE(pair.corrupt());
  ASSERT_EQ(record.dropped.size(), 3u);
  for (const auto& range : record.dropped)
    EXPECT_TRUE(record.covered_on(1, range) || record.covered_on(2, range));
  EXPECT_GT(pair.client().stats(pair.now()).retransmitted_bytes, 0u);
}

class FlowDatagramModes : public ::testing::TestWithParam<Mode> {};

TEST_P(FlowDatagramModes, MixedDatagramAndStreamPathsDeliverEveryByteDespiteLoss) {
  DatagramPair pair(config_for(GetParam()), {kDatagram, kReliable});
  pair.settle(200ms);
  ASSERT_EQ(pair.client().path_state(1), PathState::up);
  ASSERT_EQ(pair.client().path_state(2), PathState::up);
  std::uint64_t n = 0;
  pair.set_filter([&](const DatagramPair::Wire& w, const std::vector<wire::Frame>&) {
    return !w.datagram || ++n % 10 != 0;  // 10 % loss on the datagram path
  });
  ASSERT_EQ(pair.transfer(400'000, 30s), 400'000u);
  EXPECT_FALSE(pair.corrupt());
  EXPECT_EQ(pair.client().state(), FlowState::closed);
  EXPECT_EQ(path_stats(pair.server().stats(pair.now()), 2).transport, kReliable);
}

TEST_P(FlowDatagramModes, MigratingBetweenDatagramAndStreamPathsLosesNothing) {
  DatagramPair pair(config_for(GetParam()), {kDatagram, kReliable});
  pair.settle(200ms);
  pair.transfer(100'000, 2s, false);
  ASSERT_TRUE(pair.client().migrate(2, pair.now()));
  pair.transfer(200'000, 2s, false);
  ASSERT_TRUE(pair.client().migrate(1, pair.now()));
  ASSERT_EQ(pair.transfer(300'000, 10s), 300'000u);
  EXPECT_FALSE(pair.corrupt());
}

INSTANTIATE_TEST_SUITE_P(AllModes, FlowDatagramModes,
                         ::testing::Values(Mode::prime, Mode::race, Mode::bond),
                         [](const auto& info) { return std::string(to_string(info.param)); });

}  // namespace
}  // namespace rendr::core
