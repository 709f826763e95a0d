// Packet flows under faults and in every mode, over real loopback: reliable (ordered or not)
// through UDP loss, duplication and reordering; unreliable through loss and duplication; race
// and bond over two udpflow paths; planned migrations and a failover over udpflow and over tcp;
// bond over a tcp and a udpflow path; async_dial_packet; buffer sequences.
#include <memory>
#include <mutex>
#include <set>

#include "packet_support.hpp"
#include "support/fault_proxy.hpp"
#include "support/udp_fault_proxy.hpp"

namespace rendr::itest {
namespace {

using testing::FaultMode;
using testing::FaultProxy;
using testing::UdpFaultProxy;
using testing::UdpFaults;

// Every tenth message sent by send_messages is empty (it carries no index: counted apart).
constexpr std::uint32_t kEmptyEvery = 10;

// Reads messages on its own thread until `enough` holds for what it has, or a receive fails.
class MessageReader {
 public:
  struct Seen {
    std::vector<std::uint32_t> indices;  // in arrival order
    std::size_t empty = 0;
    std::size_t altered = 0;  // neither empty nor exactly a message make_message made
  };
  using Enough = std::function<bool(const Seen&)>;

  MessageReader(PacketConn conn, Enough enough)
      : conn_(std::move(conn)), enough_(std::move(enough)), thread_([this] { run(); }) {}
  ~MessageReader() {
    if (!done_) conn_.abort();  // ends a receive still waiting
    thread_.join();
  }
  MessageReader(const MessageReader&) = delete;
  MessageReader& operator=(const MessageReader&) = delete;

  bool wait(std::chrono::milliseconds timeout) {
    return wait_until([&] { return done_.load(); }, timeout);
  }
  bool done() const { return done_; }
  Seen seen() const {
    std::lock_guard lock(mu_);
    return seen_;
  }
  std::error_code error() const {
    std::lock_guard lock(mu_);
    return error_;
  }

 private:
  void run() {
    Bytes buffer(kMaxMessageSize);
    for (;;) {
      {
        std::lock_guard lock(mu_);
        if (enough_(seen_)) break;
      }
      std::error_code ec;
      const std::size_t n = conn_.receive(asio::buffer(buffer), ec);
      std::lock_guard lock(mu_);
      if (ec) {
        error_ = ec;
        break;
      }
      if (n == 0) {
        ++seen_.empty;
      } else if (const auto i = check({buffer.data(), n})) {
        seen_.indices.push_back(*i);
      } else {
        ++seen_.altered;
      }
    }
    done_ = true;
  }

  PacketConn conn_;
  Enough enough_;
  mutable std::mutex mu_;
  Seen seen_;
  std::error_code error_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// Sends messages 0..count-1, every kEmptyEvery-th one preceded by an empty message; runs
// `after_send` with the number of indexed messages sent. False (and a failure) if a send fails.
bool send_messages(PacketConn& from, std::uint32_t count,
                   const std::function<void(std::uint32_t sent)>& after_send = nullptr) {
  for (std::uint32_t i = 0; i < count; ++i) {
    std::error_code ec;
    if (i % kEmptyEvery == 0) from.send(asio::const_buffer(), ec);
    const Bytes m = make_message(i);
    if (!ec) from.send(asio::buffer(m), ec);
    if (ec) {
      ADD_FAILURE() << "send " << i << ": " << ec.message();
      return false;
    }
    if (after_send) after_send(i + 1);
  }
  return true;
}

constexpr std::uint32_t empties_for(std::uint32_t count) {
  return (count + kEmptyEvery - 1) / kEmptyEvery;
}

// Reliable delivery of send_messages(count): each message exactly once and intact, every empty
// one too, and (ordered) in the order sent.
void expect_all_once(const MessageReader::Seen& seen, std::uint32_t count, bool ordered) {
  EXPECT_EQ(seen.altered, 0u);
  EXPECT_EQ(seen.empty, empties_for(count));
  ASSERT_EQ(seen.indices.size(), count);
  const std::set<std::uint32_t> distinct(seen.indices.begin(), seen.indices.end());
  EXPECT_EQ(distinct.size(), count) << "a message arrived twice";
  EXPECT_EQ(*distinct.rbegin(), count - 1);
  if (ordered) {
    for (std::uint32_t i = 0; i < count; ++i)
      ASSERT_EQ(seen.indices[i], i) << "out of order at " << i;
  }
}

MessageReader::Enough until_all(std::uint32_t count) {
  return [count](const MessageReader::Seen& s) {
    return s.indices.size() + s.altered >= count && s.empty >= empties_for(count);
  };
}

class PacketModesTest : public PacketConnTest {
 protected:
  // Sends send_messages(count) from the client while a reader takes them on the server; the
  // reader's record once it has them all (or its deadline passed: the failure is recorded).
  MessageReader::Seen transfer(PacketConn& client, PacketConn& server, std::uint32_t count,
                               const std::function<void(std::uint32_t)>& after_send = nullptr) {
    MessageReader reader(server, until_all(count));
    const bool sent = send_messages(client, count, after_send);
    EXPECT_TRUE(sent);
    EXPECT_TRUE(reader.wait(scaled(30s)))
        << "received " << reader.seen().indices.size() << " of " << count << "\n"
        << describe(client.stats());
    EXPECT_EQ(reader.error(), std::error_code{});
    return reader.seen();
  }

