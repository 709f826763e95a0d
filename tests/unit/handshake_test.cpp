// The handshake in the core (docs/protocol.md §8): a server flow is unauthenticated until the
// client's PROOF, and a JOIN attaches only after a PROOF over the server's fresh challenge.
#include <gtest/gtest.h>

#include <vector>

#include "core/flow.hpp"

namespace rendr::core {
namespace {

using namespace std::chrono_literals;

const Time t0{std::chrono::seconds(1000)};

// Everything `flow` sends on `path` now, decoded (control frames only: no DATA payloads).
std::vector<wire::Frame> pull(Flow& flow, PathId path, Time now) {
  wire::TransmitBatch out(1 << 20);
  flow.poll_transmit(path, now, out);
  std::vector<wire::Frame> frames;
  for (const auto& o : out.frames()) {
    std::vector<wire::Byte> bytes(o.header_bytes().begin(), o.header_bytes().end());
    bytes.insert(bytes.end(), o.payload.bytes().begin(), o.payload.bytes().end());
    wire::Frame f;
    if (wire::decode(bytes, f).error == wire::DecodeError::none && o.payload.bytes().empty())
      frames.push_back(f);
  }
  return frames;
}

template <class T>
const T& first_of(const std::vector<wire::Frame>& frames) {
  EXPECT_FALSE(frames.empty());
  return std::get<T>(frames.at(0).body);
}

std::vector<Event::Kind> events(Flow& flow) {
  std::vector<Event::Kind> kinds;
  while (auto e = flow.poll_event())
    kinds.push_back(e->kind);
  return kinds;
}

bool has(const std::vector<Event::Kind>& kinds, Event::Kind k) {
  return std::find(kinds.begin(), kinds.end(), k) != kinds.end();
}

// A client with `paths` paths, connected, and the server flow its OPEN (on path 1) created; the
// OPEN_ACK has not been delivered yet.
struct Opening {
  explicit Opening(FlowConfig client_config = {}, FlowConfig server_config = {}, int paths = 1) {
    client = Flow::make_client(client_config, t0);
    for (int i = 0; i < paths; ++i)
      client->add_path(t0);
    events(*client);
    for (PathId id = 1; id <= static_cast<PathId>(paths); ++id)
      client->on_path_connected(id, t0);
    open = first_of<wire::Open>(pull(*client, 1, t0));
    wire::Status status{};
    server = Flow::make_server(server_config, open, 1, t0, status);
    EXPECT_NE(server, nullptr);
    config = server_config;
  }
  // OPEN_ACK to the client; returns what the client sends next on path 1.
  std::vector<wire::Frame> answer_open(Time now = t0) {
    const auto acks = pull(*server, 1, now);
    EXPECT_EQ(acks.size(), 1u) << "the server sent more than its OPEN_ACK";
    client->on_frame(1, acks.at(0), {}, now);
    return pull(*client, 1, now);
  }
  std::unique_ptr<Flow> client, server;
  FlowConfig config;
  wire::Open open;
};

TEST(Handshake, ServerDeliversNothingAndOffersNothingBeforeTheProof) {
  Opening o;
  EXPECT_FALSE(o.server->authenticated());
  EXPECT_EQ(o.server->state(), FlowState::opening);
  // DATA where the PROOF belongs: the flow fails, nothing is readable, nothing was offered.
  const std::vector<wire::Byte> payload(100, 7);
  const wire::Slice backing = wire::Slice::copy_of(payload);
  o.server->on_frame(1, wire::Frame{0, wire::Data{0, backing.bytes()}}, backing, t0);
  EXPECT_EQ(o.server->readable_bytes(), 0u);
  EXPECT_EQ(o.server->state(), FlowState::failed);
  EXPECT_EQ(o.server->error(), FlowError::authentication_failed);
  const auto kinds = events(*o.server);
  EXPECT_TRUE(has(kinds, Event::Kind::authentication_failed));
  EXPECT_FALSE(has(kinds, Event::Kind::authenticated));
}

TEST(Handshake, ClientSendsItsProofFirstAndTheServerAuthenticatesOnce) {
  Opening o;
  const auto sent = o.answer_open();
  EXPECT_EQ(o.client->state(), FlowState::established);
  ASSERT_FALSE(sent.empty());
  ASSERT_TRUE(std::holds_alternative<wire::Proof>(sent.front().body)) << "PROOF is not first";
  for (const auto& f : sent)
    o.server->on_frame(1, f, {}, t0);
  EXPECT_TRUE(o.server->authenticated());
  EXPECT_EQ(o.server->path_state(1), PathState::up);
  auto kinds = events(*o.server);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), Event::Kind::authenticated), 1);
  // The same PROOF again is a protocol error on an attached path, never a second event.
  o.server->on_frame(1, sent.front(), {}, t0);
  EXPECT_FALSE(has(events(*o.server), Event::Kind::authenticated));
}

