// udpflow paths end to end over real loopback UDP: stream data intact in every mode, flows that
// mix tcp and udpflow paths and migrate between them, loss and a blackhole on one udpflow path
// (through the UDP fault proxy), a flood of garbage datagrams at the listener, and a clean EOF.
#include "harness.hpp"
#include "support/udp_fault_proxy.hpp"

#include <asio/ip/udp.hpp>

namespace rendr::itest {
namespace {

class UdpflowTest : public IntegrationTest {
 protected:
  // A listener with one TCP and one udpflow address (both 127.0.0.1, free ports).
  void listen_both(ListenOptions options = {}) {
    listen(options);
    ASSERT_FALSE(HasFatalFailure());
    ASSERT_EQ(listener_.listen_udpflow("127.0.0.1:0"), std::error_code{});
    ASSERT_NE(listener_.udpflow_port(), 0);
  }
  static PathSpec udp_path(std::uint16_t port) {
    return PathSpec::parse("udpflow://" + loopback(port));
  }
  PathSpec tcp_path() const { return PathSpec::parse("tcp://" + loopback(listener_.port())); }
};

TEST_F(UdpflowTest, StreamArrivesIntactBothWays) {
  listen_both();
  Conn client;
  Conn server;
  ASSERT_TRUE(connect_all_paths(dialer({udp_path(listener_.udpflow_port())}), client, server));
  EXPECT_EQ(client.stats().paths.at(0).spec.rfind("udpflow://", 0), 0u);

  StreamWriter upload(client, {.seed = 1, .bytes = 16 * MiB});
  StreamReader upload_reader(server, {.seed = 1});
  StreamWriter download(server, {.seed = 2, .bytes = 8 * MiB});
  StreamReader download_reader(client, {.seed = 2});
  finish_transfer(upload, upload_reader, scaled(30s));
  finish_transfer(download, download_reader, scaled(30s));
  EXPECT_EQ(listener_.stats().flows_opened, 1u);
}

class UdpflowModeTest : public UdpflowTest, public ::testing::WithParamInterface<Mode> {};

// Every mode over two udpflow paths: every byte once, in order, both ways; EOF at the end.
TEST_P(UdpflowModeTest, TwoUdpflowPathsCarryTheStream) {
  listen_both();
  ASSERT_EQ(listener_.listen_udpflow("127.0.0.1:0"), std::error_code{});
  Dialer d = dialer({udp_path(listener_.udpflow_port(0)), udp_path(listener_.udpflow_port(1))});
  d.mode = GetParam();
  Conn client;
  Conn server;
  ASSERT_TRUE(connect_all_paths(d, client, server));
  StreamWriter upload(client, {.seed = 3, .bytes = 16 * MiB});
  StreamReader reader(server, {.seed = 3});
  StreamWriter download(server, {.seed = 4, .bytes = 4 * MiB});
  StreamReader download_reader(client, {.seed = 4});
  finish_transfer(upload, reader, scaled(30s));
  finish_transfer(download, download_reader, scaled(30s));
  EXPECT_EQ(client.mode(), GetParam());
  // The second path is a JOIN (more if a path was declared dead on a starved machine and
  // re-joined).
  EXPECT_GE(listener_.stats().joins_accepted, 1u);
  if (GetParam() != Mode::prime) {
    // Race and bond send on both paths.
    for (const PathInfo& p : client.stats().paths)
      EXPECT_GT(p.bytes_sent, 0u) << describe(client.stats());
  }
}

INSTANTIATE_TEST_SUITE_P(AllModes, UdpflowModeTest,
                         ::testing::Values(Mode::prime, Mode::race, Mode::bond),
                         [](const auto& info) { return std::string(to_string(info.param)); });

// A flow opened over udpflow that JOINs over tcp, and one opened over tcp that JOINs over
// udpflow; each migrates to the other kind of path and back, nothing lost.
TEST_F(UdpflowTest, MixedFlowsMigrateBetweenTcpAndUdpflowBothWays) {
  listen_both();
  for (const bool udp_first : {true, false}) {
    SCOPED_TRACE(udp_first ? "opened over udpflow" : "opened over tcp");
    std::vector<PathSpec> paths{udp_path(listener_.udpflow_port()), tcp_path()};
    if (!udp_first) std::swap(paths[0], paths[1]);
    Conn client;
    Conn server;
    ASSERT_TRUE(connect_all_paths(dialer(paths), client, server));
    const PathId via_tcp = path_via_port(client, listener_.port());
    const PathId via_udp = path_via_port(client, listener_.udpflow_port());
    ASSERT_NE(via_tcp, kNoPath);
    ASSERT_NE(via_udp, kNoPath);
    const PathId first = udp_first ? via_udp : via_tcp;
    const PathId second = udp_first ? via_tcp : via_udp;
    const auto is_up = [&](PathId id) { return path_info(client, id)->state == "up"; };
    const auto sent = [&](PathId id) { return path_info(client, id)->bytes_sent; };
    std::optional<std::error_code> away;
    std::optional<std::error_code> back;
    std::uint64_t second_at_away = 0;
    StreamWriter upload(
        client, {.seed = 5, .bytes = 24 * MiB, .after_write = [&](std::uint64_t written) {
                   if (written >= 4 * MiB && !away && is_up(second)) {
                     second_at_away = sent(second);
                     away = client.migrate(second);
                   }
                   if (away && !back && sent(second) >= second_at_away + 2 * MiB && is_up(first))
                     back = client.migrate(first);
                 }});
    StreamReader reader(server, {.seed = 5});
    finish_transfer(upload, reader, scaled(30s));
    ASSERT_TRUE(away.has_value()) << describe(client.stats());
    EXPECT_EQ(*away, std::error_code{});
    ASSERT_TRUE(back.has_value()) << describe(client.stats());
    EXPECT_EQ(*back, std::error_code{});
    EXPECT_GE(sent(second), 2 * MiB) << describe(client.stats());
    // (Not counted exactly: on a starved machine a path may be declared dead and re-joined,
    // and a migration to the path already active counts nothing.)
    EXPECT_GE(client.stats().migrations_explicit, 1u);
  }
  EXPECT_EQ(listener_.stats().flows_opened, 2u);
  EXPECT_GE(listener_.stats().joins_accepted, 2u);
}

// 5 % loss each way on the only path (UDP fault proxy): every byte arrives, and the loss was
// detected and repaired (lost DATA sent again).
TEST_F(UdpflowTest, LossOnAUdpflowPathIsRepaired) {
  listen_both();
  testing::UdpFaultProxy proxy("127.0.0.1", "127.0.0.1", listener_.udpflow_port(), 9);
  Conn client;
  Conn server;
  ASSERT_TRUE(connect_all_paths(dialer({udp_path(proxy.port())}), client, server));
  proxy.set_faults({.loss = 0.05}, {.loss = 0.05});
  StreamWriter upload(client, {.seed = 6, .bytes = 8 * MiB});
  StreamReader reader(server, {.seed = 6});
  StreamWriter download(server, {.seed = 7, .bytes = 2 * MiB});
  StreamReader download_reader(client, {.seed = 7});
  finish_transfer(upload, reader, scaled(40s));
  finish_transfer(download, download_reader, scaled(40s));
  EXPECT_GT(proxy.counters_client_to_server().dropped, 0u);
  EXPECT_GT(proxy.counters_server_to_client().dropped, 0u);
  EXPECT_GT(client.stats().retransmitted_bytes, 0u) << describe(client.stats());
  EXPECT_GT(server.stats().retransmitted_bytes, 0u) << describe(server.stats());
}

// The same loss with BBR as the client's controller (PathSpec::congestion) and NewReno as the
// server's (ListenOptions::udpflow_congestion): every byte arrives, each end runs the
// controller it chose, the client's losses were counted and its model has a bandwidth.
TEST_F(UdpflowTest, LossOnAUdpflowPathIsRepairedUnderBbr) {
  ListenOptions options;
  options.udpflow_congestion = Congestion::new_reno;
  listen_both(options);
  testing::UdpFaultProxy proxy("127.0.0.1", "127.0.0.1", listener_.udpflow_port(), 11);
  PathSpec path = udp_path(proxy.port());
  path.congestion = Congestion::bbr;
  Conn client;
  Conn server;
  ASSERT_TRUE(connect_all_paths(dialer({path}), client, server));
  proxy.set_faults({.loss = 0.05}, {.loss = 0.05});
  const auto [c, s] = transfer_both_ways(client, server, {.seed = 8, .bytes = 8 * MiB},
                                         {.seed = 9, .bytes = 2 * MiB}, scaled(40s));
  ASSERT_EQ(c.paths.size(), 1u);
  ASSERT_EQ(s.paths.size(), 1u);
  EXPECT_EQ(c.paths[0].congestion_control, "bbr");
  EXPECT_EQ(s.paths[0].congestion_control, "newreno");
  EXPECT_GT(c.paths[0].packets_lost, 0u) << describe(c);
  // Both controllers answered losses by lowering their windows.
  EXPECT_GT(c.paths[0].congestion_events, 0u) << describe(c);
  EXPECT_GT(s.paths[0].congestion_events, 0u) << describe(s);
  EXPECT_GT(c.paths[0].bandwidth_estimate, 0u) << describe(c);
  EXPECT_EQ(s.paths[0].bandwidth_estimate, 0u);
  EXPECT_GT(proxy.counters_client_to_server().dropped, 0u);
  EXPECT_GT(c.retransmitted_bytes, 0u) << describe(c);
}

// The active udpflow path goes dark both ways: the flow fails over to its other udpflow path,
// and the application sees neither an error nor a lost byte.
TEST_F(UdpflowTest, BlackholedUdpflowPathFailsOver) {
  listen_both();
  testing::UdpFaultProxy proxy("127.0.0.1", "127.0.0.1", listener_.udpflow_port(), 11);
  Conn client;
  Conn server;
  ASSERT_TRUE(connect_all_paths(
      dialer({udp_path(proxy.port()), udp_path(listener_.udpflow_port())}), client, server));
  const PathId via_proxy = path_via_port(client, proxy.port());
  ASSERT_NE(via_proxy, kNoPath);
  ASSERT_EQ(client.migrate(via_proxy), std::error_code{});
  MigrationLog log;
  log.attach(client);
  bool killed = false;
  StreamWriter upload(client,
                      {.seed = 8, .bytes = 16 * MiB, .after_write = [&](std::uint64_t written) {
                         if (written >= 4 * MiB && !killed) {
                           proxy.set_faults({.blackhole = true}, {.blackhole = true});
                           killed = true;
                         }
                       }});
  StreamReader reader(server, {.seed = 8});
  finish_transfer(upload, reader, scaled(30s));
  EXPECT_TRUE(killed);
  EXPECT_GT(proxy.counters_client_to_server().dropped, 0u);
  EXPECT_GE(log.count(MigrateCause::death), 1u) << describe(log) << describe(client.stats());
  EXPECT_NE(path_info(client, via_proxy)->state, "up");
}

// Datagrams nobody can open, sent at the listener's udpflow port while a flow streams: short
// junk, handshake packets with junk frames or frames not allowed in clear, protected packets on
// made-up connection ids. The flow is unharmed and nothing is opened or answered.
TEST_F(UdpflowTest, GarbageDatagramsAtTheListenerHarmNoFlow) {
  listen_both();
  Conn client;
  Conn server;
  ASSERT_TRUE(connect_all_paths(dialer({udp_path(listener_.udpflow_port())}), client, server));
  asio::io_context io;
  asio::ip::udp::socket stranger(io, asio::ip::udp::endpoint(asio::ip::udp::v4(), 0));
  stranger.non_blocking(true);
  const asio::ip::udp::endpoint target(asio::ip::make_address("127.0.0.1"),
                                       listener_.udpflow_port());
  std::uint64_t sent = 0;
  const auto flood = [&] {
    std::array<std::uint8_t, 1200> junk{};
    for (std::size_t i = 0; i < junk.size(); ++i)
      junk[i] = static_cast<std::uint8_t>(i * 7 + sent);
    std::error_code ec;
    for (const std::uint8_t kind : {0x01, 0x02, 0x7f}) {
      junk[0] = kind;
      stranger.send_to(asio::buffer(junk), target, 0, ec);
      stranger.send_to(asio::buffer(junk.data(), 20), target, 0, ec);
      ++sent;
    }
    // A handshake packet whose one frame is well-formed but may not travel in clear.
    const Bytes data = encode_frame(wire::Frame{0, wire::Data{0, junk}});
    std::array<std::uint8_t, 21> header{0x01};
    header[1] = static_cast<std::uint8_t>(sent);
    std::vector<std::uint8_t> packet(header.begin(), header.end());
    packet.insert(packet.end(), data.begin(), data.begin() + 600);
    stranger.send_to(asio::buffer(packet), target, 0, ec);
    ++sent;
  };
  StreamWriter upload(
      client, {.seed = 9, .bytes = 8 * MiB, .after_write = [&](std::uint64_t) { flood(); }});
  StreamReader reader(server, {.seed = 9});
  StreamWriter download(server, {.seed = 10, .bytes = 2 * MiB});
  StreamReader download_reader(client, {.seed = 10});
  finish_transfer(upload, reader, scaled(20s));
  finish_transfer(download, download_reader, scaled(20s));
  EXPECT_GT(sent, 0u);
  EXPECT_EQ(listener_.stats().flows_opened, 1u);
  // Nothing came back to the stranger.
  std::array<std::uint8_t, 2048> answer{};
  asio::ip::udp::endpoint from;
  std::error_code ec;
  EXPECT_EQ(stranger.receive_from(asio::buffer(answer), from, 0, ec), 0u);
  EXPECT_EQ(ec, asio::error::would_block);
}

}  // namespace
}  // namespace rendr::itest