  static PathSpec udp_via(std::uint16_t port) {
    return PathSpec::parse("udpflow://" + loopback(port));
  }
  static PathSpec tcp_via(std::uint16_t port) { return PathSpec::parse("tcp://" + loopback(port)); }
  static std::uint64_t sent_on(const PacketConn& c, PathId id) {
    for (const auto& p : c.stats().paths)
      if (p.id == id) return p.bytes_sent;
    return 0;
  }
};

// ---- reliable through loss, duplication and reordering

class ReliableUnderFaultsTest : public PacketModesTest,
                                public ::testing::WithParamInterface<bool> {};

// 5 % loss, 5 % duplication and 5 % reordering each way on the only udpflow path: every
// message arrives exactly once and intact (in order when ordered); the faults happened and the
// lost messages were sent again.
TEST_P(ReliableUnderFaultsTest, EveryMessageArrivesExactlyOnce) {
  const bool ordered = GetParam();
  listen_packets();
  UdpFaultProxy proxy("127.0.0.1", "127.0.0.1", listener_.udpflow_port(), 11);
  PacketConn client;
  PacketConn server;
  ASSERT_TRUE(connect_packet(dialer({udp_via(proxy.port())}),
                             {.reliable = true, .ordered = ordered}, client, server));
  const UdpFaults faults{.loss = 0.05, .duplicate = 0.05, .reorder = 0.05};
  proxy.set_faults(faults, faults);
  constexpr std::uint32_t kCount = 3000;
  expect_all_once(transfer(client, server, kCount), kCount, ordered);
  const auto up = proxy.counters_client_to_server();
  EXPECT_GT(up.dropped, 0u);
  EXPECT_GT(up.duplicated, 0u);
  EXPECT_GT(up.reordered, 0u);
  EXPECT_GT(client.stats().retransmitted_bytes, 0u) << describe(client.stats());
  proxy.set_faults({}, {});  // a quick close: its frames are not lost
}

INSTANTIATE_TEST_SUITE_P(Orders, ReliableUnderFaultsTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "ordered" : "unordered"; });

// ---- unreliable

class UnreliableTest : public PacketModesTest, public ::testing::WithParamInterface<bool> {};

// 5 % loss and 10 % duplication each way: no message arrives twice or altered, fewer arrive
// than were sent but most do, and once the faults stop a later message arrives (the SKIPs for
// what was lost let the flow go on).
TEST_P(UnreliableTest, LosesOnlyWhatTheNetworkLostAndNeverDuplicates) {
  const bool ordered = GetParam();
  listen_packets();
  UdpFaultProxy proxy("127.0.0.1", "127.0.0.1", listener_.udpflow_port(), 12);
  PacketConn client;
  PacketConn server;
  ASSERT_TRUE(connect_packet(dialer({udp_via(proxy.port())}),
                             {.reliable = false, .ordered = ordered}, client, server));
  const UdpFaults faults{.loss = 0.05, .duplicate = 0.1};
  proxy.set_faults(faults, faults);
  constexpr std::uint32_t kCount = 2000;
  // Until a message sent after the faults stopped (an index >= kCount) arrives.
  MessageReader reader(server, [](const MessageReader::Seen& s) {
    return !s.indices.empty() && s.indices.back() >= kCount;
  });
  ASSERT_TRUE(send_messages(client, kCount));
  // Every message went out under the faults (acknowledged, or skipped when lost).
  ASSERT_TRUE(wait_until(
      [&] {
        const ConnStats st = client.stats();
        return st.bytes_acked == st.bytes_written;
      },
      scaled(20s)))
      << describe(client.stats());
  const auto up = proxy.counters_client_to_server();
  proxy.set_faults({}, {});
  // Later messages, one at a time, until one arrives.
  for (std::uint32_t i = kCount; !reader.done() && i < kCount + 1000; ++i) {
    const Bytes m = make_message(i);
    std::error_code ec;
    client.send(asio::buffer(m), ec);
    ASSERT_EQ(ec, std::error_code{});
    reader.wait(20ms);
  }
  ASSERT_TRUE(reader.wait(scaled(5s))) << "no message arrived after the faults stopped\n"
                                       << describe(client.stats());
  const MessageReader::Seen seen = reader.seen();
  EXPECT_EQ(seen.altered, 0u);
  std::set<std::uint32_t> distinct;
  std::size_t before_end = 0;
  for (std::uint32_t i : seen.indices) {
    EXPECT_TRUE(distinct.insert(i).second) << "message " << i << " arrived twice";
    before_end += i < kCount ? 1 : 0;
  }
  if (ordered) {
    EXPECT_TRUE(std::is_sorted(seen.indices.begin(), seen.indices.end()));
  }
  EXPECT_LE(seen.empty, empties_for(kCount));
  EXPECT_LE(before_end, kCount);
  EXPECT_GE(before_end, kCount / 2) << "far more lost than the network dropped";
  EXPECT_GT(up.dropped, 0u);
  EXPECT_GT(up.duplicated, 0u);
  EXPECT_EQ(client.stats().retransmitted_bytes, 0u) << "an unreliable message was sent again";
}

INSTANTIATE_TEST_SUITE_P(Orders, UnreliableTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "ordered" : "unordered"; });

// ---- modes over two udpflow paths

// Race sends every message on both paths: each is delivered once and the other copies are
// dropped and counted.
TEST_F(PacketModesTest, RaceDeliversEachMessageOnceAndCountsTheCopies) {
  listen_packets();
  ASSERT_EQ(listener_.listen_udpflow("127.0.0.1:0"), std::error_code{});
  Dialer d = dialer({udp_via(listener_.udpflow_port(0)), udp_via(listener_.udpflow_port(1))});
  d.mode = Mode::race;
  PacketConn client;
  PacketConn server;
  ASSERT_TRUE(connect_packet(d, {}, client, server));
  constexpr std::uint32_t kCount = 2000;
  expect_all_once(transfer(client, server, kCount), kCount, false);
  EXPECT_GT(server.recv_dups(), 0u) << describe(server.stats());
  for (const auto& p : client.stats().paths)
    EXPECT_GT(p.bytes_sent, 0u) << describe(client.stats());
}

// Bond spreads messages over both paths: both carry a share of them, every one arrives once.
TEST_F(PacketModesTest, BondSpreadsMessagesOverBothPaths) {
  listen_packets();
  ASSERT_EQ(listener_.listen_udpflow("127.0.0.1:0"), std::error_code{});
  Dialer d = dialer({udp_via(listener_.udpflow_port(0)), udp_via(listener_.udpflow_port(1))});
  d.mode = Mode::bond;
  PacketConn client;
  PacketConn server;
  ASSERT_TRUE(connect_packet(d, {.reliable = true, .ordered = true}, client, server));
  std::vector<std::uint64_t> before;
  for (const auto& p : client.stats().paths)
    before.push_back(p.bytes_sent);
  constexpr std::uint32_t kCount = 4000;
  expect_all_once(transfer(client, server, kCount), kCount, true);
  const auto paths = client.stats().paths;
  ASSERT_EQ(paths.size(), before.size());
  for (std::size_t i = 0; i < paths.size(); ++i)
    EXPECT_GT(paths[i].bytes_sent, before[i] + 50 * KiB) << describe(client.stats());
}

// ---- migrations

// Two paths of one transport, each through its own fault proxy. While messages flow the client
// migrates between them several times, then the active path is cut (blackholed for udpflow,
// reset for tcp) and the flow fails over: every message arrives once, in order.
class MigrationTest : public PacketModesTest, public ::testing::WithParamInterface<bool> {};

TEST_P(MigrationTest, PlannedMigrationsAndAFailoverLoseNothing) {
  const bool udp = GetParam();
  listen_packets();
  std::unique_ptr<UdpFaultProxy> udp_proxies[2];
  std::unique_ptr<FaultProxy> tcp_proxies[2];
  std::vector<PathSpec> specs;
  for (int i = 0; i < 2; ++i) {
    if (udp) {
      udp_proxies[i] =
          std::make_unique<UdpFaultProxy>("127.0.0.1", "127.0.0.1", listener_.udpflow_port());
      specs.push_back(udp_via(udp_proxies[i]->port()));
    } else {
      tcp_proxies[i] = std::make_unique<FaultProxy>("127.0.0.1", "127.0.0.1", listener_.port());
      specs.push_back(tcp_via(tcp_proxies[i]->port()));
    }
  }
  PacketConn client;
  PacketConn server;
  ASSERT_TRUE(connect_packet(dialer(specs), {.reliable = true, .ordered = true}, client, server));
  PathId ids[2];
  for (int i = 0; i < 2; ++i) {
    ids[i] = path_on_port(client, udp ? udp_proxies[i]->port() : tcp_proxies[i]->port());
    ASSERT_NE(ids[i], kNoPath);
  }
  const auto cut = [&](int i) {
    if (udp) {
      udp_proxies[i]->set_faults({.blackhole = true}, {.blackhole = true});
    } else {
      tcp_proxies[i]->set_mode(FaultMode::reset);
    }
  };
  constexpr std::uint32_t kCount = 6000;
  constexpr int kPlanned = 4;
  std::vector<std::error_code> migrations;
  std::optional<int> cut_path;
  const auto seen = transfer(client, server, kCount, [&](std::uint32_t sent) {
    if (sent % (kCount / (kPlanned + 2)) != 0) return;
    const int step = static_cast<int>(sent / (kCount / (kPlanned + 2)));
    const int active = client.active_path() == ids[0] ? 0 : 1;
    if (step <= kPlanned) {
      migrations.push_back(client.migrate(ids[1 - active]));
    } else if (!cut_path) {
      cut_path = active;
      cut(active);
    }
  });
  expect_all_once(seen, kCount, true);
  ASSERT_EQ(migrations.size(), static_cast<std::size_t>(kPlanned));
  for (const auto& ec : migrations)
    EXPECT_EQ(ec, std::error_code{});
  ASSERT_TRUE(cut_path.has_value());
  const ConnStats stats = client.stats();
  EXPECT_GE(stats.migrations_explicit, static_cast<std::uint64_t>(kPlanned)) << describe(stats);
  EXPECT_TRUE(wait_until([&] { return client.stats().migrations_death >= 1; }, scaled(5s)))
      << describe(client.stats());
  EXPECT_EQ(client.active_path(), ids[1 - *cut_path]);
}

INSTANTIATE_TEST_SUITE_P(Transports, MigrationTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "udpflow" : "tcp"; });

