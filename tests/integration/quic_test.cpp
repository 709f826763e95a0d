// QUIC paths (stream mode): TLS 1.3 with run-time certificates, data integrity, tcp + quic paths
// in one flow migrating between each other, a blackholed quic path failing over, and handshake
// failures that fail the path (with a clear error), never the flow.
#include "carrier/quic/quic_carrier.hpp"
#include "carrier/quic/quic_error.hpp"
#include "harness.hpp"
#include "support/test_cert.hpp"
#include "support/udp_fault_proxy.hpp"
#include "support/udp_relay.hpp"

// After the standard headers (see src/carrier/quic/quic_dial.cpp).
#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>

namespace rendr::itest {
namespace {

using carrier::quic_errc;
using testing::TestCertificate;
using testing::UdpFaultProxy;
using testing::UdpRelay;

class QuicTest : public IntegrationTest {
 protected:
  // A listener with one TCP and one QUIC address (both 127.0.0.1, free ports).
  void listen_both(ListenOptions options = {}) {
    listen(options);
    ASSERT_FALSE(HasFatalFailure());
    ASSERT_EQ(listener_.listen_quic("127.0.0.1:0", server_tls()), std::error_code{});
    ASSERT_NE(listener_.quic_port(), 0);
  }
  TlsServerConfig server_tls() const { return {cert_.cert_file(), cert_.key_file()}; }
  PathSpec quic_path(std::uint16_t port, TlsClientConfig tls) const {
    PathSpec spec = PathSpec::parse("quic://" + loopback(port));
    spec.tls = std::move(tls);
    return spec;
  }
  // Trusts the test certificate, checks the name "localhost".
  PathSpec quic_path(std::uint16_t port) const {
    return quic_path(port, {cert_.cert_file(), "localhost", true});
  }
  PathSpec tcp_path() const { return PathSpec::parse("tcp://" + loopback(listener_.port())); }
  // A dead-path floor for tests of QUIC migration under load: ngtcp2 0.12 restarts the congestion
  // controller (and RTT estimate) of a migrated path, and on a loaded machine the restarted slow
  // start of a bulk transfer can outlast rendr's 40 ms floor, so the path would die and be
  // re-dialed (docs/design.md "QUIC paths", known weaknesses). These tests are about the
  // migration; that weakness has its own entry.
  static FlowOptions slow_start_tolerant() {
    FlowOptions o;
    o.dead_floor = 1s;
    return o;
  }
  Dialer tolerant_dialer(std::vector<PathSpec> paths) {
    Dialer d = dialer(std::move(paths));
    d.options.dead_floor = slow_start_tolerant().dead_floor;
    return d;
  }
  void listen_both_tolerant() {
    ListenOptions options;
    options.options = slow_start_tolerant();
    listen_both(options);
  }
  // rendr's default dead-path floor (40 ms), scaled like every deadline here under sanitizers;
  // under ThreadSanitizer's 5-15x slowdown the 1 s floor of the tests above.
  static FlowOptions default_liveness() {
    FlowOptions o;
#ifdef __SANITIZE_THREAD__
    o.dead_floor = slow_start_tolerant().dead_floor;
#else
    o.dead_floor = scaled(o.dead_floor);
#endif
    return o;
  }

