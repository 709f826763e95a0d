// udpflow address validation and path MTU over real loopback UDP (docs/design.md, "Address
// validation" and "Path MTU"): a client whose NAT rebinds mid-transfer is followed once its new
// port answers a challenge; an on-path attacker racing copies of genuine packets from its own
// address (or replaying old ones) never moves the path and gets at most 3x what it sent; an
// OPEN flood makes the listener answer with stateless RETRYs and a healthy client follows
// one; path-MTU probing grows the datagrams above 1200 bytes up to the ceiling it is given, and
// falls back when the path's MTU shrinks mid-transfer.
#include "core/crypto.hpp"
#include "harness.hpp"
#include "support/open_flood.hpp"
#include "support/udp_fault_proxy.hpp"
#include "wire/datagram.hpp"

#include <cstring>
#include <mutex>

#include <asio/ip/udp.hpp>

namespace rendr::itest {
namespace {

class UdpflowRebindingTest : public IntegrationTest {
 protected:
  void listen_udp(ListenOptions options = {}) {
    listen(options);
    ASSERT_FALSE(HasFatalFailure());
    ASSERT_EQ(listener_.listen_udpflow("127.0.0.1:0"), std::error_code{});
    ASSERT_NE(listener_.udpflow_port(), 0);
  }
  static PathSpec udp_path(std::uint16_t port, std::size_t max_datagram_size = 0) {
    PathSpec spec = PathSpec::parse("udpflow://" + loopback(port));
    spec.max_datagram_size = max_datagram_size;
    return spec;
  }
  asio::ip::udp::endpoint listener_endpoint() const {
    return {asio::ip::make_address("127.0.0.1"), listener_.udpflow_port()};
  }
};

std::uint16_t port_of(const std::string& host_port) {
  return static_cast<std::uint16_t>(std::stoul(host_port.substr(host_port.rfind(':') + 1)));
}

// A socket of the attacker's own: counts what it sends and what it is sent.
class Stranger {
 public:
  Stranger() : socket_(io_, asio::ip::udp::endpoint(asio::ip::udp::v4(), 0)) {
    socket_.non_blocking(true);
    socket_.set_option(asio::socket_base::receive_buffer_size(4 * 1024 * 1024));
  }
  void send(std::span<const std::uint8_t> bytes, const asio::ip::udp::endpoint& to) {
    std::error_code ec;
    if (socket_.send_to(asio::buffer(bytes.data(), bytes.size()), to, 0, ec) == bytes.size()) {
      sent_bytes_ += bytes.size();
      ++sent_datagrams_;
    }
  }
  // Reads whatever has arrived (non-blocking).
  void drain() {
    std::array<std::uint8_t, 65536> buffer{};
    asio::ip::udp::endpoint from;
    std::error_code ec;
    for (;;) {
      const std::size_t n = socket_.receive_from(asio::buffer(buffer), from, 0, ec);
      if (ec) return;
      received_bytes_ += n;
      ++received_datagrams_;
    }
  }
  std::uint64_t sent_bytes() const { return sent_bytes_; }
  std::uint64_t sent_datagrams() const { return sent_datagrams_; }
  std::uint64_t received_bytes() const { return received_bytes_; }
  std::uint64_t received_datagrams() const { return received_datagrams_; }
  std::uint16_t port() const { return socket_.local_endpoint().port(); }

