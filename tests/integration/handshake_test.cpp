// The OPEN handshake when the first path dies mid-way, and OPENs that repeat or imitate a live
// flow's: a client's resend gets the flow's OPEN_ACK (and the dial completes), a replay gets
// that OPEN_ACK and a close but never a path, anything changed is refused.
#include <functional>
#include <future>
#include <memory>

#include <asio/use_future.hpp>

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

}  // namespace
}  // namespace rendr::itest
