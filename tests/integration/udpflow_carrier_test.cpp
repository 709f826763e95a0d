// The udpflow carrier's packet protection over real loopback UDP (src/carrier/udp/
// udpflow_carrier.*): a server path seals what the core hands it with the path's s2c keys, opens
// the client's c2s packets, and drops (and counts) a tampered packet, frames in clear after the
// handshake, and frames that may never travel in clear. A raw UDP socket plays the client.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>

#include "carrier/udp/udp_demux.hpp"
#include "carrier/udp/udpflow_carrier.hpp"
#include "core/crypto.hpp"
#include "wire/datagram.hpp"
#include "wire/frame.hpp"

namespace rendr::carrier::udp {
namespace {

using namespace std::chrono_literals;
using wire::Byte;
namespace dg = wire::datagram;
using core::crypto::PacketDirection;

#ifdef RENDR_SANITIZED
constexpr auto kDeadline = 15s;
#else
constexpr auto kDeadline = 5s;
#endif

constexpr dg::ConnectionId kServerCid = 0x1111222233334444;
constexpr dg::ConnectionId kClientCid = 0x5555666677778888;
constexpr dg::ConnectionId kInitialCid = 0x0123456789abcdef;  // the client's first, random dcid

// Records what the carrier delivers; hands it one PING packet to send when asked.
class Recorder final : public CarrierHandler {
 public:
  void on_frames(const std::vector<wire::Frame>&, const wire::Slice&) override {}
  void on_down(DownReason, std::error_code, wire::DecodeError) override {}
  bool pull(wire::TransmitBatch& out) override {
    std::lock_guard lock(mu_);
    if (!ping_owed_) return false;
    ping_owed_ = false;
    wire::OutFrame f;
    f.header_size =
        static_cast<std::uint8_t>(wire::encode(wire::Frame{0, wire::Ping{42, 7}}, f.header));
    out.begin_packet(5, 1171);
    out.push(std::move(f));
    out.end_packet();
    return true;
  }
  void on_packets(std::span<const ReceivedPacket> packets) override {
    std::lock_guard lock(mu_);
    for (const auto& p : packets)
      received_.push_back({p.number, p.frames.size()});
  }
  void owe_ping() {
    std::lock_guard lock(mu_);
    ping_owed_ = true;
  }
  std::vector<std::pair<std::uint64_t, std::size_t>> received() {
    std::lock_guard lock(mu_);
    return received_;
  }

 private:
  std::mutex mu_;
  bool ping_owed_ = false;
  std::vector<std::pair<std::uint64_t, std::size_t>> received_;
};

std::vector<Byte> frame_bytes(const wire::Frame& frame) {
  std::vector<Byte> out(2048);
  out.resize(wire::encode(frame, out));
  return out;
}

class UdpflowCarrierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_.fill(0x5a);
    demux_ =
        UdpDemux::open(asio::make_strand(io_),
                       asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0), nullptr);
    demux_->start();
    client_.open(asio::ip::udp::v4());
    client_.bind(asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    server_at_ = demux_->socket().local_endpoint();
    carrier_ =
        UdpflowCarrier::make_server(demux_, kServerCid, kClientCid, client_.local_endpoint());
    ASSERT_TRUE(carrier_->route_to_carrier());
    carrier_->set_flow_key(key_);
    carrier_->start(recorder_);
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    carrier_->abort();
    carrier_.reset();
    demux_->close();
    demux_.reset();
    work_.reset();
    io_.stop();
    thread_.join();
  }

  // A protected client packet: the frames sealed with the path's c2s keys.
  std::vector<Byte> protected_packet(std::uint64_t pn, const std::vector<Byte>& frames) {
    dg::PacketProtector sealer(
        core::crypto::derive_packet_keys(key_, PacketDirection::client_to_server, kServerCid));
    std::vector<Byte> packet(dg::kProtectedHeaderSize + frames.size() + dg::kTagSize);
    std::copy(frames.begin(), frames.end(), packet.begin() + dg::kProtectedHeaderSize);
    packet.resize(sealer.seal(kServerCid, pn, packet, frames.size()));
    return packet;
  }
  std::vector<Byte> handshake_packet(std::uint64_t pn, const std::vector<Byte>& frames,
                                     dg::ConnectionId dcid = kServerCid) {
    std::vector<Byte> packet(dg::kHandshakeHeaderSize);
    dg::encode_handshake_header(dcid, kClientCid, pn, packet);
    packet.insert(packet.end(), frames.begin(), frames.end());
    return packet;
  }
  void send(const std::vector<Byte>& packet) { client_.send_to(asio::buffer(packet), server_at_); }
  bool wait_for(std::function<bool()> done) {
    const auto deadline = std::chrono::steady_clock::now() + kDeadline;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(1ms);
    }
    return true;
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  core::crypto::FlowKey key_{};
  std::shared_ptr<UdpDemux> demux_;
  asio::ip::udp::socket client_{io_};
  asio::ip::udp::endpoint server_at_;
  std::shared_ptr<Recorder> recorder_ = std::make_shared<Recorder>();
  std::shared_ptr<UdpflowCarrier> carrier_;
  std::thread thread_;
};

