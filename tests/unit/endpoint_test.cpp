// core::Endpoint: first-frame routing, limits, eviction order and counters, in virtual time.
#include "core/endpoint.hpp"

#include <gtest/gtest.h>

namespace rendr::core {
namespace {

using namespace std::chrono_literals;

// A client flow driven by hand: its paths "connect" at once and their first frames are taken
// as they would be written.
class Client {
 public:
  // Path 1 is added; connect(1, now) gives its OPEN.
  explicit Client(Time now) : flow_(Flow::make_client(FlowConfig{}, now)) { flow_->add_path(now); }

  // Adds a path, connects it and returns its first frame (OPEN before the OPEN_ACK, else JOIN).
  wire::Frame connect_new_path(Time now) {
    const PathId id = flow_->add_path(now);
    return connect(id, now);
  }
  wire::Frame connect(PathId id, Time now) {
    while (flow_->poll_event()) {
    }
    flow_->on_path_connected(id, now);
    wire::TransmitBatch out(64 * 1024);
    EXPECT_TRUE(flow_->poll_transmit(id, now, out));
    wire::Frame first;
    EXPECT_EQ(wire::decode(out.frames()[0].header_bytes(), first).error, wire::DecodeError::none);
    return first;
  }
  // The server flow's OPEN_ACK reaches the client on path 1, and the client's PROOF the server.
  void establish(Flow& server, Time now) {
    exchange(server, 1, 1, now);
    ASSERT_EQ(flow_->state(), FlowState::established);
    ASSERT_TRUE(server.authenticated());
  }
  // A JOIN the server verified as `provisional`: its JOIN_ACK (challenge) reaches the client on
  // `path`, and the client's PROOF attaches the path.
  void prove_join(Flow& server, PathId path, PathId provisional, Time now) {
    exchange(server, provisional, path, now);
  }
  Flow& flow() { return *flow_; }

 private:
  // What the server writes on `server_path` goes to the client on `path`, and back.
  void exchange(Flow& server, PathId server_path, PathId path, Time now) {
    deliver(server, server_path, *flow_, path, now);
    deliver(*flow_, path, server, server_path, now);
  }
  static void deliver(Flow& from, PathId from_path, Flow& to, PathId to_path, Time now) {
    wire::TransmitBatch out(64 * 1024);
    ASSERT_TRUE(from.poll_transmit(from_path, now, out));
    for (const auto& f : out.frames()) {
      wire::Frame frame;
      ASSERT_EQ(wire::decode(f.header_bytes(), frame).error, wire::DecodeError::none);
      to.on_frame(to_path, frame, {}, now);
    }
  }

 public:
 private:
  std::unique_ptr<Flow> flow_;
};

class EndpointTest : public ::testing::Test {
 protected:
  void make(EndpointLimits limits) { endpoint_ = std::make_unique<Endpoint>(FlowConfig{}, limits); }

  // A new client's OPEN on a new connection; the created flow is kept (as its owner would).
  Admission open_new(Time at) {
    clients_.push_back(std::make_unique<Client>(at));
    const wire::Frame open = clients_.back()->connect(1, at);
    return endpoint_->on_first_frame(endpoint_->on_connection(at), open, at);
  }
  // An OPEN whose client then proves the key (as most do), unless `prove` is false.
  FlowRef open_ok(Time at, bool prove = true) {
    Admission a = open_new(at);
    EXPECT_EQ(a.kind, Admission::Kind::open);
    const FlowRef ref = a.flow;
    servers_.push_back(std::move(a.created));
    if (prove) report(ref, 1, false, at);
    return ref;
  }
  void report(const FlowRef& f, std::size_t paths, bool heard, Time at, bool authenticated = true) {
    endpoint_->on_flow_report(f, {++versions_[f.serial], paths, heard, authenticated}, at);
  }
  std::vector<EndpointAction> actions() {
    std::vector<EndpointAction> all;
    while (auto a = endpoint_->poll_action())
      all.push_back(*a);
    return all;
  }
  static bool drops(const std::vector<EndpointAction>& all, const FlowRef& f) {
    for (const auto& a : all) {
      if (a.kind == EndpointAction::Kind::drop_flow && a.flow.id == f.id &&
          a.flow.serial == f.serial)
        return true;
    }
    return false;
  }