 private:
  asio::io_context io_;
  asio::ip::udp::socket socket_;
  std::atomic<std::uint64_t> sent_bytes_{0};
  std::atomic<std::uint64_t> sent_datagrams_{0};
  std::uint64_t received_bytes_ = 0;
  std::uint64_t received_datagrams_ = 0;
};

// A handshake packet (docs/protocol.md §10.1) holding `frames`, from a fresh connection id.
std::vector<std::uint8_t> handshake_packet(std::span<const std::uint8_t> frames) {
  std::vector<std::uint8_t> packet(wire::datagram::kHandshakeHeaderSize);
  std::array<std::uint8_t, 16> ids{};
  core::crypto::random_bytes(ids);
  wire::datagram::ConnectionId dcid = 0;
  wire::datagram::ConnectionId scid = 0;
  std::memcpy(&dcid, ids.data(), 8);
  std::memcpy(&scid, ids.data() + 8, 8);
  wire::datagram::encode_handshake_header(dcid | 1, scid | 1, 0,
                                          wire::MutableBytes(packet.data(), packet.size()));
  packet.insert(packet.end(), frames.begin(), frames.end());
  return packet;
}

// (a) The proxy in front of the client moves it to a new source port mid-transfer (a NAT
// rebinding). The server keeps sending to the old port until the new one echoed its challenge,
// then follows: both transfers complete intact and the server's path shows the new port.
TEST_F(UdpflowRebindingTest, NatRebindingIsFollowedAfterValidation) {
  listen_udp();
  testing::UdpFaultProxy proxy("127.0.0.1", "127.0.0.1", listener_.udpflow_port(), 21);
  Conn client;
  Conn server;
  ASSERT_TRUE(connect_all_paths(dialer({udp_path(proxy.port())}), client, server));
  const std::string before = server.stats().paths.at(0).peer_address;
  std::atomic<bool> rebound{false};
  StreamWriter upload(client, {.seed = 31, .bytes = 16 * MiB});
  StreamReader reader(server, {.seed = 31, .after_read = [&](std::uint64_t read) {
                                 if (read >= 2 * MiB && !rebound.exchange(true))
                                   proxy.rebind_source_ports();
                               }});
  // The download runs until the checks are done: it keeps the flow (and its stats) alive, and
  // it only arrives once the server sends to the new port.
  StreamWriter download(server, {.seed = 32, .bytes = std::nullopt});
  StreamReader download_reader(client, {.seed = 32});
  finish_transfer(upload, reader, scaled(40s));
  ASSERT_TRUE(rebound);
  EXPECT_EQ(proxy.rebinds(), 1u);
  const auto validated = [&] { return server.stats().paths.at(0).path_validations >= 1; };
  ASSERT_TRUE(wait_until(validated, scaled(10s))) << describe(server.stats());
  const std::uint64_t downloaded = download_reader.progress();
  const auto flowing = [&] { return download_reader.progress() >= downloaded + 1 * MiB; };
  EXPECT_TRUE(wait_until(flowing, scaled(10s))) << describe(server.stats());
  const PathInfo path = server.stats().paths.at(0);
  EXPECT_EQ(path.state, "up");
  EXPECT_NE(port_of(path.peer_address), port_of(before)) << before;
  EXPECT_GE(path.path_challenges_sent, 1u);
  download.stop();
  finish_transfer(download, download_reader, scaled(40s));
  EXPECT_EQ(listener_.stats().flows_opened, 1u);
}

// (b, c) An on-path attacker sees every datagram the client sends (the proxy's tap) and races a
// copy of each from its own address straight to the listener, ahead of the genuine one (which
// the proxy delays): its copies are the newest packets of the path, so the server challenges
// the attacker's address, which cannot answer (the challenge is sealed with the path's keys).
// Then it replays old packets. The path never moves, the transfers complete intact, and the
// attacker receives at most 3x what it sent (it would get the download were the path moved).
TEST_F(UdpflowRebindingTest, SpoofedAndReplayedPacketsDoNotMoveThePath) {
  listen_udp();
  testing::UdpFaultProxy proxy("127.0.0.1", "127.0.0.1", listener_.udpflow_port(), 22);
  Conn client;
  Conn server;
  ASSERT_TRUE(connect_all_paths(dialer({udp_path(proxy.port())}), client, server));
  const std::string genuine = server.stats().paths.at(0).peer_address;

  Stranger attacker;
  const asio::ip::udp::endpoint target = listener_endpoint();
  std::mutex captured_mu;
  std::vector<std::vector<std::uint8_t>> captured;
  constexpr std::size_t kRaced = 200;
  proxy.set_faults({.delay = 5ms}, {});
  proxy.set_client_tap([&](std::span<const std::uint8_t> d) {
    std::lock_guard lock(captured_mu);
    if (captured.size() >= kRaced) return;
    captured.emplace_back(d.begin(), d.end());
    attacker.send(d, target);  // arrives before the genuine copy, which the proxy delays
  });
  StreamWriter upload(client, {.seed = 33, .bytes = std::nullopt});
  StreamReader reader(server, {.seed = 33});
  StreamWriter download(server, {.seed = 34, .bytes = std::nullopt});
  StreamReader download_reader(client, {.seed = 34});
  const auto server_path = [&] {
    const ConnStats stats = server.stats();
    return stats.paths.empty() ? PathInfo{} : stats.paths.front();
  };
  EXPECT_TRUE(wait_until([&] { return server_path().path_challenges_sent >= 1; }, scaled(20s)))
      << describe(server.stats()) << server.stats().last_down_cause << " "
      << client.stats().last_down_cause;
  proxy.set_client_tap({});
  // On a starved machine the client may declare the path dead and re-join it from a new socket
  // (a new proxy session, so a new genuine address, new keys and fresh validation counters):
  // then the counters below start again, and the old packets no longer open.
  const auto rejoined = [&] { return server_path().peer_address != genuine; };
  // Nobody answers from the attacker's address: its candidacy times out (3 challenges).
  EXPECT_TRUE(wait_until([&] { return server_path().path_validations_failed >= 1 || rejoined(); },
                         scaled(20s)))
      << describe(server.stats());
  // Replays of packets the server has seen: older than the newest, they start nothing.
  {
    std::lock_guard lock(captured_mu);
    for (const auto& d : captured)
      attacker.send(d, target);
  }
  EXPECT_TRUE(wait_until([&] { return server_path().stale_address_packets >= 1 || rejoined(); },
                         scaled(20s)))
      << describe(server.stats());
  // The flow goes on over the genuine address.
  const std::uint64_t uploaded = reader.progress();
  const std::uint64_t downloaded = download_reader.progress();
  EXPECT_TRUE(wait_until(
      [&] {
        return reader.progress() >= uploaded + 1 * MiB &&
               download_reader.progress() >= downloaded + 1 * MiB;
      },
      scaled(20s)))
      << describe(server.stats());
  const PathInfo path = server_path();
  EXPECT_NE(port_of(path.peer_address), attacker.port());
  if (path.peer_address != genuine) {
    // Re-joined (see above): from the client's new socket, not the attacker's.
    EXPECT_GE(path.up_count, 1u) << describe(server.stats()) << describe(client.stats());
  }
  EXPECT_EQ(path.path_validations, 0u) << describe(server.stats());
  EXPECT_EQ(path.state, "up");
  upload.stop();
  download.stop();
  finish_transfer(upload, reader, scaled(40s));
  finish_transfer(download, download_reader, scaled(40s));
  // What reached the attacker (challenges only) is within 3x of what it sent; had its copies
  // moved the path, it would have received the download.
  attacker.drain();
  EXPECT_GT(attacker.sent_datagrams(), 0u);
  EXPECT_GT(attacker.received_datagrams(), 0u);  // the challenges
  EXPECT_LE(attacker.received_bytes(), 3 * attacker.sent_bytes());
  EXPECT_LT(attacker.received_bytes(), 64 * KiB);
}

// (c) A stranger sends OPENs for flows it never proves, each in its own small datagram: what
// the listener sends back to it (OPEN_ACKs) never exceeds 3x what it sent, counted at its socket.
TEST_F(UdpflowRebindingTest, UnvalidatedAddressGetsAtMostThreeTimesWhatItSent) {
  listen_udp();
  Stranger stranger;
  const asio::ip::udp::endpoint target = listener_endpoint();
  constexpr std::uint64_t kOpens = 20;
  for (std::uint64_t i = 0; i < kOpens; ++i)
    stranger.send(handshake_packet(testing::fresh_open_bytes()), target);
  const auto opened = [&] { return listener_.stats().flows_opened == kOpens; };
  ASSERT_TRUE(wait_until(opened, scaled(10s)));
  const auto answered = [&] {
    stranger.drain();
    return stranger.received_datagrams() >= kOpens;
  };
  EXPECT_TRUE(wait_until(answered, scaled(10s)));
  EXPECT_GT(stranger.received_bytes(), 0u);
  EXPECT_LE(stranger.received_bytes(), 3 * stranger.sent_bytes());
}

// (d) As many OPENs as udpflow_retry_above_unproven await their PROOF (a flood that never
// proves): the listener answers further OPENs with stateless RETRYs, each no larger than the
// OPEN; a healthy client follows its RETRY (echoing the token) and connects, and its stream
// arrives intact.
TEST_F(UdpflowRebindingTest, OpenFloodMakesTheListenerRetryAndAClientFollows) {
  ListenOptions options;
  options.udpflow_retry_above_unproven = 8;
  options.handshake_timeout = 60s;  // the flood's flows stay unproven for the whole test
  listen_udp(options);
  Stranger flood;
  const asio::ip::udp::endpoint target = listener_endpoint();
  for (int i = 0; i < 8; ++i)
    flood.send(handshake_packet(testing::fresh_open_bytes()), target);
  const auto loaded = [&] { return listener_.stats().flows_opened == 8; };
  ASSERT_TRUE(wait_until(loaded, scaled(10s)));
  const std::uint64_t flood_bytes_before = flood.sent_bytes();
  flood.drain();
  const std::uint64_t answers_before = flood.received_bytes();
  for (int i = 0; i < 20; ++i)
    flood.send(handshake_packet(testing::fresh_open_bytes()), target);
  const auto retried = [&] { return listener_.stats().retries_sent >= 20; };
  ASSERT_TRUE(wait_until(retried, scaled(10s)));
  EXPECT_EQ(listener_.stats().flows_opened, 8u);  // no state for the retried OPENs
  const auto retries_in = [&] {
    flood.drain();
    return flood.received_datagrams() >= 8 + 20;
  };
  EXPECT_TRUE(wait_until(retries_in, scaled(10s)));
  // Each RETRY is no larger than the OPEN it answers.
  EXPECT_LE(flood.received_bytes() - answers_before, flood.sent_bytes() - flood_bytes_before);

  Conn client;
  Conn server;
  ASSERT_TRUE(connect_all_paths(dialer({udp_path(listener_.udpflow_port())}), client, server));
  EXPECT_GE(listener_.stats().retries_sent, 21u);
  EXPECT_EQ(listener_.stats().retry_tokens_valid, 1u);
  StreamWriter upload(client, {.seed = 35, .bytes = 2 * MiB});
  StreamReader reader(server, {.seed = 35});
  finish_transfer(upload, reader, scaled(30s));
}

// Path-MTU probing: loopback's route takes far more than the default ceiling (8952, jumbo
// frames), so the search tops out there on both ends and every probe up to it passes: both ends
// grow their datagrams above Ethernet's 1452 while a transfer runs.
TEST_F(UdpflowRebindingTest, MtuGrowsToJumboSizesOnLoopback) {
  listen_udp();
  Conn client;
  Conn server;
  ASSERT_TRUE(connect_all_paths(dialer({udp_path(listener_.udpflow_port())}), client, server));
  StreamWriter upload(client, {.seed = 36, .bytes = std::nullopt});
  StreamReader reader(server, {.seed = 36});
  StreamWriter download(server, {.seed = 37, .bytes = std::nullopt});
  StreamReader download_reader(client, {.seed = 37});
  const auto grown = [&] {
    return client.stats().paths.at(0).mtu > 1452 && server.stats().paths.at(0).mtu > 1452;
  };
  EXPECT_TRUE(wait_until(grown, scaled(20s)))
      << describe(client.stats()) << describe(server.stats());
  upload.stop();
  download.stop();
  finish_transfer(upload, reader, scaled(30s));
  finish_transfer(download, download_reader, scaled(30s));
  for (const Conn* c : {&client, &server}) {
    const PathInfo p = c->stats().paths.at(0);
    EXPECT_EQ(p.mtu_ceiling, 8952u) << describe(c->stats());
    EXPECT_LE(p.mtu, 8952u);
  }
}

// A smaller ceiling (the dial's PathSpec and the listener's option) is respected: probing
// stops there though loopback would carry far more.
TEST_F(UdpflowRebindingTest, MtuStaysWithinASmallerCeiling) {
  ListenOptions options;
  options.udpflow_max_datagram_size = 1280;
  listen_udp(options);
  Conn client;
  Conn server;
  ASSERT_TRUE(
      connect_all_paths(dialer({udp_path(listener_.udpflow_port(), 1280)}), client, server));
  StreamWriter upload(client, {.seed = 38, .bytes = std::nullopt});
  StreamReader reader(server, {.seed = 38});
  StreamWriter download(server, {.seed = 39, .bytes = std::nullopt});
  StreamReader download_reader(client, {.seed = 39});
  const auto grown = [&] {
    return client.stats().paths.at(0).mtu > 1200 && server.stats().paths.at(0).mtu > 1200;
  };
  EXPECT_TRUE(wait_until(grown, scaled(20s)))
      << describe(client.stats()) << describe(server.stats());
  upload.stop();
  download.stop();
  finish_transfer(upload, reader, scaled(30s));
  finish_transfer(download, download_reader, scaled(30s));
  for (const Conn* c : {&client, &server}) {
    const PathInfo p = c->stats().paths.at(0);
    EXPECT_EQ(p.mtu_ceiling, 1280u) << describe(c->stats());
    EXPECT_LE(p.mtu, 1280u);
  }
}

// The path's MTU shrinks mid-transfer (the UDP fault proxy starts dropping datagrams above
// 1300 bytes both ways, as a router would after a route change): full-size datagrams vanish
// while small ones pass. Both ends detect it (black-hole detection), fall back to 1200 bytes,
// re-send what was lost and search upward again to what passes. The path never dies, neither
// application sees an error, and both streams arrive intact.
TEST_F(UdpflowRebindingTest, MtuShrinkingMidTransferFallsBackWithoutAnError) {
  constexpr std::size_t kShrunk = 1300;
  listen_udp();
  testing::UdpFaultProxy proxy("127.0.0.1", "127.0.0.1", listener_.udpflow_port(), 41);
  Conn client;
  Conn server;
  ASSERT_TRUE(connect_all_paths(dialer({udp_path(proxy.port())}), client, server));
  StreamWriter upload(client, {.seed = 40, .bytes = std::nullopt});
  StreamReader reader(server, {.seed = 40});
  StreamWriter download(server, {.seed = 41, .bytes = std::nullopt});
  StreamReader download_reader(client, {.seed = 41});
  const auto path = [](const Conn& c) { return c.stats().paths.at(0); };
  const auto grown = [&] { return path(client).mtu > kShrunk && path(server).mtu > kShrunk; };
  ASSERT_TRUE(wait_until(grown, scaled(20s)))
      << describe(client.stats()) << describe(server.stats());

  proxy.set_faults({.max_datagram_bytes = kShrunk}, {.max_datagram_bytes = kShrunk});
  const auto fell_back = [&] {
    return path(client).mtu_black_holes >= 1 && path(server).mtu_black_holes >= 1 &&
           path(client).mtu <= kShrunk && path(server).mtu <= kShrunk;
  };
  EXPECT_TRUE(wait_until(fell_back, scaled(20s)))
      << describe(client.stats()) << describe(server.stats());
  // More data after the fall-back, in datagrams that pass.
  const std::uint64_t up = reader.progress();
  const std::uint64_t down = download_reader.progress();
  const auto flowing = [&] {
    return reader.progress() >= up + 4 * MiB && download_reader.progress() >= down + 4 * MiB;
  };
  EXPECT_TRUE(wait_until(flowing, scaled(20s)))
      << describe(client.stats()) << describe(server.stats());
  for (const Conn* c : {&client, &server})
    EXPECT_EQ(path(*c).state, "up") << describe(c->stats());
  upload.stop();
  download.stop();
  finish_transfer(upload, reader, scaled(30s));
  finish_transfer(download, download_reader, scaled(30s));
  EXPECT_GT(proxy.counters_client_to_server().too_big, 0u);
  EXPECT_GT(proxy.counters_server_to_client().too_big, 0u);
  for (const Conn* c : {&client, &server}) {
    const PathInfo p = path(*c);
    EXPECT_EQ(p.down_count, 0u) << describe(c->stats());  // never declared dead
    EXPECT_EQ(p.up_count, 1u);
    EXPECT_LE(p.mtu, kShrunk);
    EXPECT_GE(p.mtu, 1200u);
  }
  EXPECT_EQ(client.stats().migrations_death, 0u);
}

}  // namespace
}  // namespace rendr::itest
