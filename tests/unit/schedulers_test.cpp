// Schedulers (prime, race, bond): which ranges of the payload go on which path.
#include <gtest/gtest.h>

#include <vector>

#include "core/bond_scheduler.hpp"
#include "core/prime_scheduler.hpp"
#include "core/race_scheduler.hpp"
#include "core/stream_payload.hpp"

namespace rendr::core {
namespace {

using namespace std::chrono_literals;

const Time t0{std::chrono::seconds(1000)};

// Records what a scheduler sends, within a byte budget, as the flow's batch would.
class RecordingSink final : public DataSink {
 public:
  RecordingSink(Path& path, std::size_t budget, std::size_t max_frame)
      : path_(path), budget_(budget), max_frame_(max_frame) {}
  bool has_room() const override { return budget_ > 0; }
  std::uint64_t send_data(std::uint64_t from, std::uint64_t to) override {
    const std::uint64_t end = std::min<std::uint64_t>(to, from + max_frame_);
    sent.push_back({from, end});
    budget_ -= std::min<std::size_t>(budget_, end - from);
    path_.stats.bytes_sent += end - from;
    path_.data_sent_end = std::max(path_.data_sent_end, end);
    path_.flight.on_sent(from, end, t0);
    return end;
  }
  void send_fin() override {
    fin = true;
    path_.fin_sent = true;
  }
  std::vector<RetransmitQueue::Range> sent;
  bool fin = false;

 private:
  Path& path_;
  std::size_t budget_;
  std::size_t max_frame_;
};

// A flow's worth of scheduler context: a stream with `written` bytes, the peer's window wide
// open, and up paths 1..n.
struct Fixture {
  FlowConfig config;
  StreamPayload payload;
  PathTable paths;
  PathId active = 1;
  FlowStats counters;
  std::optional<Time> probe_drain_since;
  SchedulerContext ctx{payload, paths, active, config, counters, probe_drain_since};