  Time t0_{std::chrono::seconds(100)};
  std::unique_ptr<Endpoint> endpoint_;
  std::vector<std::unique_ptr<Client>> clients_;
  std::vector<std::unique_ptr<Flow>> servers_;
  std::map<std::uint64_t, std::uint64_t> versions_;
};

TEST_F(EndpointTest, OpenCreatesAFlowAndItsRepeatIsRoutedToIt) {
  make({});
  Client client(t0_);
  const wire::Frame open = client.connect(1, t0_);
  Admission first = endpoint_->on_first_frame(endpoint_->on_connection(t0_), open, t0_);
  ASSERT_EQ(first.kind, Admission::Kind::open);
  ASSERT_NE(first.created, nullptr);
  EXPECT_EQ(first.created->flow_id(), std::get<wire::Open>(open.body).flow_id);

  Admission again = endpoint_->on_first_frame(endpoint_->on_connection(t0_), open, t0_);
  ASSERT_EQ(again.kind, Admission::Kind::repeated_open);
  EXPECT_EQ(again.flow.serial, first.flow.serial);
  const wire::Frame answer = endpoint_->answer_repeated_open(
      first.created->open_ack_for_repeated_open(std::get<wire::Open>(open.body), t0_));
  EXPECT_EQ(std::get<wire::OpenAck>(answer.body).status, wire::Status::ok);

  const EndpointStats s = endpoint_->stats();
  EXPECT_EQ(s.connections, 2u);
  EXPECT_EQ(s.flows_opened, 1u);
  EXPECT_EQ(s.duplicate_opens, 1u);
  EXPECT_EQ(s.live_flows, 1u);
  EXPECT_EQ(s.unaccepted_flows, 1u);
  EXPECT_EQ(s.half_open, 0u);
}

TEST_F(EndpointTest, AnythingButOpenOrJoinFirstIsDroppedAndCounted) {
  make({});
  const Admission a =
      endpoint_->on_first_frame(endpoint_->on_connection(t0_), {0, wire::Ping{}}, t0_);
  EXPECT_EQ(a.kind, Admission::Kind::drop);
  EXPECT_EQ(endpoint_->stats().rejected_malformed, 1u);
}

// A listener that takes only streams refuses a packet flow's OPEN, and one of an unknown kind,
// with a status that says so; the flow table is untouched and a stream OPEN still gets through.
TEST_F(EndpointTest, OpenOfAKindTheListenerDoesNotTakeIsRefusedClearly) {
  make({});
  for (std::uint8_t kind : {1, 9}) {
    wire::Open open;
    open.flow_id[0] = kind;
    open.path_id = 1;
    open.kind = static_cast<wire::StreamKind>(kind);
    const Admission a = endpoint_->on_first_frame(endpoint_->on_connection(t0_), {0, open}, t0_);
    ASSERT_EQ(a.kind, Admission::Kind::refuse);
    EXPECT_EQ(std::get<wire::OpenAck>(a.answer->body).status, wire::Status::unsupported_kind);
  }
  EXPECT_EQ(endpoint_->stats().rejected_malformed, 2u);
  EXPECT_EQ(endpoint_->stats().live_flows, 0u);
  Client client(t0_);
  EXPECT_EQ(
      endpoint_->on_first_frame(endpoint_->on_connection(t0_), client.connect(1, t0_), t0_).kind,
      Admission::Kind::open);
}

TEST_F(EndpointTest, JoinForAnUnknownFlowIsRefusedAndCounted) {
  make({});
  const Admission a =
      endpoint_->on_first_frame(endpoint_->on_connection(t0_), {0, wire::Join{.path_id = 2}}, t0_);
  ASSERT_EQ(a.kind, Admission::Kind::refuse);
  EXPECT_EQ(std::get<wire::JoinAck>(a.answer->body).status, wire::Status::unknown_flow);
  EXPECT_EQ(endpoint_->stats().rejected_unknown_flow, 1u);
}

TEST_F(EndpointTest, FullHalfOpenTableEvictsTheOldestNotTheNewcomer) {
  make({.max_half_open = 2});
  const ConnectionId first = endpoint_->on_connection(t0_);
  const ConnectionId second = endpoint_->on_connection(t0_ + 1ms);
  EXPECT_TRUE(actions().empty());
  const ConnectionId third = endpoint_->on_connection(t0_ + 2ms);
  const auto evicted = actions();
  ASSERT_EQ(evicted.size(), 1u);
  EXPECT_EQ(evicted[0].kind, EndpointAction::Kind::close_connection);
  EXPECT_EQ(evicted[0].connection, first);
  EXPECT_EQ(endpoint_->stats().evicted_half_open, 1u);
  EXPECT_EQ(endpoint_->stats().half_open, 2u);
  // The evicted connection's late first frame is not judged; the newcomer's is.
  Client client(t0_);
  const wire::Frame open = client.connect(1, t0_);
  EXPECT_EQ(endpoint_->on_first_frame(first, open, t0_).kind, Admission::Kind::drop);
  EXPECT_EQ(endpoint_->on_first_frame(third, open, t0_).kind, Admission::Kind::open);
  endpoint_->on_connection_lost(second, false);
  EXPECT_EQ(endpoint_->stats().half_open, 0u);
}

TEST_F(EndpointTest, SilentConnectionIsClosedAtTheFirstFrameTimeout) {
  make({.first_frame_timeout = 2s});
  const ConnectionId c = endpoint_->on_connection(t0_);
  ASSERT_EQ(endpoint_->next_deadline(), t0_ + 2s);
  endpoint_->on_timer(t0_ + 2s - 1ms);
  EXPECT_TRUE(actions().empty());
  endpoint_->on_timer(t0_ + 2s);
  const auto closed = actions();
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].connection, c);
  EXPECT_EQ(endpoint_->stats().rejected_timeout, 1u);
  EXPECT_EQ(endpoint_->next_deadline(), std::nullopt);
}