TEST_F(UdpflowCarrierTest, OpensSealedPacketsAndDropsTamperedOnesUnanswered) {
  const auto ping = frame_bytes(wire::Frame{0, wire::Ping{1, 2}});
  // Before the handshake is over a PING may come in clear.
  send(handshake_packet(0, ping));
  ASSERT_TRUE(wait_for([&] { return recorder_->received().size() == 1; }));

  auto tampered = protected_packet(1, ping);
  tampered[dg::kProtectedHeaderSize] ^= 0x01;
  send(tampered);
  send(protected_packet(2, ping));
  ASSERT_TRUE(wait_for([&] { return recorder_->received().size() == 2; }));
  EXPECT_EQ(recorder_->received().back().first, 2u);
  EXPECT_TRUE(wait_for([&] { return carrier_->counters().dropped_auth_failed.load() == 1; }));

  // After a protected packet, nothing more is taken in clear: not even a PING.
  send(handshake_packet(3, ping));
  EXPECT_TRUE(wait_for([&] { return carrier_->counters().dropped_clear_frames.load() == 1; }));
  EXPECT_EQ(recorder_->received().size(), 2u);
}

// A client that has not heard the server's id repeats its first packet to its own random dcid:
// the path takes that (handshake packets only) once the listener routed the id to it.
TEST_F(UdpflowCarrierTest, TheClientsInitialDcidReachesThePathForHandshakePacketsOnly) {
  const auto ping = frame_bytes(wire::Frame{0, wire::Ping{1, 2}});
  send(handshake_packet(0, ping, kInitialCid));  // not routed yet: the listener's
  send(handshake_packet(1, ping));
  ASSERT_TRUE(wait_for([&] { return recorder_->received().size() == 1; }));
  std::promise<bool> routed;
  asio::post(demux_->socket().executor(),
             [&] { routed.set_value(carrier_->route_initial_dcid(kInitialCid)); });
  ASSERT_TRUE(routed.get_future().get());
  send(handshake_packet(2, ping, kInitialCid));
  ASSERT_TRUE(wait_for([&] { return recorder_->received().size() == 2; }));
  EXPECT_EQ(recorder_->received().back().first, 2u);
  // A protected packet is never taken on it.
  dg::PacketProtector sealer(
      core::crypto::derive_packet_keys(key_, PacketDirection::client_to_server, kInitialCid));
  std::vector<Byte> packet(dg::kProtectedHeaderSize + ping.size() + dg::kTagSize);
  std::copy(ping.begin(), ping.end(), packet.begin() + dg::kProtectedHeaderSize);
  packet.resize(sealer.seal(kInitialCid, 3, packet, ping.size()));
  send(packet);
  EXPECT_TRUE(wait_for([&] { return carrier_->counters().dropped_wrong_dcid.load() == 1; }));
  EXPECT_EQ(recorder_->received().size(), 2u);
}

TEST_F(UdpflowCarrierTest, DataInAClearPacketIsDropped) {
  const std::vector<Byte> payload(100, 0x33);
  send(handshake_packet(0, frame_bytes(wire::Frame{0, wire::Data{0, payload}})));
  EXPECT_TRUE(wait_for([&] { return carrier_->counters().dropped_clear_frames.load() == 1; }));
  EXPECT_TRUE(recorder_->received().empty());
}

TEST_F(UdpflowCarrierTest, SealsWhatTheCoreSendsWithTheServerToClientKeys) {
  recorder_->owe_ping();
  carrier_->kick();
  std::vector<Byte> datagram(2048);
  asio::ip::udp::endpoint from;
  client_.non_blocking(false);
  const std::size_t n = client_.receive_from(asio::buffer(datagram), from);
  datagram.resize(n);
  dg::PacketHeader header;
  ASSERT_EQ(dg::parse_header(datagram, header), dg::PacketError::none);
  EXPECT_EQ(header.kind, dg::PacketKind::protected_);
  EXPECT_EQ(header.dcid, kClientCid);
  dg::PacketProtector opener(
      core::crypto::derive_packet_keys(key_, PacketDirection::server_to_client, kClientCid));
  wire::MutableBytes frames;
  ASSERT_EQ(opener.open(header, 5, datagram, frames), dg::PacketError::none);
  wire::Frame frame;
  ASSERT_EQ(wire::decode(frames, frame).error, wire::DecodeError::none);
  ASSERT_TRUE(std::holds_alternative<wire::Ping>(frame.body));
  EXPECT_EQ(std::get<wire::Ping>(frame.body).id, 42u);
}

}  // namespace
}  // namespace rendr::carrier::udp
