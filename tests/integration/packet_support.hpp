#pragma once
// Shared by the packet-mode integration tests: messages that carry their index and a pattern
// (so a merged, split, truncated or altered message is caught), a fixture with a listener that
// takes packet flows on a TCP and a udpflow address, and sender/reader pairs.
#include <atomic>
#include <cstring>
#include <functional>
#include <future>
#include <optional>
#include <thread>
#include <vector>

#include <asio/use_future.hpp>

#include "harness.hpp"

namespace rendr::itest {

// Message i: its index (4 bytes) then bytes that depend on (i, position); its size varies from
// 4 to kMaxMessageSize with i, so a merged, split or truncated message cannot pass check().
inline std::size_t message_size(std::uint32_t i) {
  return 4 + (static_cast<std::size_t>(i) * 37) % (kMaxMessageSize - 3);
}
inline Bytes make_message(std::uint32_t i) {
  Bytes m(message_size(i));
  std::memcpy(m.data(), &i, 4);
  for (std::size_t j = 4; j < m.size(); ++j)
    m[j] = static_cast<std::uint8_t>(i * 31 + j);
  return m;
}
// The index of a received message, or nullopt if it is not exactly a message make_message made.
inline std::optional<std::uint32_t> check(std::span<const std::uint8_t> m) {
  if (m.size() < 4) return std::nullopt;
  std::uint32_t i = 0;
  std::memcpy(&i, m.data(), 4);
  if (m.size() != message_size(i)) return std::nullopt;
  const Bytes expected = make_message(i);
  if (!std::equal(m.begin(), m.end(), expected.begin())) return std::nullopt;
  return i;
}

// dial_packet + accept_packet on `listener`, then waits (up to `wait` each) until every path of
// the client is up; false (and a failure recorded) if any step fails in time.
inline bool connect_packet(Listener& listener, const Dialer& d, const PacketOptions& options,
                           PacketConn& client, PacketConn& server, std::chrono::milliseconds wait) {
  auto accepted = listener.async_accept_packet(asio::use_future);
  std::error_code ec;
  client = d.dial_packet(options, ec);
  if (ec) {
    ADD_FAILURE() << "dial_packet: " << ec.message();
    return false;
  }
  if (accepted.wait_for(wait) != std::future_status::ready) {
    ADD_FAILURE() << "accept_packet did not complete";
    return false;
  }
  server = accepted.get();
  const auto paths_up = [&] {
    std::size_t up = 0;
    for (const auto& p : client.stats().paths)
      up += p.state == "up" ? 1 : 0;
    return up;
  };
  EXPECT_TRUE(wait_until([&] { return paths_up() >= d.paths.size(); }, wait));
  return client.is_open() && server.is_open();
}

class PacketConnTest : public IntegrationTest {
 protected:
  // A listener taking both kinds of flow on a TCP and a udpflow address.
  void listen_packets(bool streams = true) {
    ListenOptions options;
    options.accept_packet_flows = true;
    options.accept_stream_flows = streams;
    listen(options);
    ASSERT_FALSE(HasFatalFailure());
    ASSERT_EQ(listener_.listen_udpflow("127.0.0.1:0"), std::error_code{});
  }
  PathSpec udp_path() const {
    return PathSpec::parse("udpflow://" + loopback(listener_.udpflow_port()));
  }
  PathSpec tcp_path() const { return PathSpec::parse("tcp://" + loopback(listener_.port())); }

  // dial_packet + accept_packet; both empty (and a failure recorded) if that fails in time.
  bool connect_packet(const Dialer& d, const PacketOptions& options, PacketConn& client,
                      PacketConn& server) {
    return itest::connect_packet(listener_, d, options, client, server, scaled(5s));
  }

  static PathId path_on_port(const PacketConn& c, std::uint16_t port) {
    // Appended, not `":" + to_string(port)`: GCC 12 at -O3 takes that inlined insert for an
    // overlapping memcpy (-Wrestrict).
    std::string port_suffix(":");
    port_suffix += std::to_string(port);
    for (const auto& p : c.stats().paths)
      if (p.spec.ends_with(port_suffix)) return p.id;
    return kNoPath;
  }
};

// Receives on `to` into `got` (`received` counts them, for other threads), each message checked
// whole, until `got` holds `count` of them or, without a count, until the peer's close. Records
// a failure and stops at an error.
inline void receive_checked(PacketConn& to, std::optional<std::uint32_t> count,
                            std::vector<std::uint32_t>& got, std::atomic<std::size_t>& received) {
  Bytes buffer(kMaxMessageSize);
  while (!count || got.size() < *count) {
    std::error_code ec;
    const std::size_t n = to.receive(asio::buffer(buffer), ec);
    if (!count && ec == asio::error::eof) return;
    if (ec) {
      ADD_FAILURE() << "receive: " << ec.message() << " after " << got.size();
      return;
    }
    const auto i = check({buffer.data(), n});
    if (!i) {
      ADD_FAILURE() << "a message arrived altered (size " << n << ")";
      return;
    }
    got.push_back(*i);
    ++received;
  }
}

// Sends messages 0..count-1 on `from`, after_send(n) after the n-th. A failed send is recorded
// and aborts `to`, which ends its reader.
inline void send_numbered(PacketConn& from, PacketConn& to, std::uint32_t count,
                          const std::function<void(std::uint32_t sent)>& after_send) {
  for (std::uint32_t i = 0; i < count; ++i) {
    const Bytes m = make_message(i);
    std::error_code ec;
    const std::size_t n = from.send(asio::buffer(m), ec);
    if (ec) {
      ADD_FAILURE() << "send " << i << ": " << ec.message();
      to.abort();
      return;
    }
    EXPECT_EQ(n, m.size());
    if (after_send) after_send(i + 1);
  }
}

// `count` messages from `from` to `to`, read while they are sent; returns the indices in arrival
// order.
inline std::vector<std::uint32_t> send_and_receive(
    PacketConn& from, PacketConn& to, std::uint32_t count,
    const std::function<void(std::uint32_t sent)>& after_send) {
  std::vector<std::uint32_t> got;
  std::atomic<std::size_t> received{0};
  std::thread reader([&] { receive_checked(to, count, got, received); });
  send_numbered(from, to, count, after_send);
  reader.join();
  return got;
}

// Sends messages 0..count-1 (after_send(n) after the n-th), then closes; the peer reads until
// the close, each message checked whole. Returns the indices in arrival order.
inline std::vector<std::uint32_t> exchange(
    PacketConn& from, PacketConn& to, std::uint32_t count,
    const std::function<void(std::uint32_t sent)>& after_send) {
  std::vector<std::uint32_t> got;
  std::atomic<bool> reader_done{false};
  std::atomic<std::size_t> received{0};
  std::thread reader([&] {
    receive_checked(to, std::nullopt, got, received);
    reader_done = true;
  });
  send_numbered(from, to, count, after_send);
  from.close();
  // Bounded: a flow that stalls (a message lost for good) must fail the test, not hang it.
  if (!wait_until([&] { return reader_done.load(); }, scaled(30s))) {
    ADD_FAILURE() << "the peer's close did not arrive; " << received << " messages received";
    to.abort();  // ends the reader
  }
  reader.join();
  return got;
}

inline void expect_all_in_order(const std::vector<std::uint32_t>& got, std::uint32_t count) {
  ASSERT_EQ(got.size(), count);
  for (std::uint32_t i = 0; i < count; ++i)
    ASSERT_EQ(got[i], i) << "out of order at " << i;
}

}  // namespace rendr::itest
