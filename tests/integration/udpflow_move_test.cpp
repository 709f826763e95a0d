// A udpflow client path moving to a new local address (Conn::migrate_local_address; docs/design.md
// "udpflow runtime") over real loopback UDP: the client sends from a new socket at once, the
// server follows once the new address answered its challenge (its peer address changes), and
// neither a stream nor reliable ordered messages lose, reorder or duplicate anything meanwhile;
// what the call cannot do it refuses at once, and the path carries on.
#include <set>

#include "harness.hpp"
#include "packet_support.hpp"

namespace rendr::itest {
namespace {

// A 1 s dead-path floor on both ends, as the QUIC migration tests have: on this loaded 2-core
// machine a path under a bulk transfer can be starved of CPU past the 40 ms floor and be re-dialed
// (a new carrier, the move lost with the old one); these tests are about the move.
class UdpflowMoveTest : public PacketConnTest {
 protected:
  void listen_udp(bool packets = false) {
    ListenOptions options;
    options.accept_packet_flows = packets;
    options.options.dead_floor = 1s;
    listen(options);
    ASSERT_FALSE(HasFatalFailure());
    ASSERT_EQ(listener_.listen_udpflow("127.0.0.1:0"), std::error_code{});
  }
  Dialer tolerant_dialer(std::vector<PathSpec> paths) {
    Dialer d = dialer(std::move(paths));
    d.options.dead_floor = 1s;
    return d;
  }
};

// The client's address of `path` and the server's address of its one path's peer.
struct Addresses {
  std::string client_local;
  std::string server_peer;
};

template <class ConnT>
Addresses addresses(const ConnT& client, const ConnT& server, PathId path) {
  Addresses a;
  for (const auto& p : client.stats().paths)
    if (p.id == path) a.client_local = p.local_address;
  const ConnStats s = server.stats();
  if (!s.paths.empty()) a.server_peer = s.paths.front().peer_address;
  return a;
}

std::string client_counts(const ConnStats& c) {
  std::string out;
  for (const auto& p : c.paths)
    out += "  packets sent " + std::to_string(p.packets_sent) + ", lost " +
           std::to_string(p.packets_lost) + ", pto " + std::to_string(p.pto_count) +
           ", in flight " + std::to_string(p.bytes_in_flight) + " of cwnd " +
           std::to_string(p.congestion_window) + ", local " + p.local_address + "\n";
  return out;
}

// Moves `path` to `host` (a fresh port) and waits until the client sends from there and the
// server sends there; a failure is recorded in `failures`, the new local address in `locals`.
template <class ConnT>
void move_and_wait(ConnT& client, const ConnT& server, PathId path, const std::string& host,
                   std::vector<std::string>& failures, std::vector<std::string>& locals) {
  // not_connected until the path's handshake is confirmed (the server's first protected packet
  // arrived), which may come after a burst of sends right after the dial.
  std::error_code ec;
  wait_until(
      [&] {
        ec = client.migrate_local_address(path, host + ":0");
        return ec != std::errc::not_connected;
      },
      scaled(5s));
  if (ec) {
    failures.push_back(host + ": " + ec.message());
    return;
  }
  Addresses a;
  if (!wait_until(
          [&] {
            a = addresses(client, server, path);
            return a.client_local.starts_with(host + ":") && a.server_peer == a.client_local;
          },
          scaled(10s))) {
    const ConnStats st = server.stats();
    const PathInfo sp = st.paths.empty() ? PathInfo{} : st.paths.front();
    failures.push_back("to " + host + ": client sends from " + a.client_local +
                       ", server sends to " + a.server_peer +
                       "; server path: " + std::to_string(sp.path_challenges_sent) +
                       " challenges, " + std::to_string(sp.path_validations) + " validations, " +
                       std::to_string(sp.path_validations_failed) + " failed, " +
                       std::to_string(sp.stale_address_packets) + " stale, " +
                       std::to_string(sp.amplification_blocked) + " blocked\n" + describe(st) +
                       "client: " + describe(client.stats()) + client_counts(client.stats()));
    return;
  }
  locals.push_back(a.client_local);
}

// (a) Four moves (127.0.0.2..5, a fresh port each) while 24 MiB go up and 12 MiB down: every
// byte arrives intact and in order, each move is followed by the server after a validation,
// and the path neither died nor was replaced on either end.
TEST_F(UdpflowMoveTest, LocalAddressMovesUnderLoadKeepTheStreamAndTheServerFollows) {
  listen_udp();
  Conn client;
  Conn server;
  ASSERT_TRUE(connect_all_paths(tolerant_dialer({udp_path()}), client, server));
  const PathId via_udp = path_via_port(client, listener_.udpflow_port());
  ASSERT_NE(via_udp, kNoPath);
  MigrationLog log;
  log.attach(client);
  std::vector<std::string> locals{addresses(client, server, via_udp).client_local};
  ASSERT_EQ(locals.front().rfind("127.0.0.1:", 0), 0u) << locals.front();
  const std::vector<std::string> hosts{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"};
  std::size_t moved = 0;
  std::vector<std::string> failures;
  // A move every 5 MiB written, from the writer's thread; it waits until both ends have moved
  // (the download from the server goes on meanwhile).
  StreamWriter upload(client, {.seed = 51, .bytes = 24 * MiB, .after_write = [&](std::uint64_t w) {
                                 if (moved < hosts.size() && w >= (moved + 1) * 5 * MiB)
                                   move_and_wait(client, server, via_udp, hosts[moved++], failures,
                                                 locals);
                               }});
  StreamReader reader(server, {.seed = 51});
  StreamWriter download(server, {.seed = 52, .bytes = 12 * MiB});
  StreamReader download_reader(client, {.seed = 52});
  finish_transfer(upload, reader, scaled(60s));
  finish_transfer(download, download_reader, scaled(60s));
  EXPECT_EQ(moved, hosts.size());
  for (const auto& f : failures)
    ADD_FAILURE() << f;
  ASSERT_EQ(locals.size(), hosts.size() + 1);
  EXPECT_EQ(std::set<std::string>(locals.begin(), locals.end()).size(), locals.size());
  EXPECT_EQ(log.count(MigrateCause::death), 0u) << describe(log);
  const ConnStats c = client.stats();
  const ConnStats s = server.stats();
  ASSERT_EQ(c.paths.size(), 1u) << describe(c);
  EXPECT_EQ(c.paths.front().id, via_udp);
  EXPECT_EQ(c.paths.front().down_count, 0u) << describe(c);
  ASSERT_EQ(s.paths.size(), 1u) << describe(s);
  EXPECT_EQ(s.paths.front().down_count, 0u) << describe(s);
  // The server moved only after each new address answered its challenge.
  EXPECT_EQ(s.paths.front().path_validations, hosts.size()) << describe(s);
  EXPECT_EQ(listener_.stats().flows_opened, 1u);
}

// (b) Reliable ordered messages over one udpflow path; the client moves its local address after
// every 2,000 of 8,000 messages (each move waits for the previous one to be followed): every
// message arrives once, whole and in order, on the same path.
TEST_F(UdpflowMoveTest, LocalAddressMovesWhileMessagesFlowLoseNothing) {
  listen_udp(/*packets=*/true);
  PacketConn client;
  PacketConn server;
  ASSERT_TRUE(connect_packet(tolerant_dialer({udp_path()}), {.reliable = true, .ordered = true},
                             client, server));
  const PathId via_udp = client.stats().paths.at(0).id;
  constexpr std::uint32_t kCount = 8000;
  const std::vector<std::string> hosts{"127.0.0.2", "127.0.0.3", "127.0.0.4"};
  std::size_t moved = 0;
  std::vector<std::string> failures;
  std::vector<std::string> locals;
  const auto got = exchange(client, server, kCount, [&](std::uint32_t sent) {
    if (sent % 2000 != 0 || sent == kCount || moved >= hosts.size()) return;
    move_and_wait(client, server, via_udp, hosts[moved++], failures, locals);
  });
  expect_all_in_order(got, kCount);
  EXPECT_EQ(moved, hosts.size());
  for (const auto& f : failures)
    ADD_FAILURE() << f;
  EXPECT_EQ(locals.size(), hosts.size());
  const PathInfo p = client.stats().paths.at(0);
  EXPECT_EQ(p.id, via_udp);
  EXPECT_EQ(p.down_count, 0u) << describe(client.stats());
  EXPECT_EQ(p.local_address.rfind(hosts.back() + ":", 0), 0u) << p.local_address;
}

// (c) What migrate_local_address cannot do it refuses at once, and the path carries on: a tcp
// path, no such path, an unparsable address or port, another family, an address not of this
// host, a server's path. Then a transfer over the udpflow path completes from where it was.
TEST_F(UdpflowMoveTest, MigrateLocalAddressRefusesWhatItCannotDo) {
  listen_udp();
  Conn client;
  Conn server;
  ASSERT_TRUE(connect_all_paths(
      dialer({udp_path(), PathSpec::parse("tcp://" + loopback(listener_.port()))}), client,
      server));
  const PathId via_udp = path_via_port(client, listener_.udpflow_port());
  const PathId via_tcp = path_via_port(client, listener_.port());
  ASSERT_NE(via_udp, kNoPath);
  ASSERT_NE(via_tcp, kNoPath);
  const std::string before = path_info(client, via_udp)->local_address;
  // Not an address of this host: the bind fails (once the path's handshake is confirmed by the
  // server's first protected packet: not_connected until then).
  std::error_code foreign;
  wait_until(
      [&] {
        foreign = client.migrate_local_address(via_udp, "192.0.2.1:0");
        return foreign != std::errc::not_connected;
      },
      scaled(5s));
  EXPECT_EQ(foreign, std::errc::address_not_available);
  EXPECT_EQ(client.migrate_local_address(via_tcp, "127.0.0.2:0"),
            std::errc::operation_not_supported);
  EXPECT_EQ(client.migrate_local_address(PathId{999}, "127.0.0.2:0"), errc::no_such_path);
  EXPECT_EQ(client.migrate_local_address(via_udp, "not an address"), std::errc::invalid_argument);
  EXPECT_EQ(client.migrate_local_address(via_udp, "127.0.0.2"), std::errc::invalid_argument);
  EXPECT_EQ(client.migrate_local_address(via_udp, "127.0.0.2:70000"), std::errc::invalid_argument);
  EXPECT_EQ(client.migrate_local_address(via_udp, "[::1]:0"),
            std::errc::address_family_not_supported);
  for (const auto& p : server.stats().paths) {
    EXPECT_EQ(server.migrate_local_address(p.id, "127.0.0.2:0"), std::errc::operation_not_supported)
        << p.transport;
  }
  EXPECT_EQ(path_info(client, via_udp)->local_address, before);
  ASSERT_EQ(client.migrate(via_udp), std::error_code{});
  StreamWriter upload(client, {.seed = 53, .bytes = 2 * MiB});
  StreamReader reader(server, {.seed = 53});
  finish_transfer(upload, reader, scaled(10s));
  const PathInfo p = *path_info(client, via_udp);
  EXPECT_EQ(p.state, "up");
  EXPECT_EQ(p.down_count, 0u) << describe(client.stats());
  EXPECT_EQ(p.local_address, before);
  EXPECT_GE(p.bytes_sent, 2 * MiB);  // it carried the transfer
}

}  // namespace
}  // namespace rendr::itest