  Fixture(std::size_t written, int n, std::uint64_t peer_window = 1 << 30) : payload(config) {
    const std::vector<wire::Byte> bytes(written, 5);
    payload.write(bytes);
    payload.raise_peer_limit(peer_window);
    for (PathId id = 1; id <= static_cast<PathId>(n); ++id) {
      paths[id].id = id;
      paths[id].state = PathState::up;
      paths[id].rtt.add_sample(10ms, t0);
    }
  }
  RecordingSink sink(PathId id, std::size_t budget) {
    return RecordingSink(paths[id], budget, config.max_data_payload);
  }
};

TEST(PrimeScheduler, OnlyTheActivePathCarriesData) {
  Fixture f(100'000, 2);
  PrimeScheduler prime(f.ctx);
  EXPECT_TRUE(prime.wants_data(f.paths[1]));
  EXPECT_FALSE(prime.wants_data(f.paths[2]));
  auto standby = f.sink(2, 1 << 20);
  prime.fill(f.paths[2], standby);
  EXPECT_TRUE(standby.sent.empty());
  auto active = f.sink(1, 1 << 20);
  prime.fill(f.paths[1], active);
  ASSERT_FALSE(active.sent.empty());
  EXPECT_EQ(active.sent.front().from, 0u);
  EXPECT_EQ(active.sent.back().to, 100'000u);
  EXPECT_EQ(f.payload.next_new(), 100'000u);
}

TEST(PrimeScheduler, RetransmissionsGoFirstAndAreCounted) {
  Fixture f(200'000, 2);
  PrimeScheduler prime(f.ctx);
  f.payload.sent_new_to(150'000);
  f.paths[2].data_sent_end = 150'000;
  prime.on_path_lost(f.paths[2]);  // it carried unacknowledged bytes: replay all of them
  auto sink = f.sink(1, 1 << 20);
  prime.fill(f.paths[1], sink);
  ASSERT_FALSE(sink.sent.empty());
  EXPECT_EQ(sink.sent.front().from, 0u);  // the replay starts at the acknowledged offset
  EXPECT_EQ(f.counters.retransmitted_bytes, 150'000u);
  EXPECT_EQ(sink.sent.back().to, 200'000u);  // then the new bytes
}

TEST(PrimeScheduler, AQualityProbeHoldsNewDataButNotRetransmissions) {
  Fixture f(100'000, 1);
  PrimeScheduler prime(f.ctx);
  f.probe_drain_since = t0;
  EXPECT_FALSE(prime.wants_data(f.paths[1]));
  auto sink = f.sink(1, 1 << 20);
  prime.fill(f.paths[1], sink);
  EXPECT_TRUE(sink.sent.empty());
}

TEST(PrimeScheduler, FinFollowsTheLastByte) {
  Fixture f(1000, 1);
  f.payload.close();
  PrimeScheduler prime(f.ctx);
  auto sink = f.sink(1, 1 << 20);
  prime.fill(f.paths[1], sink);
  EXPECT_TRUE(sink.fin);
  EXPECT_FALSE(prime.wants_data(f.paths[1]));  // the FIN went out once
}

TEST(RaceScheduler, EveryPathSendsTheWholeStreamFromItsOwnCursor) {
  Fixture f(100'000, 2);
  RaceScheduler race(f.ctx);
  race.on_enter(Mode::prime);
  auto first = f.sink(1, 1 << 20);
  race.fill(f.paths[1], first);
  EXPECT_EQ(f.paths[1].send_cursor, 100'000u);
  EXPECT_TRUE(race.wants_data(f.paths[2]));  // path 2 has sent nothing yet
  auto second = f.sink(2, 1 << 20);
  race.fill(f.paths[2], second);
  EXPECT_EQ(second.sent.front().from, 0u);
  EXPECT_EQ(second.sent.back().to, 100'000u);
}

TEST(RaceScheduler, EnteringRaceRestartsEveryCursorAtTheAcknowledgedOffset) {
  Fixture f(100'000, 2);
  f.payload.sent_new_to(80'000);
  f.payload.on_ack(wire::Ack{30'000, 1 << 30, false});
  f.payload.retransmits().add(30'000, 80'000);
  f.paths[1].send_cursor = 70'000;
  RaceScheduler race(f.ctx);
  race.on_enter(Mode::prime);
  EXPECT_EQ(f.paths[1].send_cursor, 30'000u);
  EXPECT_EQ(f.paths[2].send_cursor, 30'000u);
  EXPECT_FALSE(f.payload.retransmits().pending(f.payload.acked()));  // moot in race
}

TEST(RaceScheduler, LeavingRaceResendsWhatTheNewCarrierHasNotSent) {
  Fixture f(100'000, 2);
  f.payload.sent_new_to(90'000);
  f.paths[1].send_cursor = 60'000;  // path 1 lags path 2
  PrimeScheduler prime(f.ctx);
  prime.on_enter(Mode::race);
  const auto r = f.payload.retransmits().next(f.payload.acked());
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->from, 60'000u);
  EXPECT_EQ(r->to, 90'000u);
}

// A datagram path's lost DATA: in race the path that lost it sends it again (its copy of the
// stream must be whole, since another path's copy may die with that path); in prime and bond
// the flow's queue takes it, for the active path or whichever path is admitted.
TEST(RaceScheduler, APathResendsWhatItLostItselfAndOnlyItself) {
  Fixture f(100'000, 2);
  RaceScheduler race(f.ctx);
  race.on_enter(Mode::prime);
  auto first = f.sink(1, 1 << 20);
  race.fill(f.paths[1], first);
  auto second = f.sink(2, 1 << 20);
  race.fill(f.paths[2], second);
  race.lost_data_queue(f.paths[2]).add(20'000, 30'000);  // path 2's packets with these died
  EXPECT_FALSE(race.wants_data(f.paths[1]));
  auto other = f.sink(1, 1 << 20);
  race.fill(f.paths[1], other);
  EXPECT_TRUE(other.sent.empty());
  EXPECT_TRUE(race.wants_data(f.paths[2]));
  auto own = f.sink(2, 1 << 20);
  race.fill(f.paths[2], own);
  ASSERT_FALSE(own.sent.empty());
  EXPECT_EQ(own.sent.front().from, 20'000u);
  EXPECT_EQ(own.sent.back().to, 30'000u);
  EXPECT_EQ(f.paths[2].stats.bytes_retransmitted, 10'000u);
  EXPECT_EQ(f.counters.retransmitted_bytes, 10'000u);
}

TEST(RaceScheduler, WhatADeadPathHadToRepairIsDropped) {
  Fixture f(100'000, 2);
  RaceScheduler race(f.ctx);
  race.on_enter(Mode::prime);
  race.lost_data_queue(f.paths[2]).add(20'000, 30'000);
  race.on_path_lost(f.paths[2]);  // path 1 carries its own copy
  EXPECT_FALSE(f.paths[2].lost_data.pending(0));
}

TEST(RaceScheduler, LeavingRaceKeepsWhatPathsHadToRepair) {
  Fixture f(100'000, 2);
  f.payload.sent_new_to(90'000);
  f.paths[1].send_cursor = 90'000;
  f.paths[2].lost_data.add(10'000, 20'000);
  PrimeScheduler prime(f.ctx);
  prime.on_enter(Mode::race);
  const auto r = f.payload.retransmits().next(f.payload.acked());
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->from, 10'000u);
  EXPECT_EQ(r->to, 20'000u);
  EXPECT_FALSE(f.paths[2].lost_data.pending(0));
}

TEST(PrimeScheduler, LostDataGoesToTheFlowsQueueForTheActivePath) {
  Fixture f(100'000, 2);
  PrimeScheduler prime(f.ctx);
  EXPECT_EQ(&prime.lost_data_queue(f.paths[2]), &f.payload.retransmits());
}

TEST(BondScheduler, APathsDeathResendsOnlyItsOwnRanges) {
  Fixture f(300'000, 2);
  BondScheduler bond(f.ctx);
  auto one = f.sink(1, 100'000);
  bond.fill(f.paths[1], one);
  auto two = f.sink(2, 100'000);
  bond.fill(f.paths[2], two);
  ASSERT_FALSE(two.sent.empty());
  const std::uint64_t two_from = two.sent.front().from;
  const std::uint64_t two_to = two.sent.back().to;
  bond.on_path_lost(f.paths[2]);
  const auto r = f.payload.retransmits().next(f.payload.acked());
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->from, two_from);
  EXPECT_EQ(r->to, two_to);
}

TEST(BondScheduler, AFarSlowerPathIsPassedOverAndCountedOncePerEpisode) {
  // The peer's 1 MiB window absorbs about 20 ms of lateness at the paths' assumed rates.
  Fixture f(1 << 20, 2, 1 << 20);
  f.paths[2].rtt = RttEstimator{};
  f.paths[2].rtt.add_sample(2s, t0);  // 2 s of RTT against 10 ms
  BondScheduler bond(f.ctx);
  EXPECT_TRUE(bond.wants_data(f.paths[1]));
  EXPECT_FALSE(bond.wants_data(f.paths[2]));
  EXPECT_FALSE(bond.wants_data(f.paths[2]));
  EXPECT_EQ(bond.stuck_skips(), 1u);
}

TEST(BondScheduler, AnIdlePathWithCreditHoldsBackAPathThatUsedItsShare) {
  Fixture f(1 << 20, 2);
  BondScheduler bond(f.ctx);
  // Path 2 asked and got nothing (its carrier is idle); path 1 spends its round's credit.
  auto idle = f.sink(2, 0);
  bond.fill(f.paths[2], idle);
  EXPECT_TRUE(f.paths[2].bond_idle);
  auto busy = f.sink(1, 1 << 20);
  bond.fill(f.paths[1], busy);
  std::uint64_t sent = 0;
  for (const auto& r : busy.sent)
    sent += r.to - r.from;
  EXPECT_LE(sent, 64u * 1024 + f.config.max_data_payload);  // one quantum, then held back
  EXPECT_FALSE(bond.wants_data(f.paths[1]));
}

}  // namespace
}  // namespace rendr::core