// ---- mixed transports

// Bond over a tcp and a udpflow path, unordered: messages framed on the stream and messages in
// datagrams, each delivered once, both paths carrying a share.
TEST_F(PacketModesTest, BondOverATcpAndAUdpflowPath) {
  listen_packets();
  Dialer d = dialer({udp_path(), tcp_path()});
  d.mode = Mode::bond;
  PacketConn client;
  PacketConn server;
  ASSERT_TRUE(connect_packet(d, {}, client, server));
  const PathId via_tcp = path_on_port(client, listener_.port());
  const PathId via_udp = path_on_port(client, listener_.udpflow_port());
  ASSERT_NE(via_tcp, kNoPath);
  ASSERT_NE(via_udp, kNoPath);
  const std::uint64_t tcp_before = sent_on(client, via_tcp);
  const std::uint64_t udp_before = sent_on(client, via_udp);
  constexpr std::uint32_t kCount = 4000;
  expect_all_once(transfer(client, server, kCount), kCount, false);
  EXPECT_GT(sent_on(client, via_tcp), tcp_before + 50 * KiB) << describe(client.stats());
  EXPECT_GT(sent_on(client, via_udp), udp_before + 50 * KiB) << describe(client.stats());
}

// ---- API

// async_dial_packet with a future: a packet flow with the options asked for (ordered: the
// messages arrive in order); with a callback: a refusal reported through it.
TEST_F(PacketModesTest, AsyncDialPacketTakesAnyCompletionToken) {
  listen_packets();
  auto accepted = listener_.async_accept_packet(asio::use_future);
  auto dialed = dialer({udp_path()}).async_dial_packet({.ordered = true}, asio::use_future);
  ASSERT_EQ(dialed.wait_for(scaled(5s)), std::future_status::ready);
  PacketConn client = dialed.get();
  ASSERT_TRUE(client.is_open());
  ASSERT_EQ(accepted.wait_for(scaled(5s)), std::future_status::ready);
  PacketConn server = accepted.get();
  EXPECT_EQ(server.flow_id(), client.flow_id());
  expect_all_once(transfer(client, server, 200), 200, true);

  // A stream-only listener refuses it: the error comes through a callback.
  listener_.close();
  listen();
  ASSERT_FALSE(HasFatalFailure());
  std::promise<std::pair<std::error_code, bool>> refused;
  dialer({tcp_path()}).async_dial_packet({}, [&](std::error_code ec, PacketConn c) {
    refused.set_value({ec, c.is_open()});
  });
  auto result = refused.get_future();
  ASSERT_EQ(result.wait_for(scaled(5s)), std::future_status::ready);
  const auto [ec, open] = result.get();
  EXPECT_EQ(ec, make_error_code(errc::handshake_failed));
  EXPECT_FALSE(open);
}

