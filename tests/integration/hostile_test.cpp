// Hostile input to a listener while a healthy flow on it is transferring: each bad connection is
// refused, closed and counted, and the healthy flow carries on with every byte intact.
#include <memory>

#include "core/crypto.hpp"
#include "harness.hpp"
#include "support/fault_proxy.hpp"

namespace rendr::itest {
namespace {

using testing::FaultProxy;

constexpr auto kHandshakeTimeout = 300ms;
constexpr std::size_t kMaxHalfOpen = 2;

wire::Nonce random_nonce() {
  wire::Nonce nonce{};
  core::crypto::random_bytes(nonce);
  return nonce;
}

wire::Mac random_mac() {
  wire::Mac mac{};
  core::crypto::random_bytes(mac);
  return mac;
}

std::optional<wire::JoinAck> join_ack_in(const Bytes& received) {
  for (const auto& frame : decode_frames(received)) {
    if (const auto* ack = std::get_if<wire::JoinAck>(&frame.body)) return *ack;
  }
  return std::nullopt;
}

class HostileInputTest : public IntegrationTest {
 protected:
  void SetUp() override {
    ListenOptions options;
    options.handshake_timeout = kHandshakeTimeout;
    options.max_half_open = kMaxHalfOpen;
    options.max_flows = 1;
    listen(options);
    // Path 1 is rate-limited so the healthy flow keeps transferring through every step without
    // hogging the CPU; path 2 goes through a relay that records its JOIN (for the replay).
    proxy_ = std::make_unique<FaultProxy>("127.0.0.1", "127.0.0.1", listener_.port());
    proxy_->set_shaping({.rate_bps = 400'000'000}, {});
    relay_ = std::make_unique<RecordingRelay>(listener_.port());
    ASSERT_TRUE(connect_all_paths(dialer(loopback_paths({proxy_->port(), relay_->port()})), client_,
                                  server_));
    relayed_path_ = path_via_port(client_, relay_->port());
    upload_ = std::make_unique<StreamWriter>(client_, WriteSpec{.seed = 7});
    upload_reader_ = std::make_unique<StreamReader>(server_, ReadSpec{.seed = 7});
    ASSERT_TRUE(wait_until([&] { return upload_reader_->progress() >= 1 * MiB; }, scaled(10s)));
    before_ = listener_.stats();
    before_path_ups_ = healthy_path_ups();
  }

  // The listener closed the hostile connection without waiting for the handshake timeout.
  static void expect_closed_promptly(const RawPeer::Ending& end) {
    EXPECT_TRUE(end.closed) << "the listener kept a hostile connection open";
    EXPECT_LT(end.after, kHandshakeTimeout) << "closed by the timeout, not for what it sent";
  }

  // Sends `bytes` on a new connection, which the listener must close promptly; returns what it
  // answered before closing.
  Bytes expect_refused_promptly(std::span<const std::uint8_t> bytes) {
    RawPeer peer(listener_.port());
    peer.send(bytes);
    const auto end = peer.read_until_closed(scaled(3s));
    expect_closed_promptly(end);
    return end.received;
  }
  Bytes expect_refused_promptly(const wire::Frame& frame) {
    return expect_refused_promptly(encode_frame(frame));
  }

  std::uint64_t healthy_path_ups() const {
    std::uint64_t ups = 0;
    for (const auto& p : client_.stats().paths)
      ups += p.up_count;
    return ups;
  }

  // `counter` has grown by one (by at least one unless `exactly`), no other rejection counter
  // moved, no flow opened, and every JOIN the listener accepted was the healthy client
  // re-joining one of its paths (a loaded host can make it re-dial one), never the attacker.
  void expect_counted(std::uint64_t ListenerStats::*counter, bool exactly = true) {
    EXPECT_TRUE(wait_until(
        [&] {
          const std::uint64_t now = listener_.stats().*counter;
          return exactly ? now == before_.*counter + 1 : now > before_.*counter;
        },
        scaled(2s)));
    const auto now = listener_.stats();
    for (auto rejected : {&ListenerStats::rejected_malformed, &ListenerStats::rejected_unknown_flow,
                          &ListenerStats::rejected_bad_proof, &ListenerStats::rejected_replay,
                          &ListenerStats::rejected_capacity, &ListenerStats::rejected_timeout}) {
      if (rejected != counter) {
        EXPECT_EQ(now.*rejected, before_.*rejected);
      }
    }
    EXPECT_EQ(now.flows_opened, before_.flows_opened);
    EXPECT_TRUE(wait_until(
        [&] {
          return listener_.stats().joins_accepted ==
                 before_.joins_accepted + (healthy_path_ups() - before_path_ups_);
        },
        scaled(2s)))
        << "a JOIN the healthy client did not make was accepted";
  }