TEST_F(EndpointTest, FlowSilentAfterItsOpenIsDroppedSecondsAfterLosingItsPath) {
  make({.abandoned_flow_timeout = 3s});
  const FlowRef silent = open_ok(t0_);
  const FlowRef talking = open_ok(t0_);
  report(talking, 1, true, t0_ + 10ms);
  // With a path, nothing expires.
  EXPECT_EQ(endpoint_->next_deadline(), std::nullopt);
  report(silent, 0, false, t0_ + 1s);
  report(talking, 0, true, t0_ + 1s);
  EXPECT_EQ(endpoint_->next_deadline(), t0_ + 4s);
  endpoint_->on_timer(t0_ + 4s - 1ms);
  EXPECT_TRUE(actions().empty());
  endpoint_->on_timer(t0_ + 4s);
  const auto dropped = actions();
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_TRUE(drops(dropped, silent));
  // The flow that spoke after its OPEN keeps its migration budget.
  endpoint_->on_timer(t0_ + 60s);
  EXPECT_TRUE(actions().empty());
  EXPECT_EQ(endpoint_->stats().dropped_abandoned, 1u);
  EXPECT_EQ(endpoint_->stats().live_flows, 1u);
  // A dropped flow's id routes nowhere until its owner says it finished.
  const Admission join =
      endpoint_->on_first_frame(endpoint_->on_connection(t0_ + 5s),
                                {0, wire::Join{.flow_id = silent.id, .path_id = 1}}, t0_ + 5s);
  EXPECT_EQ(join.kind, Admission::Kind::refuse);
  endpoint_->on_flow_finished(silent);
  EXPECT_EQ(endpoint_->stats().live_flows, 1u);
}

TEST_F(EndpointTest, PathBackInTimeCancelsTheDrop) {
  make({.abandoned_flow_timeout = 3s});
  const FlowRef f = open_ok(t0_);
  report(f, 0, false, t0_ + 1s);
  report(f, 1, false, t0_ + 2s);
  endpoint_->on_timer(t0_ + 10s);
  EXPECT_TRUE(actions().empty());
  // Reports that crossed on their way: an older one changes nothing.
  endpoint_->on_flow_report(f, {1, 0, false}, t0_ + 11s);
  EXPECT_EQ(endpoint_->next_deadline(), std::nullopt);
}