TEST(Handshake, DifferentPreSharedKeysFailBothEnds) {
  FlowConfig a, b;
  a.psk = {1, 2, 3};
  b.psk = {4, 5, 6};
  Opening o(a, b);
  const auto sent = o.answer_open();
  EXPECT_EQ(o.client->state(), FlowState::failed);
  EXPECT_EQ(o.client->error(), FlowError::authentication_failed);
  EXPECT_TRUE(sent.empty()) << "the client proved a key it does not share";
  // A PROOF made without the server's key fails the server flow the same way.
  o.server->on_frame(1, wire::Frame{0, wire::Proof{}}, {}, t0);
  EXPECT_EQ(o.server->error(), FlowError::authentication_failed);
  EXPECT_FALSE(o.server->authenticated());
}

TEST(Handshake, OpenWithoutProofEndsAfterTheHandshakeTimeout) {
  Opening o;
  pull(*o.server, 1, t0);  // its OPEN_ACK goes out
  ASSERT_TRUE(o.server->next_deadline().has_value());
  EXPECT_LE(*o.server->next_deadline(), t0 + o.config.handshake_timeout);
  o.server->on_timer(t0 + o.config.handshake_timeout - 1ms);
  EXPECT_EQ(o.server->state(), FlowState::opening);
  o.server->on_timer(t0 + o.config.handshake_timeout);
  EXPECT_EQ(o.server->state(), FlowState::failed);
  const auto kinds = events(*o.server);
  EXPECT_TRUE(has(kinds, Event::Kind::authentication_failed));
  EXPECT_TRUE(has(kinds, Event::Kind::finished));
  EXPECT_FALSE(o.server->next_deadline().has_value());
}

// The client's first path died before the OPEN_ACK; it resends the OPEN on another path and
// will JOIN once it has the answer, so the answer gives the flow another handshake timeout.
TEST(Handshake, AnsweredRepeatedOpenGivesTheClientAnotherTimeout) {
  Opening o;
  const Duration timeout = o.config.handshake_timeout;
  wire::Open repeated = o.open;
  repeated.path_id = 2;
  ASSERT_TRUE(o.server->open_ack_for_repeated_open(repeated, t0 + timeout - 1ms).has_value());
  o.server->on_timer(t0 + timeout);
  EXPECT_EQ(o.server->state(), FlowState::opening);
  o.server->on_timer(t0 + 2 * timeout - 1ms);
  EXPECT_EQ(o.server->state(), FlowState::failed);
}

// Defect 2 of issue 7: a JOIN recorded on its way, but never processed by the server (refused
// at the half-open limit, or its connection reset), is replayed after the client re-joined that
// path. Its MAC and counter are good; the server's fresh challenge is what stops it.
TEST(Handshake, JoinTheServerNeverSawCannotReplaceTheLivePathLater) {
  Opening o({}, {}, 2);
  for (const auto& f : o.answer_open())
    o.server->on_frame(1, f, {}, t0);
  ASSERT_TRUE(o.server->authenticated());
  const wire::Join recorded = first_of<wire::Join>(pull(*o.client, 2, t0));
  o.client->on_path_down(2, DownCause::reset, t0);  // the server never saw that JOIN

  const Time t1 = t0 + 100ms;
  o.client->on_timer(t1);
  ASSERT_TRUE(has(events(*o.client), Event::Kind::dial_path));
  o.client->on_path_connected(2, t1);
  const wire::Join fresh = first_of<wire::Join>(pull(*o.client, 2, t1));
  EXPECT_GT(fresh.counter, recorded.counter);
  const JoinVerdict verdict = o.server->on_join(fresh, t1);
  ASSERT_EQ(verdict.status, wire::Status::ok);
  EXPECT_GE(verdict.provisional, kFirstProvisionalPath);
  EXPECT_EQ(o.server->path_state(2), PathState::removed) << "attached before its PROOF";
  const auto genuine_ack = first_of<wire::JoinAck>(pull(*o.server, verdict.provisional, t1));
  o.client->on_frame(2, wire::Frame{0, genuine_ack}, {}, t1);
  const auto proof = pull(*o.client, 2, t1).at(0);
  ASSERT_TRUE(std::holds_alternative<wire::Proof>(proof.body));
  o.server->on_frame(verdict.provisional, proof, {}, t1);
  EXPECT_EQ(o.server->path_state(2), PathState::up);
  EXPECT_TRUE(has(events(*o.server), Event::Kind::path_joined));

  // The replay: accepted as a JOIN, held as a provisional path that replaces nothing.
  const Time t2 = t1 + 1s;
  const JoinVerdict replay = o.server->on_join(recorded, t2);
  ASSERT_EQ(replay.status, wire::Status::ok);
  EXPECT_NE(replay.provisional, verdict.provisional);
  EXPECT_EQ(o.server->path_state(2), PathState::up);
  const auto challenge = first_of<wire::JoinAck>(pull(*o.server, replay.provisional, t2));
  EXPECT_NE(challenge.challenge, genuine_ack.challenge);
  // The best a replayer has is the genuine client's PROOF: it answers another challenge.
  o.server->on_frame(replay.provisional, proof, {}, t2);
  EXPECT_EQ(o.server->path_state(replay.provisional), PathState::removed);
  EXPECT_EQ(o.server->path_state(2), PathState::up);
  const auto kinds = events(*o.server);
  EXPECT_TRUE(has(kinds, Event::Kind::authentication_failed));
  EXPECT_FALSE(has(kinds, Event::Kind::path_joined));
  const FlowStats stats = o.server->stats(t2);
  EXPECT_EQ(stats.joins_accepted, 1u);
  EXPECT_EQ(stats.joins_rejected, 1u);
  for (const auto& p : stats.paths)
    EXPECT_EQ(p.down_count, 0u) << "path " << p.id;
}

