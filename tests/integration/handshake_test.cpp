// The OPEN handshake when the first path dies mid-way, and OPENs that repeat or imitate a live
// flow's: a client's resend gets the flow's OPEN_ACK (and the dial completes), a replay gets
// that OPEN_ACK and a close but never a path, anything changed is refused.
#include <functional>
#include <future>
#include <memory>

#include <asio/use_future.hpp>

#include "core/crypto.hpp"
#include "harness.hpp"
#include "support/fault_proxy.hpp"

namespace rendr::itest {
namespace {

using testing::FaultMode;
using testing::FaultProxy;
using testing::Shaping;

constexpr auto kHandshakeTimeout = 500ms;

std::vector<wire::OpenAck> open_acks_in(const Bytes& received) {
  std::vector<wire::OpenAck> acks;
  for (const auto& frame : decode_frames(received)) {
    if (const auto* ack = std::get_if<wire::OpenAck>(&frame.body)) acks.push_back(*ack);
  }
  return acks;
}

std::uint64_t up_count(const Conn& conn) {
  std::uint64_t ups = 0;
  for (const auto& p : conn.stats().paths)
    ups += p.up_count;
  return ups;
}

// A bounded transfer each way on an established pair, both checked byte for byte.
void expect_both_ways_intact(const Conn& client, const Conn& server) {
  StreamWriter upload(client, WriteSpec{.seed = 11, .bytes = 8 * MiB});
  StreamReader upload_reader(server, ReadSpec{.seed = 11});
  StreamWriter download(server, WriteSpec{.seed = 12, .bytes = 8 * MiB});
  StreamReader download_reader(client, ReadSpec{.seed = 12});
  finish_transfer(upload, upload_reader, scaled(20s));
  finish_transfer(download, download_reader, scaled(20s));
}

using HandshakeTest = IntegrationTest;

// Path A carries the OPEN; its OPEN_ACK is held in the proxy when A is reset. The client sends
// the same OPEN on path B, which must complete the dial on the flow the listener already holds.
TEST_F(HandshakeTest, OpenAckLostWithItsPathIsAnsweredOnTheOtherPath) {
  listen();
  FaultProxy a("127.0.0.1", "127.0.0.1", listener_.port());
  FaultProxy b("127.0.0.1", "127.0.0.1", listener_.port());
  a.set_shaping({}, {.delay = std::chrono::seconds(10)});
  // B refuses every connection until the listener has the flow, so the OPEN reaches it on A.
  b.set_mode(FaultMode::reset);

  auto accepted = listener_.async_accept(asio::use_future);
  const Dialer d = dialer(loopback_paths({a.port(), b.port()}));
  auto dialed = std::async(std::launch::async, [&d] {
    std::error_code ec;
    Conn conn = d.dial(ec);
    return std::make_pair(conn, ec);
  });
  ASSERT_TRUE(wait_until([&] { return listener_.stats().flows_opened == 1; }, scaled(5s)))
      << "the OPEN never reached the listener";
  b.set_mode(FaultMode::pass);
  a.set_mode(FaultMode::reset);  // with the OPEN_ACK still in its delay line

  ASSERT_EQ(dialed.wait_for(scaled(10s)), std::future_status::ready) << "dial did not complete";
  auto [client, ec] = dialed.get();
  ASSERT_FALSE(ec) << "dial: " << ec.message();
  ASSERT_EQ(accepted.wait_for(scaled(5s)), std::future_status::ready) << "no flow accepted";
  Conn server = accepted.get();
  EXPECT_EQ(server.flow_id(), client.flow_id());

  // A comes back and JOINs; B, closed after the OPEN_ACK, has re-dialed and JOINed.
  a.set_shaping({}, {});
  a.set_mode(FaultMode::pass);
  EXPECT_TRUE(wait_until([&] { return paths_up(client) == 2; }, scaled(10s)))
      << describe(client.stats());
  EXPECT_EQ(listener_.stats().live_flows, 1u) << "an orphan flow is left in the listener";
  expect_both_ways_intact(client, server);

  const auto stats = listener_.stats();
  EXPECT_EQ(stats.flows_opened, 1u);
  EXPECT_EQ(stats.duplicate_opens, 1u);
  EXPECT_EQ(stats.rejected_malformed, 0u) << "an OPEN was refused";
  EXPECT_GE(stats.joins_accepted, 2u);
}

// A healthy flow whose OPEN a relay recorded, transferring while hostile OPENs arrive.
class HandshakeReplayTest : public IntegrationTest {
 protected:
  void SetUp() override {
    ListenOptions options;
    options.handshake_timeout = kHandshakeTimeout;
    listen(options);
    relay_ = std::make_unique<RecordingRelay>(listener_.port());
    ASSERT_TRUE(connect_all_paths(dialer(loopback_paths({relay_->port(), relay_->port()})), client_,
                                  server_));
    for (const auto& record : relay_->recorded()) {
      const auto frames = decode_frames(record);
      if (!frames.empty() && std::holds_alternative<wire::Open>(frames.front().body))
        open_ = frames.front();
    }
    ASSERT_TRUE(open_.has_value()) << "the relay recorded no OPEN";
    ASSERT_EQ(std::get<wire::Open>(open_->body).flow_id, client_.flow_id());
    upload_ = std::make_unique<StreamWriter>(client_, WriteSpec{.seed = 7});
    upload_reader_ = std::make_unique<StreamReader>(server_, ReadSpec{.seed = 7});
    ASSERT_TRUE(wait_until([&] { return upload_reader_->progress() >= 1 * MiB; }, scaled(10s)));
    before_ = listener_.stats();
    client_ups_before_ = up_count(client_);
    server_ups_before_ = up_count(server_);
    server_paths_before_ = server_.stats().paths.size();
  }