  // The healthy flow still moves and ends intact.
  void expect_healthy_flow_unaffected() {
    const std::uint64_t seen = upload_reader_->progress();
    EXPECT_TRUE(
        wait_until([&] { return upload_reader_->progress() >= seen + 1 * MiB; }, scaled(5s)))
        << "the healthy flow stalled";
    upload_->stop();
    finish_transfer(*upload_, *upload_reader_, scaled(20s));
  }

  wire::Frame join_frame(const wire::FlowId& flow, std::uint64_t path, std::uint64_t counter) {
    return {.flags = 0,
            .body = wire::Join{.flow_id = flow,
                               .path_id = path,
                               .counter = counter,
                               .nonce = random_nonce(),
                               .mac = random_mac()}};
  }

  std::unique_ptr<FaultProxy> proxy_;
  std::unique_ptr<RecordingRelay> relay_;
  Conn client_;
  Conn server_;
  PathId relayed_path_ = kNoPath;
  std::unique_ptr<StreamWriter> upload_;
  std::unique_ptr<StreamReader> upload_reader_;
  ListenerStats before_;
  std::uint64_t before_path_ups_ = 0;
};

TEST_F(HostileInputTest, GarbageIsRefusedAndCounted) {
  // A whole frame of an unknown core type (0x00), so the decoder can judge it at once.
  expect_refused_promptly(Bytes{0x00, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef, 0x13, 0x37});
  expect_counted(&ListenerStats::rejected_malformed);
  expect_healthy_flow_unaffected();
}

TEST_F(HostileInputTest, OversizedFrameHeaderIsRefusedAndCounted) {
  // DATA with a 1 GiB body: refused from the header alone, before any body is buffered.
  expect_refused_promptly(Bytes{0x10, 0x00, 0xc0, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00});
  expect_counted(&ListenerStats::rejected_malformed);
  expect_healthy_flow_unaffected();
}

TEST_F(HostileInputTest, NonHandshakeFirstFrameIsRefusedAndCounted) {
  expect_refused_promptly(wire::Frame{.flags = 0, .body = wire::Ping{.id = 1, .timestamp = 2}});
  expect_counted(&ListenerStats::rejected_malformed);
  expect_healthy_flow_unaffected();
}

TEST_F(HostileInputTest, JoinForAnUnknownFlowIsRefusedAndCounted) {
  wire::FlowId unknown{};
  core::crypto::random_bytes(unknown);
  const auto ack = join_ack_in(expect_refused_promptly(join_frame(unknown, 2, 1)));
  ASSERT_TRUE(ack.has_value()) << "no JOIN_ACK before the close";
  EXPECT_EQ(ack->status, wire::Status::unknown_flow);
  EXPECT_EQ(ack->mac, wire::Mac{});
  expect_counted(&ListenerStats::rejected_unknown_flow);
  expect_healthy_flow_unaffected();
}

TEST_F(HostileInputTest, JoinWithAWrongMacForTheRealFlowIsRefusedAndCounted) {
  // Tries to take over the healthy flow's second path, with a fresh counter but no key.
  const auto ack =
      join_ack_in(expect_refused_promptly(join_frame(client_.flow_id(), relayed_path_, 1'000'000)));
  ASSERT_TRUE(ack.has_value()) << "no JOIN_ACK before the close";
  EXPECT_EQ(ack->status, wire::Status::bad_proof);
  EXPECT_EQ(ack->mac, wire::Mac{});
  expect_counted(&ListenerStats::rejected_bad_proof);
  expect_healthy_flow_unaffected();
}

TEST_F(HostileInputTest, ReplayedJoinIsRefusedAndCounted) {
  // The relay saw the genuine JOIN of the healthy flow's second path; send it again.
  const auto recorded = relay_->recorded();
  ASSERT_FALSE(recorded.empty());
  const auto frames = decode_frames(recorded.front());
  ASSERT_FALSE(frames.empty()) << "the relay recorded no whole frame";
  const auto* join = std::get_if<wire::Join>(&frames.front().body);
  ASSERT_NE(join, nullptr) << "the second path did not start with JOIN";
  ASSERT_EQ(join->flow_id, client_.flow_id());

  const auto ack = join_ack_in(expect_refused_promptly(frames.front()));
  ASSERT_TRUE(ack.has_value()) << "no JOIN_ACK before the close";
  EXPECT_EQ(ack->status, wire::Status::replayed);
  expect_counted(&ListenerStats::rejected_replay);
  expect_healthy_flow_unaffected();
}

TEST_F(HostileInputTest, SilentAndStalledClientsAreClosedAfterTheHandshakeTimeout) {
  RawPeer silent(listener_.port());
  RawPeer stalled(listener_.port());
  // Half a JOIN, then nothing: the decoder waits for the rest, the timeout does not.
  const Bytes join = encode_frame(join_frame(client_.flow_id(), relayed_path_, 2'000'000));
  stalled.send(std::span(join).first(join.size() / 2));

  for (RawPeer* peer : {&silent, &stalled}) {
    const auto end = peer->read_until_closed(kHandshakeTimeout + scaled(3s));
    EXPECT_TRUE(end.closed) << "a client that never finished its handshake was kept";
    EXPECT_GE(end.after, kHandshakeTimeout - 50ms) << "closed before the handshake timeout";
    EXPECT_TRUE(end.received.empty());
  }
  EXPECT_TRUE(
      wait_until([&] { return listener_.stats().rejected_timeout == before_.rejected_timeout + 2; },
                 scaled(2s)));
  EXPECT_EQ(listener_.stats().rejected_malformed, before_.rejected_malformed);
  expect_healthy_flow_unaffected();
}

// Idle half-open sockets must not lock out newcomers (a healthy client's re-dial or JOIN): a
// connection beyond max_half_open evicts the oldest waiting one and is judged itself.
TEST_F(HostileInputTest, HalfOpenConnectionBeyondTheLimitEvictsTheOldestAndIsCounted) {
  RawPeer first(listener_.port());
  ASSERT_TRUE(wait_until(
      [&] { return listener_.stats().connections_accepted >= before_.connections_accepted + 1; },
      scaled(2s)));
  RawPeer second(listener_.port());
  // Both are half-open once the listener has accepted them.
  ASSERT_TRUE(wait_until(
      [&] { return listener_.stats().connections_accepted >= before_.connections_accepted + 2; },
      scaled(2s)));
  RawPeer beyond(listener_.port());
  expect_closed_promptly(first.read_until_closed(scaled(3s)));
  // Not exactly one: a re-dial of the healthy flow meeting the full table evicts one too.
  expect_counted(&ListenerStats::evicted_half_open, false);
  // The newcomer is heard: its JOIN for an unknown flow gets its answer.
  beyond.send(join_frame(wire::FlowId{1, 2, 3}, 1, 1));
  const auto end = beyond.read_until_closed(scaled(3s));
  expect_closed_promptly(end);
  const auto ack = join_ack_in(end.received);
  ASSERT_TRUE(ack.has_value()) << "the connection beyond the limit was not judged";
  EXPECT_EQ(ack->status, wire::Status::unknown_flow);
  EXPECT_TRUE(second.read_until_closed(kHandshakeTimeout + scaled(3s)).closed);
  expect_healthy_flow_unaffected();
}

TEST_F(HostileInputTest, FlowBeyondTheFlowLimitIsRefusedAndCounted) {
  Dialer second = dialer(loopback_paths({listener_.port()}));
  second.dial_timeout = scaled(2s);
  std::error_code ec;
  const Conn refused = second.dial(ec);
  EXPECT_EQ(ec, make_error_code(errc::handshake_failed));
  EXPECT_FALSE(refused.is_open());
  expect_counted(&ListenerStats::rejected_capacity);
  expect_healthy_flow_unaffected();
}

}  // namespace
}  // namespace rendr::itest
