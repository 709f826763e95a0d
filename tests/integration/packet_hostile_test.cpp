// Hostile input to a packet flow while a healthy packet flow on the same listener carries
// messages: a peer that speaks the protocol sends a message above the agreed limit (refused and
// counted, never delivered) and floods tiny messages the application never reads (the receive
// window bounds how many are held; the rest are refused and counted). The healthy flow goes on
// with every message intact.
#include <memory>
#include <set>

#include "core/crypto.hpp"
#include "packet_support.hpp"

namespace rendr::itest {
namespace {

constexpr std::size_t kWindow = 256 * KiB;
// What the window holds at most: every message, even an empty one, takes this many offsets.
constexpr std::size_t kMostQueued = kWindow / wire::kMessageSpanOverhead;

// A packet flow that keeps sending messages 0, 1, ... until stopped, and a reader of them.
class HealthyFlow {
 public:
  HealthyFlow(PacketConn client, PacketConn server)
      : client_(std::move(client)), server_(std::move(server)) {
    reader_ = std::thread([this] { read(); });
    sender_ = std::thread([this] { send(); });
  }
  ~HealthyFlow() {
    stop_ = true;
    if (sender_.joinable()) sender_.join();
    if (!read_all_) server_.abort();
    reader_.join();
  }
  HealthyFlow(const HealthyFlow&) = delete;
  HealthyFlow& operator=(const HealthyFlow&) = delete;

  std::uint32_t received() const { return received_; }
  // Stops sending; true once every message sent arrived once and intact.
  bool finish(std::chrono::milliseconds timeout) {
    stop_ = true;
    if (sender_.joinable()) sender_.join();
    const bool done = wait_until([&] { return read_all_.load(); }, timeout);
    EXPECT_TRUE(done) << received_ << " of " << sent_ << " received";
    EXPECT_TRUE(intact_);
    return done && intact_;
  }

 private:
  void send() {
    std::uint32_t i = 0;
    for (; !stop_; ++i) {
      const Bytes m = make_message(i);
      std::error_code ec;
      client_.send(asio::buffer(m), ec);
      if (ec) {
        ADD_FAILURE() << "healthy send " << i << ": " << ec.message();
        intact_ = false;
        break;
      }
    }
    sent_ = i;
  }
  void read() {
    Bytes buffer(kMaxMessageSize);
    std::set<std::uint32_t> seen;
    while (seen.size() < sent_) {  // sent_ is the largest value until the sender stops
      std::error_code ec;
      const std::size_t n = server_.receive(asio::buffer(buffer), ec);
      if (ec) return;
      const auto i = check({buffer.data(), n});
      if (!i || !seen.insert(*i).second) intact_ = false;
      received_ = static_cast<std::uint32_t>(seen.size());
    }
    read_all_ = true;
  }

  PacketConn client_;
  PacketConn server_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint32_t> sent_{std::numeric_limits<std::uint32_t>::max()};
  std::atomic<std::uint32_t> received_{0};
  std::atomic<bool> read_all_{false};
  std::atomic<bool> intact_{true};
  std::thread reader_;
  std::thread sender_;
};

Bytes message_frame(std::uint64_t offset, std::span<const std::uint8_t> message) {
  return encode_frame(wire::Frame{.flags = wire::Data::kFlagMessage,
                                  .body = wire::Data{.offset = offset, .payload = message}});
}

TEST_F(PacketConnTest, OversizeMessagesAndMessageFloodsAreRefusedWithoutHarm) {
  ListenOptions options;
  options.accept_packet_flows = true;
  options.options.recv_window = kWindow;
  listen(options);
  PacketConn client;
  PacketConn server;
  ASSERT_TRUE(connect_packet(dialer({tcp_path()}), {}, client, server));
  HealthyFlow healthy(client, server);
  ASSERT_TRUE(wait_until([&] { return healthy.received() >= 1000; }, scaled(10s)));

  wire::Open open{.flow_id = {}, .kind = wire::StreamKind::packet, .path_id = 1, .window = kWindow};
  core::crypto::random_bytes(open.flow_id);
  core::crypto::random_bytes(open.nonce);
  auto accepted = listener_.async_accept_packet(asio::use_future);
  RawPeer hostile(listener_.port());
  ASSERT_TRUE(open_and_prove(hostile, open, scaled(2s)));
  ASSERT_EQ(accepted.wait_for(scaled(5s)), std::future_status::ready);
  PacketConn hostile_flow = accepted.get();

  // A message one byte above the limit: refused and counted, nothing delivered; a message of
  // the limit at the same offset is then taken.
  const Bytes too_large(kMaxMessageSize + 1, 0xee);
  hostile.send(message_frame(0, too_large));
  const Bytes largest(kMaxMessageSize, 0x11);
  hostile.send(message_frame(0, largest));
  Bytes buffer(2 * kMaxMessageSize);
  std::error_code ec;
  EXPECT_EQ(hostile_flow.receive(asio::buffer(buffer), ec), kMaxMessageSize);
  EXPECT_EQ(ec, std::error_code{});
  EXPECT_EQ(buffer[0], 0x11);
  EXPECT_EQ(hostile_flow.stats().protocol_errors, 1u);

  // Three windows' worth of empty messages nobody reads: the window holds at most kMostQueued
  // of them, the others are refused and counted.
  const std::uint64_t first = kMaxMessageSize + wire::kMessageSpanOverhead;
  constexpr std::size_t kFlood = 3 * kMostQueued;
  Bytes flood;
  for (std::size_t k = 0; k < kFlood; ++k) {
    const Bytes frame = message_frame(first + k * wire::kMessageSpanOverhead, {});
    flood.insert(flood.end(), frame.begin(), frame.end());
  }
  hostile.send(flood);
  ASSERT_TRUE(
      wait_until([&] { return hostile_flow.stats().protocol_errors >= 1 + kFlood - kMostQueued; },
                 scaled(10s)))
      << "refused " << hostile_flow.stats().protocol_errors;
  const ConnStats stats = hostile_flow.stats();
  EXPECT_LE(stats.protocol_errors, 1 + kFlood);
  EXPECT_LE(stats.recv_queue_hwm, kMostQueued) << "held more messages than the window allows";
  EXPECT_GE(stats.recv_queue_hwm, kMostQueued * 9 / 10) << "the flood did not fill the window";
  EXPECT_EQ(stats.recv_buffered, 0u);

  // The healthy flow carried on through it all.
  const std::uint32_t seen = healthy.received();
  EXPECT_TRUE(wait_until([&] { return healthy.received() >= seen + 1000; }, scaled(10s)))
      << "the healthy flow stalled";
  EXPECT_TRUE(healthy.finish(scaled(20s)));
  EXPECT_EQ(server.stats().protocol_errors, 0u);
}

}  // namespace
}  // namespace rendr::itest