  // Sends `bytes` on a new connection; returns what the listener sent before closing it, which
  // it must do promptly.
  Bytes send_and_expect_closed(std::span<const std::uint8_t> bytes) {
    RawPeer peer(listener_.port());
    peer.send(bytes);
    const auto end = peer.read_until_closed(scaled(3s));
    EXPECT_TRUE(end.closed) << "the listener kept the connection open";
    EXPECT_LT(end.after, kHandshakeTimeout) << "closed by the timeout, not for what it sent";
    return end.received;
  }

  // No path was attached to the healthy flow but the client's own re-joins, no flow was
  // opened, and the flow still moves and ends intact.
  void expect_healthy_flow_untouched() {
    EXPECT_EQ(listener_.stats().flows_opened, before_.flows_opened);
    EXPECT_TRUE(wait_until(
        [&] {
          return up_count(server_) - server_ups_before_ == up_count(client_) - client_ups_before_;
        },
        scaled(2s)))
        << "a path the client did not make came up on the server";
    EXPECT_EQ(server_.stats().paths.size(), server_paths_before_);
    const std::uint64_t seen = upload_reader_->progress();
    EXPECT_TRUE(
        wait_until([&] { return upload_reader_->progress() >= seen + 1 * MiB; }, scaled(5s)))
        << "the healthy flow stalled";
    upload_->stop();
    finish_transfer(*upload_, *upload_reader_, scaled(20s));
  }