// send() of a buffer sequence is one message (gathered), receive() into a buffer sequence takes
// one message (scattered); a sequence too small in total leaves the message queued, one above
// the limit in total is refused.
TEST_F(PacketModesTest, BufferSequencesGatherAndScatterOneMessage) {
  listen_packets();
  PacketConn client;
  PacketConn server;
  ASSERT_TRUE(
      connect_packet(dialer({tcp_path()}), {.reliable = true, .ordered = true}, client, server));
  const Bytes m = make_message(500);
  const std::size_t cut = m.size() / 3;
  const std::array<asio::const_buffer, 3> pieces{asio::buffer(m.data(), cut), asio::const_buffer(),
                                                 asio::buffer(m.data() + cut, m.size() - cut)};
  std::error_code ec;
  EXPECT_EQ(client.send(pieces, ec), m.size());
  EXPECT_EQ(ec, std::error_code{});
  const std::vector<asio::const_buffer> none;
  EXPECT_EQ(client.send(none, ec), 0u);  // an empty sequence is an empty message
  EXPECT_EQ(ec, std::error_code{});
  const Bytes half(kMaxMessageSize / 2 + 1, 3);
  const std::array<asio::const_buffer, 2> too_large{asio::buffer(half), asio::buffer(half)};
  EXPECT_EQ(client.send(too_large, ec), 0u);
  EXPECT_EQ(ec, make_error_code(errc::message_too_large));
  EXPECT_THROW(client.send(too_large), std::system_error);

  Bytes head(10);
  Bytes tail(m.size() - 11);  // one byte short in total
  std::array<asio::mutable_buffer, 2> small{asio::buffer(head), asio::buffer(tail)};
  EXPECT_EQ(server.receive(small, ec), m.size());
  EXPECT_EQ(ec, make_error_code(errc::message_buffer_too_small));
  tail.resize(m.size() - 10 + 5);  // room to spare
  std::array<asio::mutable_buffer, 2> enough{asio::buffer(head), asio::buffer(tail)};
  EXPECT_EQ(server.receive(enough, ec), m.size());
  EXPECT_EQ(ec, std::error_code{});
  Bytes joined(head);
  joined.insert(joined.end(), tail.begin(), tail.begin() + (m.size() - head.size()));
  EXPECT_EQ(check(joined), 500u);
  EXPECT_EQ(server.receive(enough, ec), 0u);  // the empty one, after it
  EXPECT_EQ(ec, std::error_code{});
}

}  // namespace
}  // namespace rendr::itest