TEST_F(EndpointTest, FullFlowTableEvictsPathlessFlowsNeverHeardFirstThenOldestPathless) {
  make({.max_flows = 3});
  const FlowRef heard = open_ok(t0_);
  const FlowRef silent = open_ok(t0_);
  const FlowRef with_path = open_ok(t0_);
  report(heard, 0, true, t0_ + 1s);    // pathless longest, but spoke after its OPEN
  report(silent, 0, false, t0_ + 2s);  // pathless, never spoke
  report(with_path, 1, true, t0_ + 2s);
  const FlowRef d = open_ok(t0_ + 3s);
  auto evicted = actions();
  ASSERT_EQ(evicted.size(), 1u);
  EXPECT_TRUE(drops(evicted, silent));
  const FlowRef e = open_ok(t0_ + 4s);
  evicted = actions();
  ASSERT_EQ(evicted.size(), 1u);
  EXPECT_TRUE(drops(evicted, heard));
  EXPECT_EQ(endpoint_->stats().evicted_flows, 2u);
  // Every flow left has a path: the next OPEN is refused, and nothing is evicted.
  const Admission refused = open_new(t0_ + 5s);
  ASSERT_EQ(refused.kind, Admission::Kind::refuse);
  EXPECT_EQ(std::get<wire::OpenAck>(refused.answer->body).status, wire::Status::capacity);
  EXPECT_TRUE(actions().empty());
  EXPECT_EQ(endpoint_->stats().rejected_capacity, 1u);
  EXPECT_EQ(endpoint_->stats().live_flows, 3u);
  (void)d;
  (void)e;
}

TEST_F(EndpointTest, AcceptQueueIsBoundedAndAcceptedFlowsMakeRoom) {
  make({.max_unaccepted = 2});
  const FlowRef a = open_ok(t0_);
  const FlowRef b = open_ok(t0_);
  const Admission refused = open_new(t0_ + 1s);
  ASSERT_EQ(refused.kind, Admission::Kind::refuse);
  EXPECT_EQ(std::get<wire::OpenAck>(refused.answer->body).status, wire::Status::capacity);
  EXPECT_EQ(endpoint_->stats().rejected_accept_queue, 1u);
  EXPECT_EQ(endpoint_->stats().rejected_capacity, 0u);

  endpoint_->on_flow_accepted(a);
  EXPECT_EQ(endpoint_->stats().unaccepted_flows, 1u);
  const FlowRef c = open_ok(t0_ + 2s);
  // Full again. An accepted pathless flow does not make room in the accept queue; an
  // unaccepted pathless one does.
  report(a, 0, false, t0_ + 3s);
  EXPECT_EQ(open_new(t0_ + 4s).kind, Admission::Kind::refuse);
  report(b, 0, false, t0_ + 5s);
  open_ok(t0_ + 6s);
  const auto evicted = actions();
  ASSERT_EQ(evicted.size(), 1u);
  EXPECT_TRUE(drops(evicted, b));
  EXPECT_EQ(endpoint_->stats().rejected_accept_queue, 2u);
  (void)c;
}

// Anyone can OPEN without a key and hold the connection: such flows must not lock genuine
// clients out. With the tables full, the oldest flow still awaiting its PROOF makes room.
TEST_F(EndpointTest, FlowsAwaitingTheirProofMakeRoomOldestFirst) {
  make({.max_unaccepted = 2});
  const FlowRef stranger1 = open_ok(t0_, false);
  const FlowRef stranger2 = open_ok(t0_ + 1s, false);
  const FlowRef genuine = open_ok(t0_ + 2s);  // evicts stranger1
  auto evicted = actions();
  ASSERT_EQ(evicted.size(), 1u);
  EXPECT_TRUE(drops(evicted, stranger1));
  EXPECT_EQ(endpoint_->stats().evicted_unproven, 1u);
  EXPECT_EQ(endpoint_->stats().rejected_accept_queue, 0u);

  open_ok(t0_ + 3s);  // evicts stranger2, never the proven flow
  evicted = actions();
  ASSERT_EQ(evicted.size(), 1u);
  EXPECT_TRUE(drops(evicted, stranger2));
  // Now every flow is proven and held: a new OPEN is refused.
  EXPECT_EQ(open_new(t0_ + 4s).kind, Admission::Kind::refuse);
  EXPECT_EQ(endpoint_->stats().rejected_accept_queue, 1u);
  EXPECT_TRUE(actions().empty());
  (void)genuine;
}

TEST_F(EndpointTest, UnacceptedAccountingHoldsWhenAFlowIsHandedOutLater) {
  // Whether the runtime queues a flow for accept() at its OPEN or only once it is ready, the
  // flow counts as unaccepted from its OPEN until the application takes it or it finishes.
  make({.max_unaccepted = 1});
  const FlowRef a = open_ok(t0_);
  EXPECT_EQ(open_new(t0_).kind, Admission::Kind::refuse);
  endpoint_->on_flow_finished(a);
  EXPECT_EQ(endpoint_->stats().unaccepted_flows, 0u);
  EXPECT_EQ(endpoint_->stats().live_flows, 0u);
  open_ok(t0_ + 1s);
}