  std::unique_ptr<RecordingRelay> relay_;
  Conn client_;
  Conn server_;
  std::optional<wire::Frame> open_;
  std::unique_ptr<StreamWriter> upload_;
  std::unique_ptr<StreamReader> upload_reader_;
  ListenerStats before_;
  std::uint64_t client_ups_before_ = 0;
  std::uint64_t server_ups_before_ = 0;
  std::size_t server_paths_before_ = 0;
};

TEST_F(HandshakeReplayTest, ByteIdenticalReplayGetsTheOpenAckAndACloseButNoPath) {
  // Frames after the OPEN would reach the flow if the connection were attached: a PING would
  // be answered with a PONG.
  Bytes replay = encode_frame(*open_);
  const Bytes ping = encode_frame(wire::Frame{.flags = 0, .body = wire::Ping{.id = 1}});
  replay.insert(replay.end(), ping.begin(), ping.end());

  std::vector<wire::OpenAck> answers;
  for (int i = 0; i < 2; ++i) {
    const Bytes received = send_and_expect_closed(replay);
    const auto frames = decode_frames(received);
    ASSERT_EQ(frames.size(), 1u) << "more than the OPEN_ACK came back";
    const auto acks = open_acks_in(received);
    ASSERT_EQ(acks.size(), 1u);
    EXPECT_EQ(acks.front().status, wire::Status::ok);
    answers.push_back(acks.front());
  }
  EXPECT_EQ(answers[0], answers[1]) << "a repeated OPEN must get the flow's one OPEN_ACK";
  EXPECT_NE(answers[0].confirm, wire::Mac{});

  EXPECT_TRUE(
      wait_until([&] { return listener_.stats().duplicate_opens == before_.duplicate_opens + 2; },
                 scaled(2s)));
  EXPECT_EQ(listener_.stats().rejected_malformed, before_.rejected_malformed);
  expect_healthy_flow_untouched();
}

TEST_F(HandshakeReplayTest, ReplayWithAnyFieldChangedIsRefusedAndCounted) {
  const std::vector<std::function<void(wire::Open&)>> changes = {
      [](wire::Open& o) { o.key_share[0] ^= 0x40; },
      [](wire::Open& o) { o.nonce[0] ^= 1; },
      [](wire::Open& o) { o.window += 1; },
  };
  for (const auto& change : changes) {
    wire::Frame forged = *open_;
    change(std::get<wire::Open>(forged.body));
    const auto acks = open_acks_in(send_and_expect_closed(encode_frame(forged)));
    ASSERT_EQ(acks.size(), 1u) << "no OPEN_ACK before the close";
    EXPECT_EQ(acks.front().status, wire::Status::bad_request);
    EXPECT_EQ(acks.front().confirm, wire::Mac{});
  }
  EXPECT_TRUE(wait_until(
      [&] {
        return listener_.stats().rejected_malformed == before_.rejected_malformed + changes.size();
      },
      scaled(2s)));
  EXPECT_EQ(listener_.stats().duplicate_opens, before_.duplicate_opens);
  expect_healthy_flow_untouched();
}

// ---- Authentication (issue 7): the client proves the key before the server delivers anything
// or offers the flow to accept(), and a JOIN attaches only after a PROOF over a fresh challenge.

std::vector<std::uint8_t> key_of(std::uint8_t fill) {
  return std::vector<std::uint8_t>(32, fill);
}

// A syntactically perfect OPEN from someone who will not (or cannot) prove a key.
wire::Frame stranger_open() {
  wire::Open open;
  core::crypto::random_bytes(open.flow_id);
  open.path_id = 1;
  open.window = 1 * MiB;
  open.key_share = core::crypto::KeyPair().public_key();
  core::crypto::random_bytes(open.nonce);
  return {.flags = 0, .body = open};
}

class AuthenticationTest : public IntegrationTest {
 protected:
  void listen_with(std::vector<std::uint8_t> psk) {
    ListenOptions options;
    options.handshake_timeout = kHandshakeTimeout;
    options.options.psk = std::move(psk);
    listen(options);
  }
};

TEST_F(AuthenticationTest, WrongPskFailsTheDialIsCountedAndNeverReachesAccept) {
  listen_with(key_of(1));
  auto accepted = listener_.async_accept(asio::use_future);
  Dialer d = dialer(loopback_paths({listener_.port()}));
  d.dial_timeout = scaled(5s);
  d.options.psk = key_of(2);
  std::error_code ec;
  const Conn refused = d.dial(ec);
  EXPECT_EQ(ec, make_error_code(errc::authentication_failed)) << ec.message();
  EXPECT_FALSE(refused.is_open());
  EXPECT_TRUE(
      wait_until([&] { return listener_.stats().authentication_failures == 1; }, scaled(5s)));
  EXPECT_TRUE(wait_until([&] { return listener_.stats().live_flows == 0; }, scaled(5s)))
      << "the listener kept the unauthenticated flow";
  EXPECT_EQ(accepted.wait_for(0s), std::future_status::timeout) << "accept() returned it";

  // The right key opens a flow, and only that one is accepted.
  d.options.psk = key_of(1);
  const Conn client = d.dial(ec);
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_EQ(accepted.wait_for(scaled(5s)), std::future_status::ready);
  const Conn server = accepted.get();
  EXPECT_EQ(server.flow_id(), client.flow_id());
  expect_both_ways_intact(client, server);
  EXPECT_EQ(listener_.stats().authentication_failures, 1u);
}

TEST_F(AuthenticationTest, OpenWithoutProofDeliversNothingAndNeverReachesAccept) {
  listen_with(key_of(1));
  auto accepted = listener_.async_accept(asio::use_future);
  Conn server;
  listener_.async_accept([&server](std::error_code ec, Conn conn) {
    if (!ec) server = std::move(conn);
  });

  // DATA right behind the OPEN, in place of the PROOF: refused at once.
  RawPeer pipelined(listener_.port());
  Bytes bytes = encode_frame(stranger_open());
  const Bytes payload(1000, 0x5a);
  const Bytes data = encode_frame({.flags = 0, .body = wire::Data{0, payload}});
  bytes.insert(bytes.end(), data.begin(), data.end());
  pipelined.send(bytes);
  const auto refused = pipelined.read_until_closed(scaled(3s));
  EXPECT_TRUE(refused.closed);
  EXPECT_LT(refused.after, kHandshakeTimeout) << "closed by the timeout, not for the DATA";

  // An OPEN and then nothing: the flow is dropped after the handshake timeout.
  RawPeer silent(listener_.port());
  silent.send(stranger_open());
  const auto dropped = silent.read_until_closed(kHandshakeTimeout + scaled(3s));
  EXPECT_TRUE(dropped.closed) << "an OPEN without a PROOF was kept";
  EXPECT_GE(dropped.after, kHandshakeTimeout - 50ms);
  const auto answers = decode_frames(dropped.received);
  ASSERT_EQ(answers.size(), 1u) << "the server sent more than its OPEN_ACK";
  EXPECT_TRUE(std::holds_alternative<wire::OpenAck>(answers.front().body));

  EXPECT_TRUE(
      wait_until([&] { return listener_.stats().authentication_failures == 2; }, scaled(3s)));
  EXPECT_TRUE(wait_until([&] { return listener_.stats().live_flows == 0; }, scaled(3s)));
  EXPECT_EQ(accepted.wait_for(0s), std::future_status::timeout) << "accept() returned a stranger";
  EXPECT_FALSE(server.is_open());
}

// A JOIN the server never processed (its connection went nowhere) is replayed once the genuine
// client has re-joined that path: its MAC and counter are good, so only the server's fresh
// challenge stops it. The replayer cannot answer it; the live path and the flow are untouched.
TEST_F(AuthenticationTest, RecordedJoinTheServerNeverSawCannotTakeOverALivePath) {
  listen_with({});
  FaultProxy gate("127.0.0.1", "127.0.0.1", listener_.port());
  gate.set_mode(FaultMode::blackhole);
  RecordingRelay relay(gate.port());
  Dialer d = dialer(loopback_paths({listener_.port(), relay.port()}));
  auto [client, server] = connect(d);
  ASSERT_TRUE(client.is_open() && server.is_open());

  // The relay records what it receives before it forwards it: the gate opens only once it has
  // dropped every byte recorded (else the JOIN could pass the opened gate, the server would
  // know it, and the replay would be refused as a replay, not stopped by the challenge).
  std::optional<wire::Frame> recorded_join;
  ASSERT_TRUE(wait_until(
      [&] {
        std::uint64_t recorded_bytes = 0;
        for (const auto& record : relay.recorded()) {
          recorded_bytes += record.size();
          const auto frames = decode_frames(record);
          if (!frames.empty() && std::holds_alternative<wire::Join>(frames.front().body))
            recorded_join = frames.front();
        }
        return recorded_join.has_value() && gate.bytes_discarded() >= recorded_bytes;
      },
      scaled(5s)))
      << "the gated path sent no JOIN, or the gate did not drop it: " << gate.bytes_discarded()
      << " bytes dropped";
  gate.set_mode(FaultMode::pass);
  ASSERT_TRUE(wait_until([&] { return paths_up(client) == 2; }, scaled(10s)))
      << "the gated path never joined";
  ASSERT_TRUE(wait_until([&] { return paths_up(server) == 2; }, scaled(5s)));
  const auto before = listener_.stats();
  // Every path the server attaches from here on must be one the client made: a replayed JOIN
  // that took over would be attached without a client path coming up. (A count, not "the
  // gated path never went down": a loaded host may declare a live path dead and re-dial it.)
  const auto client_ups = [&] {
    std::uint64_t ups = 0;
    for (const auto& p : client.stats().paths)
      ups += p.up_count;
    return ups;
  };
  const auto ups_before = client_ups();
  const auto server_joins_before = server.stats().joins_accepted;

  StreamWriter upload(client, WriteSpec{.seed = 21, .bytes = 16 * MiB});
  StreamReader upload_reader(server, ReadSpec{.seed = 21});
  // The replayer gets the challenge and has no PROOF to give: the path is closed after the
  // handshake timeout, never attached.
  RawPeer replayer(listener_.port());
  replayer.send(*recorded_join);
  const auto end = replayer.read_until_closed(kHandshakeTimeout + scaled(3s));
  EXPECT_TRUE(end.closed);
  EXPECT_GE(end.after, kHandshakeTimeout - 50ms);
  const auto answers = decode_frames(end.received);
  ASSERT_EQ(answers.size(), 1u) << "the replayer got more than a JOIN_ACK";
  const auto* ack = std::get_if<wire::JoinAck>(&answers.front().body);
  ASSERT_NE(ack, nullptr);
  EXPECT_EQ(ack->status, wire::Status::ok);  // the MAC was genuine; the challenge is what stops it
  EXPECT_NE(ack->challenge, wire::Nonce{});

  EXPECT_TRUE(wait_until(
      [&] {
        return listener_.stats().authentication_failures == before.authentication_failures + 1;
      },
      scaled(3s)));
  finish_transfer(upload, upload_reader, scaled(30s));
  EXPECT_TRUE(wait_until(
      [&] {
        return server.stats().joins_accepted - server_joins_before == client_ups() - ups_before;
      },
      scaled(3s)))
      << "the server attached a path the client did not make (the replayer's): "
      << server.stats().joins_accepted - server_joins_before << " joins for "
      << client_ups() - ups_before << " client paths up\n"
      << describe(client.stats());
  EXPECT_TRUE(
      wait_until([&] { return paths_up(client) == 2 && paths_up(server) == 2; }, scaled(3s)))
      << describe(client.stats());
}

}  // namespace
}  // namespace rendr::itest