  TestCertificate cert_;
};

TEST_F(QuicTest, StreamOverQuicPathArrivesIntactBothWays) {
  listen_both();
  Conn client;
  Conn server;
  ASSERT_TRUE(connect_all_paths(dialer({quic_path(listener_.quic_port())}), client, server));
  EXPECT_EQ(client.stats().paths.at(0).spec.rfind("quic://", 0), 0u);

  StreamWriter upload(client, {.seed = 1, .bytes = 24 * MiB});
  StreamReader upload_reader(server, {.seed = 1});
  StreamWriter download(server, {.seed = 2, .bytes = 8 * MiB});
  StreamReader download_reader(client, {.seed = 2});
  finish_transfer(upload, upload_reader, scaled(30s));
  finish_transfer(download, download_reader, scaled(30s));
  EXPECT_EQ(listener_.stats().flows_opened, 1u);
}

// The core cuts a DATA frame to the carrier's budget (so a frame never outsizes a small window);
// once the window is large the QUIC carrier asks in whole frames. Pulling as each
// acknowledgement opened a few KB cut a bulk stream into small frames (64 MiB: 3,100-11,000
// frames in 5 of 6 runs before; 1024 whole ones; ~15% more CPU per byte); now < 2x.
TEST_F(QuicTest, BulkStreamGoesOutInWholeFramesOnceTheWindowIsLarge) {
  listen_both();
  Conn client;
  Conn server;
  ASSERT_TRUE(connect_all_paths(dialer({quic_path(listener_.quic_port())}), client, server));
  constexpr std::size_t kBytes = 64 * MiB;
  StreamWriter upload(client, {.seed = 4, .bytes = kBytes});
  StreamReader reader(server, {.seed = 4});
  finish_transfer(upload, reader, scaled(30s));
  const ConnStats c = client.stats();
  constexpr std::uint64_t kWholeFrames = kBytes / (64 * 1024);
  EXPECT_LT(c.paths.at(0).frames_sent, 2 * kWholeFrames) << describe(c);
}

TEST_F(QuicTest, IpLiteralIsVerifiedAgainstTheCertificateAddress) {
  listen_both();
  // No server name: the host 127.0.0.1 must match the certificate's IP address.
  Conn client;
  Conn server;
  ASSERT_TRUE(connect_all_paths(dialer({quic_path(listener_.quic_port(), {cert_.cert_file()})}),
                                client, server));
  StreamWriter upload(client, {.seed = 3, .bytes = 1 * MiB});
  StreamReader reader(server, {.seed = 3});
  finish_transfer(upload, reader, scaled(10s));
}

// Prime mode: the stream moves tcp -> quic -> tcp on explicit migrations, nothing lost.
TEST_F(QuicTest, PrimeFlowMigratesBetweenTcpAndQuicPaths) {
  listen_both();
  Conn client;
  Conn server;
  ASSERT_TRUE(
      connect_all_paths(dialer({tcp_path(), quic_path(listener_.quic_port())}), client, server));
  const PathId via_tcp = path_via_port(client, listener_.port());
  const PathId via_quic = path_via_port(client, listener_.quic_port());
  ASSERT_NE(via_tcp, kNoPath);
  ASSERT_NE(via_quic, kNoPath);
  const auto is_up = [&](PathId id) { return path_info(client, id)->state == "up"; };
  std::optional<std::error_code> to_quic;
  std::optional<std::error_code> to_tcp;
  // Back to tcp once the quic path has carried 2 MiB (a fresh QUIC path starts with a small
  // congestion window, and writes run ahead of the wire by the send buffer).
  const auto sent_on = [&](PathId id) { return path_info(client, id)->bytes_sent; };
  // What tcp had sent when the flow came back to it: it carries the stream from then on.
  // (Compared with that, not with a fixed amount: on a loaded machine tcp may be declared dead
  // some time after the flow's return, and the rest then goes by quic.)
  std::uint64_t tcp_when_back = 0;
  StreamWriter upload(client,
                      {.seed = 4, .bytes = 32 * MiB, .after_write = [&](std::uint64_t written) {
                         if (written >= 4 * MiB && !to_quic && is_up(via_quic))
                           to_quic = client.migrate(via_quic);
                         if (to_quic && !to_tcp && sent_on(via_quic) >= 2 * MiB && is_up(via_tcp)) {
                           tcp_when_back = sent_on(via_tcp);
                           to_tcp = client.migrate(via_tcp);
                         }
                       }});
  StreamReader reader(server, {.seed = 4});
  finish_transfer(upload, reader, scaled(30s));
  ASSERT_TRUE(to_quic.has_value()) << describe(client.stats());
  EXPECT_EQ(*to_quic, std::error_code{});
  ASSERT_TRUE(to_tcp.has_value()) << describe(client.stats());
  EXPECT_EQ(*to_tcp, std::error_code{});
  EXPECT_GE(sent_on(via_quic), 2 * MiB) << describe(client.stats());
  EXPECT_GT(sent_on(via_tcp), tcp_when_back) << "tcp carried nothing after the flow came back\n"
                                             << describe(client.stats());
}

// A stream path's congestion fields are its transport's own (TCP_INFO; ngtcp2's CUBIC), on both
// ends: race mode so both paths carry the stream (and each end's ACKs).
TEST_F(QuicTest, StreamPathsReportTheirTransportsCongestionState) {
  listen_both();
  Dialer d = dialer({tcp_path(), quic_path(listener_.quic_port())});
  d.mode = Mode::race;
  Conn client;
  Conn server;
  ASSERT_TRUE(connect_all_paths(d, client, server));
  StreamWriter upload(client, {.seed = 9, .bytes = 4 * MiB});
  StreamReader reader(server, {.seed = 9});
  finish_transfer(upload, reader, scaled(30s));
  for (const ConnStats& stats : {client.stats(), server.stats()}) {
    ASSERT_EQ(stats.paths.size(), 2u) << describe(stats);
    for (const PathInfo& p : stats.paths) {
      SCOPED_TRACE(p.transport + " path " + std::to_string(p.id));
      EXPECT_FALSE(p.datagram);
      EXPECT_GT(p.congestion_window, 0u) << describe(stats);
      EXPECT_GT(p.packets_sent, 0u) << describe(stats);
      EXPECT_FALSE(p.congestion_control.empty());
      if (p.transport == "quic") {
        EXPECT_EQ(p.congestion_control, "cubic");
        // Both ends are on this host: the large datagrams loopback carries, without probing.
        EXPECT_GT(p.mtu, 60000u);
      } else {
        EXPECT_EQ(p.transport, "tcp");
        EXPECT_GT(p.mtu, 0u);  // the MSS
      }
    }
  }
}

// PathSpec::max_datagram_size on a quic path to this host bounds both directions: the client
// sends no larger, and its transport parameter keeps the server's datagrams as small (a relay
// that reads less would cut anything larger).
TEST_F(QuicTest, AQuicPathsDatagramLimitHoldsBothWays) {
  listen_both();
  PathSpec path = quic_path(listener_.quic_port());
  path.max_datagram_size = 1400;
  Conn client;
  Conn server;
  ASSERT_TRUE(connect_all_paths(dialer({path}), client, server));
  const auto [c, s] = transfer_both_ways(client, server, {.seed = 10, .bytes = 2 * MiB},
                                         {.seed = 11, .bytes = 2 * MiB}, scaled(30s));
  ASSERT_EQ(c.paths.size(), 1u);
  ASSERT_EQ(s.paths.size(), 1u);
  EXPECT_EQ(c.paths[0].mtu, 1400u) << describe(c);
  EXPECT_EQ(s.paths[0].mtu, 1400u) << describe(s);
}

class QuicModeTest : public QuicTest, public ::testing::WithParamInterface<Mode> {};

// Race and bond over one tcp and one quic path: every byte once, in order, and the quic path
// carries data.
TEST_P(QuicModeTest, MixedTcpAndQuicPathsCarryTheStream) {
  listen_both();
  Dialer d = dialer({tcp_path(), quic_path(listener_.quic_port())});
  d.mode = GetParam();
  Conn client;
  Conn server;
  ASSERT_TRUE(connect_all_paths(d, client, server));
  const PathId via_quic = path_via_port(client, listener_.quic_port());
  StreamWriter upload(client, {.seed = 5, .bytes = 16 * MiB});
  StreamReader reader(server, {.seed = 5});
  StreamWriter download(server, {.seed = 6, .bytes = 4 * MiB});
  StreamReader download_reader(client, {.seed = 6});
  finish_transfer(upload, reader, scaled(30s));
  finish_transfer(download, download_reader, scaled(30s));
  EXPECT_EQ(client.mode(), GetParam());
  // Its share is not asserted: a QUIC path starts with a 12 KB congestion window of 1.2 KB
  // packets, and on a loaded machine its first 64 KiB frames can outlast the dead-path floor
  // (the path then dies once and is re-dialed; docs/design.md "QUIC paths").
  EXPECT_GT(path_info(client, via_quic)->bytes_sent, 0u) << describe(client.stats());
}

INSTANTIATE_TEST_SUITE_P(RaceAndBond, QuicModeTest, ::testing::Values(Mode::race, Mode::bond),
                         [](const auto& info) { return std::string(to_string(info.param)); });

// Bond over one tcp and one quic path under load both ways: neither path is declared dead (both
// are healthy loopback paths) and the quic path carries a share. With the 1 s floor of the
// migration tests: at rendr's default 40 ms floor a loaded 2-core machine starves even a TCP
// path now and then (docs/design.md "QUIC paths": a QUIC path in slow start used to be handed
// 64 KiB DATA frames needing several round trips of its window; see the measurements there).
TEST_F(QuicTest, BondOverTcpAndQuicDeclaresNoPathDeadUnderLoad) {
  listen_both_tolerant();
  Dialer d = tolerant_dialer({tcp_path(), quic_path(listener_.quic_port())});
  d.mode = Mode::bond;
  Conn client;
  Conn server;
  ASSERT_TRUE(connect_all_paths(d, client, server));
  const PathId via_quic = path_via_port(client, listener_.quic_port());
  MigrationLog log;
  log.attach(client);
  StreamWriter upload(client, {.seed = 16, .bytes = 32 * MiB});
  StreamReader reader(server, {.seed = 16});
  StreamWriter download(server, {.seed = 17, .bytes = 16 * MiB});
  StreamReader download_reader(client, {.seed = 17});
  finish_transfer(upload, reader, scaled(60s));
  finish_transfer(download, download_reader, scaled(60s));
  const ConnStats c = client.stats();
  const ConnStats s = server.stats();
  for (const PathInfo& p : c.paths)
    EXPECT_EQ(p.down_count, 0u) << describe(c);
  for (const PathInfo& p : s.paths)
    EXPECT_EQ(p.down_count, 0u) << describe(s);
  EXPECT_EQ(log.count(MigrateCause::death), 0u) << describe(log);
  EXPECT_GT(path_info(client, via_quic)->bytes_sent, 0u) << describe(c);
}

// The active quic path goes silent (every datagram dropped, both ways): the flow fails over to
// its tcp path and the application sees neither an error nor a lost byte.
TEST_F(QuicTest, BlackholedQuicPathFailsOverToTcp) {
  listen_both();
  UdpRelay relay(listener_.quic_port());
  Conn client;
  Conn server;
  ASSERT_TRUE(connect_all_paths(dialer({quic_path(relay.port()), tcp_path()}), client, server));
  const PathId via_quic = path_via_port(client, relay.port());
  ASSERT_NE(via_quic, kNoPath);
  ASSERT_EQ(client.migrate(via_quic), std::error_code{});
  MigrationLog log;
  log.attach(client);
  bool killed = false;
  StreamWriter upload(client,
                      {.seed = 7, .bytes = 16 * MiB, .after_write = [&](std::uint64_t written) {
                         if (written >= 4 * MiB && !killed) {
                           relay.blackhole(true);
                           killed = true;
                         }
                       }});
  StreamReader reader(server, {.seed = 7});
  finish_transfer(upload, reader, scaled(30s));
  EXPECT_TRUE(killed);
  EXPECT_GT(relay.dropped(), 0u);
  EXPECT_GE(log.count(MigrateCause::death), 1u) << describe(log) << describe(client.stats());
  EXPECT_NE(path_info(client, via_quic)->state, "up");
}

// QUIC connection migration of an idle path: the client moves its quic path ten times (to
// 127.0.0.2..11, a fresh port each: more moves than the 8 connection ids the server offers, so
// spares must be replenished) while nothing is in flight; each move completes (the client sends
// from the new address) and the server follows (it names that address as its peer). Then data
// goes both ways: every byte arrives, and the path neither died nor was replaced (same id, never
// down on either end).
// It failed before the receive block grew geometrically: a burst of datagrams between two frame
// deliveries copied the undelivered bytes once per datagram, stalling the client for seconds.
TEST_F(QuicTest, LocalAddressMigrationMovesThePathAndTheServerFollows) {
  listen_both_tolerant();
  Conn client;
  Conn server;
  ASSERT_TRUE(
      connect_all_paths(tolerant_dialer({quic_path(listener_.quic_port())}), client, server));
  const PathId via_quic = path_via_port(client, listener_.quic_port());
  ASSERT_NE(via_quic, kNoPath);
  std::uint64_t seed = 40;
  for (int i = 2; i <= 11; ++i) {
    const std::string host = "127.0.0." + std::to_string(i);
    ASSERT_EQ(client.migrate_local_address(via_quic, host + ":0"), std::error_code{}) << host;
    std::string client_local;
    std::string server_peer;
    ASSERT_TRUE(wait_until(
        [&] {
          client_local = path_info(client, via_quic)->local_address;
          const ConnStats s = server.stats();
          server_peer = s.paths.empty() ? "" : s.paths.front().peer_address;
          return client_local.rfind(host + ":", 0) == 0 && server_peer == client_local;
        },
        scaled(10s)))
        << "to " << host << ": client sends from " << client_local << ", server sends to "
        << server_peer;
  }
  StreamWriter upload(client, {.seed = ++seed, .bytes = 4 * MiB});
  StreamReader reader(server, {.seed = seed});
  StreamWriter download(server, {.seed = ++seed, .bytes = 4 * MiB});
  StreamReader download_reader(client, {.seed = seed});
  finish_transfer(upload, reader, scaled(30s));
  finish_transfer(download, download_reader, scaled(30s));
  const ConnStats c = client.stats();
  const ConnStats s = server.stats();
  ASSERT_EQ(c.paths.size(), 1u) << describe(c);
  EXPECT_EQ(c.paths.front().id, via_quic);
  EXPECT_EQ(c.paths.front().down_count, 0u) << describe(c);
  ASSERT_EQ(s.paths.size(), 1u) << describe(s);
  EXPECT_EQ(s.paths.front().down_count, 0u) << describe(s);
}

// QUIC connection migration under load: the client moves its quic path to new local addresses
// (127.0.0.2..5, a fresh port each) while data flows both ways.
// Every byte arrives once and in order on the same carrier (the path never goes down), each move
// completes (the client sends from the new address) and the server follows (it names that
// address as its peer).
TEST_F(QuicTest, LocalAddressMigrationsUnderLoadKeepTheFlowAndTheServerFollows) {
  listen_both_tolerant();
  Conn client;
  Conn server;
  ASSERT_TRUE(
      connect_all_paths(tolerant_dialer({quic_path(listener_.quic_port())}), client, server));
  const PathId via_quic = path_via_port(client, listener_.quic_port());
  ASSERT_NE(via_quic, kNoPath);
  MigrationLog log;
  log.attach(client);
  const std::vector<std::string> hosts{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"};
  std::size_t moved = 0;
  std::vector<std::string> failures;
  // A move every 6 MiB written, from the writer's thread; it waits until the move is complete
  // on both ends (the download from the server goes on meanwhile).
  const auto move_to = [&](const std::string& host) {
    if (const auto ec = client.migrate_local_address(via_quic, host + ":0")) {
      failures.push_back(host + ": " + ec.message());
      return;
    }
    std::string client_local;
    std::string server_peer;
    if (!wait_until(
            [&] {
              client_local = path_info(client, via_quic)->local_address;
              const ConnStats s = server.stats();
              server_peer = s.paths.empty() ? "" : s.paths.front().peer_address;
              return client_local.rfind(host + ":", 0) == 0 && server_peer == client_local;
            },
            scaled(10s))) {
      failures.push_back("to " + host + ": client sends from " + client_local +
                         ", server sends to " + server_peer);
    }
    ++moved;
  };
  StreamWriter upload(client, {.seed = 11, .bytes = 30 * MiB, .after_write = [&](std::uint64_t w) {
                                 if (moved < hosts.size() && w >= (moved + 1) * 6 * MiB)
                                   move_to(hosts[moved]);
                               }});
  StreamReader reader(server, {.seed = 11});
  StreamWriter download(server, {.seed = 12, .bytes = 12 * MiB});
  StreamReader download_reader(client, {.seed = 12});
  finish_transfer(upload, reader, scaled(60s));
  finish_transfer(download, download_reader, scaled(60s));
  EXPECT_EQ(moved, hosts.size());
  for (const auto& f : failures)
    ADD_FAILURE() << f;
  EXPECT_EQ(log.count(MigrateCause::death), 0u) << describe(log);
  const ConnStats c = client.stats();
  const ConnStats s = server.stats();
  ASSERT_EQ(c.paths.size(), 1u) << describe(c);
  EXPECT_EQ(c.paths.front().id, via_quic);
  EXPECT_EQ(c.paths.front().down_count, 0u) << describe(c);
  ASSERT_EQ(s.paths.size(), 1u) << describe(s);
  EXPECT_EQ(s.paths.front().down_count, 0u) << describe(s);
}

// What migrate_local_address cannot do it refuses at once, and the path carries on.
TEST_F(QuicTest, MigrateLocalAddressRefusesWhatItCannotDo) {
  listen_both();
  Conn client;
  Conn server;
  ASSERT_TRUE(
      connect_all_paths(dialer({quic_path(listener_.quic_port()), tcp_path()}), client, server));
  const PathId via_quic = path_via_port(client, listener_.quic_port());
  const PathId via_tcp = path_via_port(client, listener_.port());
  EXPECT_EQ(client.migrate_local_address(via_tcp, "127.0.0.2:0"),
            std::errc::operation_not_supported);
  EXPECT_EQ(client.migrate_local_address(via_quic, "not an address"), std::errc::invalid_argument);
  EXPECT_EQ(client.migrate_local_address(via_quic, "127.0.0.2:70000"), std::errc::invalid_argument);
  EXPECT_EQ(client.migrate_local_address(via_quic, "[::1]:0"),
            std::errc::address_family_not_supported);
  // Not an address of this host: the bind fails.
  EXPECT_EQ(client.migrate_local_address(via_quic, "192.0.2.1:0"),
            std::errc::address_not_available);
  EXPECT_EQ(client.migrate_local_address(PathId{999}, "127.0.0.2:0"), errc::no_such_path);
  EXPECT_EQ(server.migrate_local_address(server.active_path(), "127.0.0.2:0"),
            std::errc::operation_not_supported);
  StreamWriter upload(client, {.seed = 13, .bytes = 2 * MiB});
  StreamReader reader(server, {.seed = 13});
  finish_transfer(upload, reader, scaled(10s));
}

// A NAT in front of the client rebinds three times while data flows both ways (the server sees a
// new source port; the old one is gone): the server follows each time (its peer address
// changes), nothing is lost, the path never goes down -- with the default 40 ms dead-path
// floor, although QUIC repairs the window the server sent to the old port before its stream
// hands the client anything (the acknowledgements QUIC sees meanwhile keep the path alive).
TEST_F(QuicTest, ServerFollowsTheClientsNatRebindingUnderLoad) {
  ListenOptions options;
  options.options = default_liveness();
  listen_both(options);
  UdpFaultProxy nat("127.0.0.1", "127.0.0.1", listener_.quic_port());
  Conn client;
  Conn server;
  Dialer d = dialer({quic_path(nat.port())});
  d.options.dead_floor = default_liveness().dead_floor;
  ASSERT_TRUE(connect_all_paths(d, client, server));
  const PathId via_quic = path_via_port(client, nat.port());
  ASSERT_NE(via_quic, kNoPath);
  MigrationLog log;
  log.attach(client);
  // The server's one path, as it stands ("" while it lists none).
  const auto server_peer = [&server] {
    const ConnStats stats = server.stats();
    return stats.paths.empty() ? std::string{} : stats.paths.front().peer_address;
  };
  ASSERT_TRUE(wait_until([&] { return !server_peer().empty(); }, scaled(5s)));
  std::vector<std::string> peers{server_peer()};
  std::vector<std::string> failures;
  StreamWriter upload(client, {.seed = 14, .bytes = 24 * MiB, .after_write = [&](std::uint64_t w) {
                                 if (peers.size() > 3 || w < peers.size() * 6 * MiB) return;
                                 nat.rebind_source_ports();
                                 // The server moves with the client's next packets.
                                 std::string now;
                                 if (!wait_until(
                                         [&] {
                                           now = server_peer();
                                           return !now.empty() && now != peers.back();
                                         },
                                         scaled(10s)))
                                   failures.push_back("the server still sends to " + now);
                                 peers.push_back(now);
                               }});
  StreamReader reader(server, {.seed = 14});
  StreamWriter download(server, {.seed = 15, .bytes = 8 * MiB});
  StreamReader download_reader(client, {.seed = 15});
  finish_transfer(upload, reader, scaled(60s));
  finish_transfer(download, download_reader, scaled(60s));
  EXPECT_EQ(nat.rebinds(), 3u);
  EXPECT_EQ(peers.size(), 4u);
  for (const auto& f : failures)
    ADD_FAILURE() << f;
  EXPECT_EQ(log.count(MigrateCause::death), 0u) << describe(log);
  EXPECT_EQ(path_info(client, via_quic)->down_count, 0u) << describe(client.stats());
}

// A quic dial still in its handshake (the server never answers) when its engine is destroyed
// leaves nothing behind: under LeakSanitizer (make test-asan) the dial op and its connection once
// held each other and leaked.
TEST_F(QuicTest, QuicDialStillHandshakingWhenTheEngineStopsLeavesNothingBehind) {
  asio::io_context io;
  asio::ip::udp::socket silent(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  {
    Engine engine(1);
    Dialer d = dialer({quic_path(silent.local_endpoint().port(), {"", "localhost", false})});
    d.engine = &engine;
    d.dial_timeout = 300ms;
    std::error_code ec;
    Conn c = d.dial(ec);
    EXPECT_FALSE(c.is_open());
    EXPECT_TRUE(ec);
  }
}

TEST_F(QuicTest, WrongServerNameFailsTheDialWithANameMismatch) {
  listen_both();
  std::error_code ec;
  Conn c = dialer({quic_path(listener_.quic_port(), {cert_.cert_file(), "wrong.example", true})})
               .dial(ec);
  EXPECT_FALSE(c.is_open());
  EXPECT_EQ(ec, quic_errc::certificate_name_mismatch) << ec.message();
  EXPECT_EQ(listener_.stats().flows_opened, 0u);
}

TEST_F(QuicTest, UntrustedCertificateFailsTheDial) {
  listen_both();
  TestCertificate stranger({.common_name = "someone else"});
  std::error_code ec;
  Conn c = dialer({quic_path(listener_.quic_port(), {stranger.cert_file(), "localhost", true})})
               .dial(ec);
  EXPECT_FALSE(c.is_open());
  EXPECT_EQ(ec, quic_errc::certificate_untrusted) << ec.message();
}

TEST_F(QuicTest, ExpiredCertificateFailsTheDial) {
  TestCertificate expired({.expired = true});
  listen();
  ASSERT_EQ(listener_.listen_quic("127.0.0.1:0", {expired.cert_file(), expired.key_file()}),
            std::error_code{});
  std::error_code ec;
  Conn c =
      dialer({quic_path(listener_.quic_port(), {expired.cert_file(), "localhost", true})}).dial(ec);
  EXPECT_FALSE(c.is_open());
  EXPECT_EQ(ec, quic_errc::certificate_expired) << ec.message();
}

// --insecure: no verification, so a certificate nobody vouches for is accepted.
TEST_F(QuicTest, InsecureDialAcceptsAnUntrustedCertificate) {
  listen_both();
  Conn client;
  Conn server;
  ASSERT_TRUE(connect_all_paths(
      dialer({quic_path(listener_.quic_port(), {"", "wrong.example", false})}), client, server));
  StreamWriter upload(client, {.seed = 8, .bytes = 1 * MiB});
  StreamReader reader(server, {.seed = 8});
  finish_transfer(upload, reader, scaled(10s));
}

// A quic path whose handshake fails is a dead path, not the end of the flow: the tcp path
// carries everything and no EOF or error reaches the application.
TEST_F(QuicTest, FailingQuicHandshakeIsAPathDeathNotAnEof) {
  listen_both();
  Conn client;
  Conn server;
  {
    auto [c, s] =
        connect(dialer({tcp_path(), quic_path(listener_.quic_port(),
                                              {cert_.cert_file(), "wrong.example", true})}));
    client = c;
    server = s;
  }
  ASSERT_TRUE(client.is_open());
  StreamWriter upload(client, {.seed = 9, .bytes = 4 * MiB});
  StreamReader reader(server, {.seed = 9});
  finish_transfer(upload, reader, scaled(15s));
  const PathId via_quic = path_via_port(client, listener_.quic_port());
  ASSERT_NE(via_quic, kNoPath);
  EXPECT_NE(path_info(client, via_quic)->state, "up") << describe(client.stats());
}

// A client offering another ALPN than "rendr/1" (the carrier's test hook; no QUIC client with a
// free choice of ALPN ships in Debian 12) is refused in the handshake: its dial fails with a clear
// QUIC error (never a carrier that opens and then reads EOF), no flow opens, and a healthy flow
// at the same listener carries on.
TEST_F(QuicTest, ClientOfferingAnotherAlpnIsRefusedInTheHandshake) {
  listen_both();
  Conn client;
  Conn server;
  ASSERT_TRUE(connect_all_paths(dialer({quic_path(listener_.quic_port())}), client, server));
  asio::io_context io;
  carrier::QuicOptions options;
  options.alpn = "h3";
  carrier::QuicTransport transport(options);
  std::optional<std::error_code> dialed;
  std::shared_ptr<carrier::Carrier> carrier;
  transport.async_dial_to(
      io.get_executor(),
      carrier::DialTarget{
          "127.0.0.1", listener_.quic_port(), {cert_.cert_file(), "localhost", true}},
      [&](std::error_code ec, std::shared_ptr<carrier::Carrier> c) {
        dialed = ec;
        carrier = std::move(c);
      });
  // Runs until the dial completed and its connection is gone (nothing else is pending).
  io.run_for(scaled(15s));
  ASSERT_TRUE(dialed.has_value()) << "the dial never completed";
  EXPECT_EQ(*dialed, quic_errc::handshake_refused) << dialed->message();
  EXPECT_EQ(carrier, nullptr);
  EXPECT_EQ(listener_.stats().flows_opened, 1u);
  StreamWriter upload(client, {.seed = 18, .bytes = 2 * MiB});
  StreamReader reader(server, {.seed = 18});
  finish_transfer(upload, reader, scaled(10s));
}

TEST_F(QuicTest, BadCredentialsFailListenQuic) {
  listen();
  EXPECT_EQ(listener_.listen_quic("127.0.0.1:0", {"/nonexistent/cert.pem", cert_.key_file()}),
            quic_errc::tls_credentials);
  std::error_code ec;
  Listener l = listen_quic("127.0.0.1:0", {cert_.cert_file(), "/nonexistent/key.pem"}, {}, ec);
  EXPECT_EQ(ec, quic_errc::tls_credentials);
}

// Garbage datagrams and a stranger's Initial-looking packets at the QUIC port harm no flow.
TEST_F(QuicTest, GarbageDatagramsAtTheListenerHarmNoFlow) {
  listen_both();
  Conn client;
  Conn server;
  ASSERT_TRUE(connect_all_paths(dialer({quic_path(listener_.quic_port())}), client, server));
  asio::io_context io;
  asio::ip::udp::socket stranger(io, asio::ip::udp::endpoint(asio::ip::udp::v4(), 0));
  const asio::ip::udp::endpoint target(asio::ip::make_address("127.0.0.1"), listener_.quic_port());
  StreamWriter upload(client, {.seed = 10, .bytes = 8 * MiB, .after_write = [&](std::uint64_t) {
                                 std::array<std::uint8_t, 1200> junk{};
                                 for (std::size_t i = 0; i < junk.size(); ++i)
                                   junk[i] = static_cast<std::uint8_t>(i * 7 + 3);
                                 junk[0] = 0xc0;  // a long header: looks like an Initial
                                 junk[1] = 0x00;
                                 junk[2] = 0x00;
                                 junk[3] = 0x00;
                                 junk[4] = 0x01;
                                 junk[5] = 8;  // dcid length
                                 stranger.send_to(asio::buffer(junk), target);
                                 stranger.send_to(asio::buffer(junk.data() + 100, 37), target);
                               }});
  StreamReader reader(server, {.seed = 10});
  finish_transfer(upload, reader, scaled(20s));
  EXPECT_EQ(listener_.stats().flows_opened, 1u);
}

}  // namespace
}  // namespace rendr::itest