TEST_F(EndpointTest, FinishedFlowFreesItsIdAndItsLateReportsTouchNothing) {
  make({.abandoned_flow_timeout = 1s});
  Client client(t0_);
  const wire::Frame open = client.connect(1, t0_);
  Admission first = endpoint_->on_first_frame(endpoint_->on_connection(t0_), open, t0_);
  ASSERT_EQ(first.kind, Admission::Kind::open);
  endpoint_->on_flow_finished(first.flow);
  // The same OPEN again creates a new flow: the old one is gone.
  Admission second = endpoint_->on_first_frame(endpoint_->on_connection(t0_), open, t0_);
  ASSERT_EQ(second.kind, Admission::Kind::open);
  EXPECT_NE(second.flow.serial, first.flow.serial);
  endpoint_->on_flow_report(first.flow, {5, 0, false}, t0_);
  endpoint_->on_flow_finished(first.flow);
  EXPECT_EQ(endpoint_->next_deadline(), std::nullopt);
  EXPECT_EQ(endpoint_->stats().live_flows, 1u);
}

TEST_F(EndpointTest, JoinBeyondMaxPathsPerFlowIsRefusedWithCapacityAndTheFlowIsUnharmed) {
  make({.max_paths_per_flow = 2});
  Client client(t0_);
  Admission opened =
      endpoint_->on_first_frame(endpoint_->on_connection(t0_), client.connect(1, t0_), t0_);
  ASSERT_EQ(opened.kind, Admission::Kind::open);
  Flow& server = *opened.created;
  client.establish(server, t0_);

  auto join_on_new_connection = [&](const wire::Frame& frame) {
    const Admission a = endpoint_->on_first_frame(endpoint_->on_connection(t0_), frame, t0_);
    EXPECT_EQ(a.kind, Admission::Kind::join);
    const wire::Join& join = std::get<wire::Join>(frame.body);
    const auto verdict = admit_join(server, join, endpoint_->limits().max_paths_per_flow, t0_);
    if (verdict.status == wire::Status::ok)
      client.prove_join(server, static_cast<PathId>(join.path_id), verdict.provisional, t0_);
    return std::make_pair(verdict.status, endpoint_->on_join_result(a.flow, verdict.status));
  };
  const auto [second, second_answer] = join_on_new_connection(client.connect_new_path(t0_));
  EXPECT_EQ(second, wire::Status::ok);
  EXPECT_FALSE(second_answer.has_value());
  EXPECT_EQ(server.path_count(), 2u);

  const wire::Frame third_join = client.connect_new_path(t0_);
  const auto [third, third_answer] = join_on_new_connection(third_join);
  EXPECT_EQ(third, wire::Status::capacity);
  ASSERT_TRUE(third_answer.has_value());
  EXPECT_EQ(std::get<wire::JoinAck>(third_answer->body).status, wire::Status::capacity);
  EXPECT_EQ(endpoint_->stats().rejected_paths_per_flow, 1u);
  EXPECT_EQ(endpoint_->stats().joins_accepted, 1u);
  // Unharmed: both paths up, the refused path never attached, no JOIN counter spent on it.
  EXPECT_EQ(server.state(), FlowState::established);
  EXPECT_EQ(server.path_count(), 2u);
  EXPECT_EQ(server.path_state(1), PathState::up);
  EXPECT_EQ(server.path_state(2), PathState::up);
  EXPECT_EQ(server.path_state(static_cast<PathId>(std::get<wire::Join>(third_join.body).path_id)),
            PathState::removed);
  EXPECT_EQ(server.stats(t0_).joins_rejected, 0u);
  // A JOIN replacing the carrier of a path the flow has is no new path: accepted at the limit.
  client.flow().on_path_down(2, DownCause::reset, t0_);
  Time t = t0_;
  for (int i = 0; i < 100 && client.flow().path_state(2) != PathState::dialing; ++i) {
    t = std::max(t, client.flow().next_deadline().value_or(t));
    client.flow().on_timer(t);
  }
  ASSERT_EQ(client.flow().path_state(2), PathState::dialing);
  const auto [rejoin, rejoin_answer] = join_on_new_connection(client.connect(2, t));
  EXPECT_EQ(rejoin, wire::Status::ok);
  EXPECT_EQ(server.path_count(), 2u);
}

}  // namespace
}  // namespace rendr::core