// A provisional path that never sends its PROOF is closed after the handshake timeout.
TEST(Handshake, ProvisionalPathWithoutProofIsClosedAfterTheHandshakeTimeout) {
  Opening o({}, {}, 2);
  for (const auto& f : o.answer_open())
    o.server->on_frame(1, f, {}, t0);
  const wire::Join join = first_of<wire::Join>(pull(*o.client, 2, t0));
  const JoinVerdict verdict = o.server->on_join(join, t0);
  ASSERT_EQ(verdict.status, wire::Status::ok);
  pull(*o.server, verdict.provisional, t0);  // its JOIN_ACK, never answered
  events(*o.server);
  o.server->on_timer(t0 + o.config.handshake_timeout - 1ms);
  EXPECT_EQ(o.server->path_state(verdict.provisional), PathState::handshaking);
  o.server->on_timer(t0 + o.config.handshake_timeout);
  EXPECT_EQ(o.server->path_state(verdict.provisional), PathState::removed);
  const auto kinds = events(*o.server);
  EXPECT_TRUE(has(kinds, Event::Kind::authentication_failed));
  EXPECT_TRUE(has(kinds, Event::Kind::close_path));
  EXPECT_EQ(o.server->state(), FlowState::established);  // the flow itself is unaffected
}

// The OPEN's path went silent before its PROOF (the client's answer came on another path, as a
// JOIN): once the flow is authenticated that first path times out like any handshake.
TEST(Handshake, FirstPathStillWaitingAfterAProvenJoinTimesOut) {
  Opening o({}, {}, 2);
  o.answer_open();  // its PROOF is lost with the first path
  const wire::Join join = first_of<wire::Join>(pull(*o.client, 2, t0));
  const JoinVerdict verdict = o.server->on_join(join, t0);
  ASSERT_EQ(verdict.status, wire::Status::ok);
  o.client->on_frame(2, pull(*o.server, verdict.provisional, t0).at(0), {}, t0);
  o.server->on_frame(verdict.provisional, pull(*o.client, 2, t0).at(0), {}, t0);
  ASSERT_TRUE(o.server->authenticated());
  EXPECT_EQ(o.server->path_state(2), PathState::up);
  EXPECT_EQ(o.server->path_state(1), PathState::handshaking);
  o.server->on_timer(t0 + o.config.handshake_timeout);
  EXPECT_EQ(o.server->path_state(1), PathState::removed);
  EXPECT_EQ(o.server->state(), FlowState::established);
}

// A replayed OPEN (on throw-away connections) answers with the cached OPEN_ACK and gives a
// client retrying on another path more time, but never keeps a flow nobody proved alive beyond
// twice the handshake timeout.
TEST(Handshake, RepeatedOpensCannotKeepAnUnprovenFlowAliveForEver) {
  Opening o;
  pull(*o.server, 1, t0);  // OPEN_ACK
  const Duration timeout = FlowConfig{}.handshake_timeout;
  Time t = t0;
  for (int i = 0; i < 30 && o.server->state() == FlowState::opening; ++i) {
    t += timeout - 1ms;
    wire::Open replay = o.open;
    replay.path_id = 2;
    EXPECT_TRUE(o.server->open_ack_for_repeated_open(replay, t).has_value() ||
                o.server->state() != FlowState::opening);
    o.server->on_timer(t);
  }
  EXPECT_EQ(o.server->state(), FlowState::failed);
  EXPECT_LE(t - t0, 2 * timeout + timeout);
}

// Path ids from 2^31 up are the server's provisional JOIN paths: an OPEN naming one would be
// overwritten by the first JOIN.
TEST(Handshake, OpenWithAPathIdInTheProvisionalRangeIsRefused) {
  Opening o;
  for (const std::uint64_t id : {std::uint64_t{kFirstProvisionalPath}, std::uint64_t{1} << 32}) {
    wire::Open open = o.open;
    open.path_id = id;
    wire::Status status{};
    EXPECT_EQ(Flow::make_server(FlowConfig{}, open, static_cast<PathId>(open.path_id), t0, status),
              nullptr)
        << id;
    EXPECT_EQ(status, wire::Status::bad_request);
  }
}

}  // namespace
}  // namespace rendr::core
