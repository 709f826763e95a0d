// Liveness: the dead-path deadline, corroboration by the other paths, suspect paths, pings.
#include <gtest/gtest.h>

#include "core/liveness.hpp"

namespace rendr::core {
namespace {

using namespace std::chrono_literals;

const Time t0{std::chrono::seconds(1000)};

struct Fixture {
  FlowConfig config;
  Mode mode = Mode::prime;
  Liveness liveness{config, mode};
  PathTable paths;

  explicit Fixture(int n) {
    for (PathId id = 1; id <= static_cast<PathId>(n); ++id) {
      paths[id].id = id;
      paths[id].state = PathState::up;
      paths[id].last_heard = t0;
    }
  }
};

TEST(Liveness, DeadlineFollowsTheRttWithinFloorAndCap) {
  Fixture f(1);
  Path& p = f.paths[1];
  EXPECT_EQ(f.liveness.deadline(p), f.config.handshake_timeout);  // no sample yet
  p.rtt.add_sample(1ms, t0);
  EXPECT_EQ(f.liveness.deadline(p), f.config.dead_floor);  // a LAN path: the floor decides
  f.mode = Mode::race;
  EXPECT_EQ(f.liveness.deadline(p), f.config.race_dead_floor);
  f.mode = Mode::prime;
  p.rtt = RttEstimator{};
  p.rtt.add_sample(10s, t0);
  EXPECT_EQ(f.liveness.deadline(p), f.config.dead_cap);
}

TEST(Liveness, SilenceIsDeathOnlyAfterAnUnansweredSend) {
  Fixture f(1);
  Path& p = f.paths[1];
  p.rtt.add_sample(1ms, t0);
  EXPECT_FALSE(f.liveness.dead(p, f.paths, true, t0 + 10s));  // nothing awaits an answer
  f.liveness.sent_eliciting(p, t0);
  EXPECT_FALSE(f.liveness.dead(p, f.paths, true, t0 + 39ms));
  EXPECT_TRUE(f.liveness.dead(p, f.paths, true, t0 + 40ms));  // alone: nothing can corroborate
}

// The corroborating PING owed on `q` goes out at `at` and its PONG comes back at `answered`.
void corroborating_ping_answered(Liveness& liveness, Path& q, Time at, Time answered) {
  ASSERT_TRUE(q.control.take(Control::ping));
  const wire::Ping ping = liveness.make_ping(q, at);
  ASSERT_TRUE(liveness.on_pong(q, wire::Pong{ping.id, ping.timestamp}, answered));
}

TEST(Liveness, HalfwayTheOtherPathsArePingedAndAnAnswerThereCorroborates) {
  Fixture f(2);
  Path& silent = f.paths[1];
  Path& other = f.paths[2];
  silent.rtt.add_sample(1ms, t0);
  f.liveness.sent_eliciting(silent, t0);
  EXPECT_FALSE(f.liveness.dead(silent, f.paths, true, t0 + 20ms));
  EXPECT_TRUE(other.control.owes(Control::ping));  // corroboration sought
  // A stream path is pinged itself too: its PONG answers everything sent before.
  EXPECT_TRUE(silent.control.owes(Control::ping));
  corroborating_ping_answered(f.liveness, other, t0 + 20ms, t0 + 25ms);
  EXPECT_TRUE(f.liveness.dead(silent, f.paths, true, t0 + 40ms));
}

// On TCP, bytes queued before the peer stalled keep arriving on its other paths long after:
// they do not prove the peer alive, only an answer to a probe sent since halfway does.
TEST(Liveness, BytesHeardElsewhereWithoutAnAnswerDoNotCorroborate) {
  Fixture f(2);
  Path& silent = f.paths[1];
  Path& other = f.paths[2];
  silent.rtt.add_sample(1ms, t0);
  silent.next_ping = t0 + 1h;
  f.liveness.sent_eliciting(silent, t0);
  EXPECT_FALSE(f.liveness.dead(silent, f.paths, true, t0 + 20ms));
  f.liveness.heard(other, false, f.paths, t0 + 30ms);  // backlog still draining
  f.liveness.heard(other, false, f.paths, t0 + 39ms);
  EXPECT_FALSE(f.liveness.dead(silent, f.paths, true, t0 + 40ms));
  EXPECT_EQ(silent.silence, SilenceStep::suspect);
  // The peer then answers the corroborating PING: the path is re-judged, and dies.
  corroborating_ping_answered(f.liveness, other, t0 + 20ms, t0 + 45ms);
  f.liveness.heard(other, false, f.paths, t0 + 45ms);
  EXPECT_EQ(f.liveness.recheck(), t0 + 45ms);
  EXPECT_TRUE(f.liveness.dead(silent, f.paths, true, t0 + 45ms));
}

// A PING outstanding on the other path when corroboration is sought left too early to count:
// its PONG brings a fresh PING, and only that one's answer corroborates.
TEST(Liveness, AnOlderOutstandingPingIsFollowedByAFreshOne) {
  Fixture f(2);
  Path& silent = f.paths[1];
  Path& other = f.paths[2];
  silent.rtt.add_sample(1ms, t0);
  silent.next_ping = t0 + 1h;
  other.control.owe(Control::ping);
  ASSERT_TRUE(other.control.take(Control::ping));
  const wire::Ping old_ping = f.liveness.make_ping(other, t0);
  f.liveness.sent_eliciting(silent, t0 + 1ms);
  EXPECT_FALSE(f.liveness.dead(silent, f.paths, true, t0 + 21ms));
  EXPECT_FALSE(other.control.owes(Control::ping));  // one is outstanding
  ASSERT_TRUE(f.liveness.on_pong(other, wire::Pong{old_ping.id, old_ping.timestamp}, t0 + 30ms));
  EXPECT_TRUE(other.control.owes(Control::ping));  // the fresh one
  EXPECT_FALSE(f.liveness.dead(silent, f.paths, true, t0 + 41ms));
  corroborating_ping_answered(f.liveness, other, t0 + 41ms, t0 + 43ms);
  EXPECT_TRUE(f.liveness.dead(silent, f.paths, true, t0 + 43ms));
}

// A datagram path's PING is answered by the ACK of its packet, and stays outstanding until its
// next one is due (a standby's: 250 ms later). One acknowledged before corroboration is sought
// must not hold the corroborating PING back until then (a blackholed active path died at
// ~200 ms instead of its 40 ms deadline): it goes at once.
TEST(Liveness, AnAcknowledgedDatagramPingDoesNotHoldBackTheCorroboratingOne) {
  Fixture f(2);
  Path& silent = f.paths[1];
  Path& other = f.paths[2];
  other.kind = TransportKind::datagram;
  silent.rtt.add_sample(1ms, t0);
  silent.next_ping = t0 + 1h;
  other.control.owe(Control::ping);
  ASSERT_TRUE(other.control.take(Control::ping));
  (void)f.liveness.make_ping(other, t0);
  other.next_ping = t0 + f.config.ping_interval_standby;
  other.ping_acked = true;  // its packet's ACK came (Flow::Impl::handle_ack_ranges)
  f.liveness.sent_eliciting(silent, t0 + 1ms);
  EXPECT_FALSE(f.liveness.dead(silent, f.paths, true, t0 + 21ms));
  EXPECT_TRUE(other.control.owes(Control::ping));  // now, not at next_ping
  ASSERT_TRUE(other.control.take(Control::ping));
  (void)f.liveness.make_ping(other, t0 + 21ms);
  Liveness::probe_answered(other, t0 + 21ms);  // the fresh one's ACK
  EXPECT_TRUE(f.liveness.dead(silent, f.paths, true, t0 + 41ms));
}

TEST(Liveness, APeerSilentEverywhereMakesThePathSuspectUntilTheGrace) {
  Fixture f(2);
  Path& silent = f.paths[1];
  silent.rtt.add_sample(1ms, t0);
  silent.next_ping = t0 + 1h;  // only the silence matters here
  f.liveness.sent_eliciting(silent, t0);
  EXPECT_FALSE(f.liveness.dead(silent, f.paths, true, t0 + 20ms));
  EXPECT_FALSE(f.liveness.dead(silent, f.paths, true, t0 + 40ms));  // the peer may be stalled
  EXPECT_EQ(silent.silence, SilenceStep::suspect);
  EXPECT_EQ(f.liveness.next_deadline(silent), t0 + f.config.silent_peer_grace);
  // The peer answers on the other path: the suspect path is re-judged at once, and dies.
  corroborating_ping_answered(f.liveness, f.paths[2], t0 + 20ms, t0 + 60ms);
  f.liveness.heard(f.paths[2], false, f.paths, t0 + 60ms);
  EXPECT_EQ(f.liveness.recheck(), t0 + 60ms);
  EXPECT_TRUE(f.liveness.dead(silent, f.paths, true, t0 + 60ms));
}

TEST(Liveness, HearingRestartsTheClockWhileSomethingIsStillOutstanding) {
  Fixture f(1);
  Path& p = f.paths[1];
  p.rtt.add_sample(1ms, t0);
  f.liveness.sent_eliciting(p, t0);
  f.liveness.heard(p, true, f.paths, t0 + 30ms);
  EXPECT_EQ(p.unanswered_since, t0 + 30ms);
  EXPECT_FALSE(f.liveness.dead(p, f.paths, true, t0 + 50ms));
  f.liveness.heard(p, false, f.paths, t0 + 50ms);
  EXPECT_EQ(p.unanswered_since, std::nullopt);
}

TEST(Liveness, PingsFollowTheCarryingAndStandbyIntervalsAndOnlyOneIsOutstanding) {
  Fixture f(2);
  f.liveness.schedule_ping(f.paths[1], f.config.ping_interval_active, t0);
  f.liveness.schedule_ping(f.paths[2], f.config.ping_interval_standby, t0);
  EXPECT_EQ(f.paths[1].next_ping, t0 + f.config.ping_interval_active);
  EXPECT_EQ(f.paths[2].next_ping, t0 + f.config.ping_interval_standby);
  ASSERT_TRUE(f.paths[1].control.take(Control::ping));
  const wire::Ping ping = f.liveness.make_ping(f.paths[1], t0);
  f.liveness.schedule_ping(f.paths[1], f.config.ping_interval_active, t0 + 1s);
  EXPECT_FALSE(f.paths[1].control.owes(Control::ping));  // one is outstanding
  EXPECT_FALSE(f.liveness.on_pong(f.paths[1], wire::Pong{ping.id + 1, ping.timestamp}, t0));
  EXPECT_TRUE(f.liveness.on_pong(f.paths[1], wire::Pong{ping.id, ping.timestamp}, t0 + 3ms));
  EXPECT_EQ(f.paths[1].rtt.srtt(), 3ms);
}

}  // namespace
}  // namespace rendr::core
