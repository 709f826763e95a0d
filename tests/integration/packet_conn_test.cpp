// rendr::PacketConn end to end over loopback: message boundaries kept 1:1 over udpflow and tcp
// paths, reliable ordered delivery across an explicit migration, message_too_large, a receive
// buffer too small (the message stays queued), async send/receive, and flows of a kind the
// listener does not take.
#include <future>
#include <set>

#include <asio/use_future.hpp>

#include "packet_support.hpp"

namespace rendr::itest {
namespace {

class PacketBoundaryTest : public PacketConnTest, public ::testing::WithParamInterface<bool> {};

// Over one udpflow path (param true) and one tcp path: every message arrives once, whole, with
// its own size, and empty messages are messages too.
TEST_P(PacketBoundaryTest, MessagesKeepTheirBoundaries) {
  listen_packets();
  PacketConn client;
  PacketConn server;
  ASSERT_TRUE(connect_packet(dialer({GetParam() ? udp_path() : tcp_path()}), {}, client, server));
  constexpr std::uint32_t kCount = 3000;
  const auto got = send_and_receive(client, server, kCount, nullptr);
  ASSERT_EQ(got.size(), kCount);
  EXPECT_EQ(std::set<std::uint32_t>(got.begin(), got.end()).size(), kCount);  // each once

  // Empty messages both ways.
  std::array<std::uint8_t, 8> buffer{};
  std::error_code ec;
  EXPECT_EQ(server.send(asio::const_buffer(), ec), 0u);
  EXPECT_EQ(ec, std::error_code{});
  EXPECT_EQ(client.receive(asio::buffer(buffer), ec), 0u);
  EXPECT_EQ(ec, std::error_code{});
  EXPECT_EQ(client.stats().paths.at(0).spec.rfind(GetParam() ? "udpflow://" : "tcp://", 0), 0u);
}

INSTANTIATE_TEST_SUITE_P(Transports, PacketBoundaryTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "udpflow" : "tcp"; });

// Reliable ordered over a udpflow and a tcp path; the client migrates from one to the other
// while sending: nothing lost, nothing twice, every message in the order sent.
TEST_F(PacketConnTest, ReliableOrderedAcrossAMigrationLosesNothing) {
  listen_packets();
  PacketConn client;
  PacketConn server;
  ASSERT_TRUE(connect_packet(dialer({udp_path(), tcp_path()}), {.reliable = true, .ordered = true},
                             client, server));
  const PathId via_tcp = path_on_port(client, listener_.port());
  const PathId via_udp = path_on_port(client, listener_.udpflow_port());
  ASSERT_NE(via_tcp, kNoPath);
  ASSERT_NE(via_udp, kNoPath);
  // The OPEN goes on whichever path answers first (often tcp): start from the udpflow one.
  if (client.active_path() != via_udp) {
    ASSERT_EQ(client.migrate(via_udp), std::error_code{});
  }
  constexpr std::uint32_t kCount = 20000;
  std::optional<std::error_code> migrated;
  const auto got = send_and_receive(client, server, kCount, [&](std::uint32_t sent) {
    if (sent == kCount / 2) migrated = client.migrate(via_tcp);
  });
  ASSERT_TRUE(migrated.has_value());
  EXPECT_EQ(*migrated, std::error_code{});
  ASSERT_EQ(got.size(), kCount);
  for (std::uint32_t i = 0; i < kCount; ++i)
    ASSERT_EQ(got[i], i) << "out of order at " << i;
  EXPECT_GE(client.stats().migrations_explicit, 1u);
  EXPECT_EQ(client.active_path(), via_tcp);
}

// A message above the limit is refused whole and harms nothing: the next one arrives.
TEST_F(PacketConnTest, TooLargeMessageIsRefusedNotTruncated) {
  listen_packets();
  PacketConn client;
  PacketConn server;
  ASSERT_TRUE(connect_packet(dialer({udp_path()}), {}, client, server));
  const Bytes big(kMaxMessageSize + 1, 7);
  std::error_code ec;
  EXPECT_EQ(client.send(asio::buffer(big), ec), 0u);
  EXPECT_EQ(ec, make_error_code(errc::message_too_large));
  EXPECT_TRUE(ec == std::errc::message_size);
  EXPECT_THROW(client.send(asio::buffer(big)), std::system_error);

  std::uint32_t largest_index = 0;  // 37 and 1150 are coprime: every size 4..1153 occurs
  while (message_size(largest_index) != kMaxMessageSize)
    ++largest_index;
  const Bytes largest = make_message(largest_index);
  EXPECT_EQ(client.send(asio::buffer(largest), ec), kMaxMessageSize);
  EXPECT_EQ(ec, std::error_code{});
  Bytes buffer(2 * kMaxMessageSize);
  const std::size_t n = server.receive(asio::buffer(buffer), ec);
  EXPECT_EQ(ec, std::error_code{});
  EXPECT_EQ(check({buffer.data(), n}), largest_index);
}

// A buffer smaller than the next message: message_buffer_too_small with the message's size,
// the message stays queued and a large enough buffer then takes it whole (sync and async).
TEST_F(PacketConnTest, SmallReceiveBufferLeavesTheMessageQueued) {
  listen_packets();
  PacketConn client;
  PacketConn server;
  ASSERT_TRUE(connect_packet(dialer({tcp_path()}), {}, client, server));
  const Bytes m = make_message(100);
  ASSERT_GT(m.size(), 16u);
  auto sent = client.async_send(asio::buffer(m), asio::use_future);
  ASSERT_EQ(sent.wait_for(scaled(5s)), std::future_status::ready);
  EXPECT_EQ(sent.get(), m.size());

  std::array<std::uint8_t, 16> small{};
  std::error_code ec;
  EXPECT_EQ(server.receive(asio::buffer(small), ec), m.size());
  EXPECT_EQ(ec, make_error_code(errc::message_buffer_too_small));

  std::promise<std::pair<std::error_code, std::size_t>> small_async;
  server.async_receive(asio::buffer(small), [&](std::error_code e, std::size_t n) {
    small_async.set_value({e, n});
  });
  auto small_result = small_async.get_future();
  ASSERT_EQ(small_result.wait_for(scaled(5s)), std::future_status::ready);
  const auto [small_ec, small_n] = small_result.get();
  EXPECT_EQ(small_ec, make_error_code(errc::message_buffer_too_small));
  EXPECT_EQ(small_n, m.size());

  Bytes buffer(m.size());
  auto received = server.async_receive(asio::buffer(buffer), asio::use_future);
  ASSERT_EQ(received.wait_for(scaled(5s)), std::future_status::ready);
  EXPECT_EQ(received.get(), m.size());
  EXPECT_EQ(check(buffer), 100u);
}

// An application that lets go of its PacketConn discards what arrives after, empty messages
// included, so the peer's window keeps opening: the peer sends more than a window's worth.
TEST_F(PacketConnTest, ADroppedPacketConnKeepsDiscardingPastEmptyMessages) {
  listen_packets();
  PacketConn client;
  PacketConn server;
  ASSERT_TRUE(connect_packet(dialer({tcp_path()}), {}, client, server));
  client = PacketConn();  // nobody reads on the client any more
  const Bytes m(kMaxMessageSize, 1);
  // 8 MiB window / (1153 + 64) offsets: about 6900 messages fit; send half as many again.
  constexpr int kCount = 10000;
  std::atomic<int> sent{0};
  std::thread sender([&] {
    for (int i = 0; i < kCount; ++i) {
      std::error_code ec;
      server.send(i % 2 == 0 ? asio::const_buffer() : asio::buffer(m), ec);
      if (ec) return;
      ++sent;
    }
  });
  const bool all_sent = wait_until([&] { return sent == kCount; }, scaled(10s));
  if (!all_sent) server.abort();  // unblocks the sender
  sender.join();
  EXPECT_TRUE(all_sent) << sent << " of " << kCount << " sent";
}

// Kinds: a stream dial to a packet-only listener (listen_udpflow_packet) and a packet dial to a
// stream-only listener (the default) are refused in the handshake: handshake_failed, and the
// listener hands nothing to either accept.
TEST_F(PacketConnTest, AFlowOfAKindTheListenerDoesNotTakeIsRefused) {
  ListenOptions packet_only;
  packet_only.engine = &server_engine_;
  Listener packets = listen_udpflow_packet("127.0.0.1:0", packet_only);
  std::error_code ec;
  Conn stream = dialer({PathSpec::parse("udpflow://" + loopback(packets.udpflow_port()))}).dial(ec);
  EXPECT_EQ(ec, make_error_code(errc::handshake_failed));
  EXPECT_FALSE(stream.is_open());
  EXPECT_EQ(packets.stats().flows_opened, 0u);
  // The same listener takes a packet flow.
  auto accepted = packets.async_accept_packet(asio::use_future);
  PacketConn client = dialer({PathSpec::parse("udpflow://" + loopback(packets.udpflow_port()))})
                          .dial_packet({}, ec);
  EXPECT_EQ(ec, std::error_code{});
  ASSERT_EQ(accepted.wait_for(scaled(5s)), std::future_status::ready);
  EXPECT_TRUE(accepted.get().is_open());
  packets.close();

  listen();  // streams only
  ASSERT_FALSE(HasFatalFailure());
  PacketConn refused = dialer({tcp_path()}).dial_packet({}, ec);
  EXPECT_EQ(ec, make_error_code(errc::handshake_failed));
  EXPECT_FALSE(refused.is_open());
  EXPECT_EQ(listener_.stats().flows_opened, 0u);
}

}  // namespace
}  // namespace rendr::itest
