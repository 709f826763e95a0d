// The udpflow socket layer over real loopback UDP (src/carrier/udp): GSO send, GRO receive,
// recvmmsg batches, the GSO fallback, the route-MTU lookup, and the listener's demultiplexing
// by connection id.
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include <asio/io_context.hpp>

#include "carrier/udp/route_mtu.hpp"
#include "carrier/udp/udp_demux.hpp"
#include "carrier/udp/udp_socket.hpp"
#include "wire/datagram.hpp"

namespace rendr::carrier::udp {
namespace {

using namespace std::chrono_literals;
using wire::Byte;
using Buf = std::vector<Byte>;
namespace dg = wire::datagram;

#ifdef RENDR_SANITIZED
constexpr auto kDeadline = 15s;
#else
constexpr auto kDeadline = 5s;
#endif

const asio::ip::udp::endpoint kLoopback(asio::ip::make_address("127.0.0.1"), 0);

// `count` datagrams of `segment` bytes (the last `last` bytes), each byte a function of
// (datagram index, offset), back to back as GSO wants them.
Buf segments(std::size_t count, std::size_t segment, std::size_t last) {
  Buf out;
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t n = i + 1 == count ? last : segment;
    for (std::size_t j = 0; j < n; ++j)
      out.push_back(static_cast<Byte>(i * 13 + j * 7 + 1));
  }
  return out;
}

Buf bytes_of(const ReceivedDatagram& d) {
  return Buf(d.bytes.begin(), d.bytes.end());
}

// Waits (bounded) until the socket is readable, then receives; appends what came.
void receive_until(UdpSocket& socket, std::vector<Buf>& got, std::size_t want,
                   std::size_t* largest_batch = nullptr) {
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (got.size() < want && std::chrono::steady_clock::now() < deadline) {
    std::error_code ec;
    const auto batch = socket.receive(ec);
    if (largest_batch) *largest_batch = std::max(*largest_batch, batch.size());
    for (const auto& d : batch)
      got.push_back(bytes_of(d));
    if (batch.empty()) {
      ASSERT_EQ(ec, asio::error::would_block) << ec.message();
      pollfd fd{static_cast<int>(socket.native_handle()), POLLIN, 0};
      ::poll(&fd, 1, 100);
    }
  }
}

// Runs the io_context until `done` holds (bounded).
void run_until(asio::io_context& io, const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    io.restart();
    io.run_for(10ms);
  }
}

struct Pair {
  asio::io_context io;
  std::shared_ptr<UdpSocket> receiver;
  std::shared_ptr<UdpSocket> sender;
  Pair(UdpSocketOptions receiver_options, UdpSocketOptions sender_options) {
    receiver = UdpSocket::bind(io.get_executor(), kLoopback, receiver_options);
    sender = UdpSocket::connect(io.get_executor(), receiver->local_endpoint(), sender_options);
  }
};

UdpSocketOptions without_gro() {
  UdpSocketOptions o;
  o.gro = false;
  return o;
}

TEST(UdpSocket, ReportsWhatTheKernelGranted) {
  asio::io_context io;
  auto s = UdpSocket::bind(io.get_executor(), kLoopback);
  const UdpSocketInfo info = s->info();
  EXPECT_TRUE(info.pmtud_probe);
  EXPECT_TRUE(info.gso) << "this machine's kernel offers UDP_SEGMENT";
  EXPECT_TRUE(info.gro) << "this machine's kernel offers UDP_GRO";
  // Far beyond the 208 KiB default, whether forced or capped by rmem_max.
  EXPECT_GE(info.receive_buffer, 4 * 1024 * 1024);
  EXPECT_GE(info.send_buffer, 4 * 1024 * 1024);
  int mode = -1;
  socklen_t len = sizeof(mode);
  ASSERT_EQ(getsockopt(s->native_handle(), IPPROTO_IP, IP_MTU_DISCOVER, &mode, &len), 0);
  EXPECT_EQ(mode, IP_PMTUDISC_PROBE) << "DF set, the kernel never fragments";
  std::printf("udp socket: rcvbuf %d sndbuf %d forced %d gso %d gro %d\n", info.receive_buffer,
              info.send_buffer, info.buffers_forced, info.gso, info.gro);
}

TEST(UdpSocket, IPv6SocketSetsTheIPv6ProbeMode) {
  asio::io_context io;
  std::shared_ptr<UdpSocket> s;
  try {
    s = UdpSocket::bind(io.get_executor(),
                        asio::ip::udp::endpoint(asio::ip::make_address("::1"), 0));
  } catch (const std::system_error&) {
    GTEST_SKIP() << "no IPv6 loopback";
  }
  EXPECT_TRUE(s->info().pmtud_probe);
  int mode = -1;
  socklen_t len = sizeof(mode);
  ASSERT_EQ(getsockopt(s->native_handle(), IPPROTO_IPV6, IPV6_MTU_DISCOVER, &mode, &len), 0);
  EXPECT_EQ(mode, IPV6_PMTUDISC_PROBE);
}

// The loopback interface's MTU as the kernel reports it for the interface itself.
int loopback_mtu() {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  const int mtu = fd >= 0 && ::ioctl(fd, SIOCGIFMTU, &ifr) == 0 ? ifr.ifr_mtu : -1;
  if (fd >= 0) ::close(fd);
  return mtu;
}

TEST(RouteMtu, AnIPv4RouteTakesItsInterfaceMtuLessTheIpAndUdpHeaders) {
  // An IPv4 datagram's length field stops at 65535 (loopback's MTU is 65536).
  const int mtu = std::min(loopback_mtu(), 65535);
  ASSERT_GT(mtu, 0);
  const asio::ip::udp::endpoint peer(asio::ip::make_address("127.0.0.1"), 9);
  EXPECT_EQ(route_max_udp_payload(peer), static_cast<std::size_t>(mtu) - 20 - 8);
  // A dual-stack listener sees an IPv4 client as IPv4-mapped: the IPv4 route and headers.
  const asio::ip::udp::endpoint mapped(asio::ip::make_address("::ffff:127.0.0.1"), 9);
  EXPECT_EQ(route_max_udp_payload(mapped), static_cast<std::size_t>(mtu) - 20 - 8);
}

TEST(RouteMtu, AnIPv6RouteTakesItsInterfaceMtuLessTheIpv6AndUdpHeaders) {
  asio::io_context io;
  try {
    (void)UdpSocket::bind(io.get_executor(),
                          asio::ip::udp::endpoint(asio::ip::make_address("::1"), 0));
  } catch (const std::system_error&) {
    GTEST_SKIP() << "no IPv6 loopback";
  }
  const int mtu = loopback_mtu();
  ASSERT_GT(mtu, 0);
  const asio::ip::udp::endpoint peer(asio::ip::make_address("::1"), 9);
  EXPECT_EQ(route_max_udp_payload(peer), static_cast<std::size_t>(mtu) - 40 - 8);
}

TEST(RouteMtu, APeerIsOnThisHostWhenLoopbackOrTheLocalAddressItself) {
  using asio::ip::make_address;
  using Endpoint = asio::ip::udp::endpoint;
  const Endpoint any(make_address("0.0.0.0"), 7000);
  const Endpoint here(make_address("192.0.2.10"), 7000);
  EXPECT_TRUE(is_same_host(any, Endpoint(make_address("127.0.0.1"), 9)));
  EXPECT_TRUE(is_same_host(any, Endpoint(make_address("127.3.2.1"), 9)));
  EXPECT_TRUE(is_same_host(any, Endpoint(make_address("::1"), 9)));
  EXPECT_TRUE(is_same_host(any, Endpoint(make_address("::ffff:127.0.0.1"), 9)));
  EXPECT_TRUE(is_same_host(here, Endpoint(make_address("192.0.2.10"), 9)));
  EXPECT_FALSE(is_same_host(here, Endpoint(make_address("192.0.2.11"), 9)));
  EXPECT_FALSE(is_same_host(any, Endpoint(make_address("192.0.2.10"), 9)));
  EXPECT_FALSE(is_same_host(any, Endpoint(make_address("::ffff:192.0.2.10"), 9)));
}

TEST(UdpSocket, GsoSendArrivesAsSeparateDatagrams) {
  Pair pair(without_gro(), {});
  const std::size_t kCount = 40, kSegment = 1200, kLast = 517;
  const Buf buffer = segments(kCount, kSegment, kLast);
  const SendResult sent = pair.sender->send(buffer, kSegment);
  ASSERT_FALSE(sent.error) << sent.error.message();
  EXPECT_EQ(sent.datagrams, kCount);
  EXPECT_TRUE(pair.sender->info().gso) << "the kernel took the GSO send";
  EXPECT_EQ(pair.sender->counters().send_calls.load(), 1u) << "one sendmmsg";
  EXPECT_EQ(pair.sender->counters().messages_sent.load(), 1u) << "one GSO message";
  std::vector<Buf> got;
  receive_until(*pair.receiver, got, kCount);
  ASSERT_EQ(got.size(), kCount);
  for (std::size_t i = 0; i < kCount; ++i) {
    const std::size_t offset = i * kSegment;
    const std::size_t n = i + 1 == kCount ? kLast : kSegment;
    EXPECT_EQ(got[i], Buf(buffer.begin() + offset, buffer.begin() + offset + n)) << i;
  }
  EXPECT_EQ(pair.receiver->counters().gro_buffers.load(), 0u);
}

TEST(UdpSocket, GroReceiveSplitsCoalescedSegments) {
  Pair pair({}, {});
  ASSERT_TRUE(pair.receiver->info().gro);
  const std::size_t kCount = 50, kSegment = 1000, kLast = 99;  // 2 GSO messages
  const Buf buffer = segments(kCount, kSegment, kLast);
  ASSERT_EQ(pair.sender->send(buffer, kSegment).datagrams, kCount);
  std::vector<Buf> got;
  receive_until(*pair.receiver, got, kCount);
  ASSERT_EQ(got.size(), kCount);
  for (std::size_t i = 0; i < kCount; ++i) {
    const std::size_t n = i + 1 == kCount ? kLast : kSegment;
    EXPECT_EQ(got[i], Buf(buffer.begin() + i * kSegment, buffer.begin() + i * kSegment + n)) << i;
  }
  // Loopback hands a GSO send to a GRO socket whole: fewer buffers than datagrams arrived.
  EXPECT_GE(pair.receiver->counters().gro_buffers.load(), 1u);
  EXPECT_EQ(pair.receiver->counters().datagrams_received.load(), kCount);
}

TEST(UdpSocket, RecvmmsgReceivesABatchAndNeverOverwritesAHeldBlock) {
  UdpSocketOptions no_gso;
  no_gso.gso = false;
  Pair pair(without_gro(), no_gso);
  const std::size_t kCount = 100;
  const Buf buffer = segments(kCount, 300, 300);
  const SendResult sent = pair.sender->send(buffer, 300);
  ASSERT_EQ(sent.datagrams, kCount);
  EXPECT_FALSE(pair.sender->info().gso);
  EXPECT_LE(pair.sender->counters().send_calls.load(), 4u) << "32 datagrams per sendmmsg";

  // Keep the first datagram's block: a later receive must not write into it.
  std::error_code ec;
  pollfd fd{static_cast<int>(pair.receiver->native_handle()), POLLIN, 0};
  ASSERT_EQ(::poll(&fd, 1, 2000), 1);
  auto first = pair.receiver->receive(ec);
  ASSERT_FALSE(first.empty());
  const ReceivedDatagram held = first[0];
  const Buf held_bytes = bytes_of(held);
  std::vector<Buf> got;
  for (const auto& d : first)
    got.push_back(bytes_of(d));
  std::size_t largest_batch = first.size();
  receive_until(*pair.receiver, got, kCount, &largest_batch);
  ASSERT_EQ(got.size(), kCount);
  EXPECT_GT(largest_batch, 1u) << "recvmmsg returned several datagrams at once";
  EXPECT_LT(pair.receiver->counters().receive_calls.load(), kCount);
  EXPECT_EQ(bytes_of(held), held_bytes);
  for (std::size_t i = 0; i < kCount; ++i)
    EXPECT_EQ(got[i], Buf(buffer.begin() + i * 300, buffer.begin() + (i + 1) * 300)) << i;
}

// The kernel refuses a GSO message of more segments than it allows (EINVAL): the socket
// remembers, sends one datagram per message, and everything still arrives.
TEST(UdpSocket, FallsBackToPlainSendmmsgWhenTheKernelRefusesGso) {
  UdpSocketOptions too_many;
  too_many.max_gso_segments = 600;  // above UDP_MAX_SEGMENTS (64 or 128)
  Pair pair(without_gro(), too_many);
  ASSERT_TRUE(pair.sender->info().gso);
  const std::size_t kCount = 500;
  const Buf buffer = segments(kCount, 100, 100);
  const SendResult sent = pair.sender->send(buffer, 100);
  ASSERT_FALSE(sent.error) << sent.error.message();
  EXPECT_EQ(sent.datagrams, kCount);
  EXPECT_FALSE(pair.sender->info().gso);
  EXPECT_EQ(pair.sender->counters().gso_fallbacks.load(), 1u);
  std::vector<Buf> got;
  receive_until(*pair.receiver, got, kCount);
  ASSERT_EQ(got.size(), kCount);
  EXPECT_EQ(got[kCount - 1], Buf(buffer.end() - 100, buffer.end()));
  // Remembered: the next send does not try GSO again.
  ASSERT_EQ(pair.sender->send(buffer, 100).datagrams, kCount);
  EXPECT_EQ(pair.sender->counters().gso_fallbacks.load(), 1u);
}

// Sealed packets of different lengths in one call: runs of one size go out as GSO messages,
// every datagram arrives with its own length and bytes, in order.
TEST(UdpSocket, MixedSizesGoOutAsRunsOfEqualSegments) {
  Pair pair(without_gro(), {});
  const std::vector<std::size_t> sizes = {1200, 1200, 1200, 1200, 1200, 800, 1200, 1200,
                                          1200, 1452, 1452, 64,   13,   13,  13,   1200};
  Buf buffer;
  for (std::size_t i = 0; i < sizes.size(); ++i)
    for (std::size_t j = 0; j < sizes[i]; ++j)
      buffer.push_back(static_cast<Byte>(i * 17 + j));
  const SendResult sent = pair.sender->send(buffer, sizes);
  ASSERT_FALSE(sent.error) << sent.error.message();
  EXPECT_EQ(sent.datagrams, sizes.size());
  EXPECT_TRUE(pair.sender->info().gso);
  EXPECT_EQ(pair.sender->counters().send_calls.load(), 1u);
  // 5 x 1200 + 800 | 3 x 1200 | 2 x 1452 + 64 | 3 x 13 | 1200
  EXPECT_EQ(pair.sender->counters().messages_sent.load(), 5u);
  std::vector<Buf> got;
  receive_until(*pair.receiver, got, sizes.size());
  ASSERT_EQ(got.size(), sizes.size());
  std::size_t offset = 0;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_EQ(got[i], Buf(buffer.begin() + offset, buffer.begin() + offset + sizes[i])) << i;
    offset += sizes[i];
  }
  // Sizes that do not add up to the buffer are refused, nothing sent.
  const std::vector<std::size_t> wrong = {1200, 100};
  EXPECT_EQ(pair.sender->send(Buf(1200, 0), wrong).error, std::errc::invalid_argument);
}

// An error that is not about GSO (here: a destination the kernel refuses) leaves GSO on.
TEST(UdpSocket, OtherSendErrorsDoNotTurnGsoOff) {
  asio::io_context io;
  auto s = UdpSocket::bind(io.get_executor(), kLoopback, without_gro());
  ASSERT_TRUE(s->info().gso);
  const asio::ip::udp::endpoint port_zero(asio::ip::make_address("127.0.0.1"), 0);
  const Buf one(100, 1);
  const SendResult sent = s->send(one, 100, &port_zero);
  EXPECT_EQ(sent.datagrams, 0u);
  EXPECT_TRUE(sent.error);
  EXPECT_TRUE(s->info().gso);
  EXPECT_EQ(s->counters().gso_fallbacks.load(), 0u);
}

// ---- demultiplexing ------------------------------------------------------------------------

Buf handshake_packet(dg::ConnectionId dcid, dg::ConnectionId scid, Byte tag) {
  Buf p(dg::kHandshakeHeaderSize + 4, tag);
  dg::encode_handshake_header(dcid, scid, 0, p);
  return p;
}

Buf protected_packet(dg::ConnectionId dcid, Byte tag) {
  Buf p(dg::kProtectedHeaderSize + 8 + dg::kTagSize, tag);
  dg::encode_protected_header(dcid, 1, p);
  return p;
}

struct Arrival {
  Buf bytes;
  asio::ip::udp::endpoint source;
  dg::PacketHeader header;
};

struct DemuxFixture {
  asio::io_context io;
  std::shared_ptr<UdpDemux> demux;
  std::vector<Arrival> unknown;
  std::map<dg::ConnectionId, std::vector<Arrival>> routed;

  explicit DemuxFixture(UdpDemuxOptions options = {}) {
    demux = UdpDemux::open(
        io.get_executor(), kLoopback,
        [this](const ReceivedDatagram& d, const dg::PacketHeader& h) {
          unknown.push_back({bytes_of(d), d.source, h});
        },
        options);
  }
  void route(dg::ConnectionId dcid) {
    ASSERT_TRUE(
        demux->add_route(dcid, [this, dcid](const ReceivedDatagram& d, const dg::PacketHeader& h) {
          EXPECT_EQ(h.dcid, dcid);
          routed[dcid].push_back({bytes_of(d), d.source, h});
        }));
  }
  std::shared_ptr<UdpSocket> client() {
    return UdpSocket::connect(io.get_executor(), demux->socket().local_endpoint());
  }
  std::size_t total() const {
    std::size_t n = unknown.size();
    for (const auto& [id, v] : routed)
      n += v.size();
    return n + demux->counters().malformed + demux->counters().unroutable;
  }
  ~DemuxFixture() {
    demux->close();
    io.restart();
    io.poll();
  }
};

void send_one(UdpSocket& s, const Buf& datagram) {
  if (datagram.empty()) {  // UdpSocket::send has nothing to say in an empty datagram; a peer may
    ASSERT_EQ(::send(s.native_handle(), "", 0, 0), 0);
    return;
  }
  ASSERT_EQ(s.send(datagram, datagram.size()).datagrams, 1u);
}

TEST(UdpDemux, RoutesByConnectionIdNotBySourceAddress) {
  DemuxFixture f;
  constexpr dg::ConnectionId kA = 0xa1, kB = 0xb2;
  f.route(kA);
  f.route(kB);
  auto client1 = f.client(), client2 = f.client();
  // Swapped: client 1 sends on B's id, client 2 on A's. Sent before start(): datagrams queued
  // before the reader's first wait must be delivered too.
  send_one(*client1, protected_packet(kB, 1));
  send_one(*client2, protected_packet(kA, 2));
  send_one(*client1, handshake_packet(kB, 77, 3));
  f.demux->start();
  run_until(f.io, [&] { return f.total() >= 3; });
  ASSERT_EQ(f.routed[kA].size(), 1u);
  ASSERT_EQ(f.routed[kB].size(), 2u);
  EXPECT_EQ(f.routed[kA][0].bytes, protected_packet(kA, 2));
  EXPECT_EQ(f.routed[kA][0].source, client2->local_endpoint());
  EXPECT_EQ(f.routed[kB][0].bytes, protected_packet(kB, 1));
  EXPECT_EQ(f.routed[kB][0].source, client1->local_endpoint());
  EXPECT_EQ(f.routed[kB][1].header.kind, dg::PacketKind::handshake);
  EXPECT_TRUE(f.unknown.empty());

  // A NAT rebinding: the same dcid from a new source port still reaches A, and says from where.
  auto rebound = f.client();
  ASSERT_NE(rebound->local_endpoint(), client2->local_endpoint());
  send_one(*rebound, protected_packet(kA, 4));
  run_until(f.io, [&] { return f.routed[kA].size() >= 2; });
  ASSERT_EQ(f.routed[kA].size(), 2u);
  EXPECT_EQ(f.routed[kA][1].source, rebound->local_endpoint());
  EXPECT_EQ(f.demux->counters().routed.load(), 4u);
}

TEST(UdpDemux, UnknownConnectionIdHandshakeGoesToTheNewConnectionCallback) {
  DemuxFixture f;
  f.route(0xa1);
  f.demux->start();
  auto client = f.client();
  send_one(*client, handshake_packet(0x5eed, 0xc1, 9));
  // A protected packet cannot open a connection: nothing but a route could decrypt it.
  send_one(*client, protected_packet(0x5eed, 9));
  run_until(f.io, [&] { return f.total() >= 2; });
  ASSERT_EQ(f.unknown.size(), 1u);
  EXPECT_EQ(f.unknown[0].source, client->local_endpoint());
  EXPECT_EQ(f.unknown[0].header.dcid, 0x5eedu);
  EXPECT_EQ(f.unknown[0].header.scid, 0xc1u);
  EXPECT_EQ(f.unknown[0].bytes, handshake_packet(0x5eed, 0xc1, 9));
  EXPECT_EQ(f.demux->counters().new_connection.load(), 1u);
  EXPECT_EQ(f.demux->counters().unroutable.load(), 1u);
  EXPECT_TRUE(f.routed[0xa1].empty());
}

TEST(UdpDemux, MalformedDatagramsAreDroppedAndCounted) {
  DemuxFixture f;
  f.route(0xa1);
  f.demux->start();
  auto client = f.client();
  Buf unknown_kind = protected_packet(0xa1, 1);
  unknown_kind[0] = 0x7f;
  Buf short_protected = protected_packet(0xa1, 1);
  short_protected.resize(dg::kProtectedHeaderSize + dg::kTagSize - 1);  // no room for a tag
  const std::vector<Buf> bad = {Buf{}, Buf{0x01, 0, 0, 0, 0}, unknown_kind, short_protected,
                                Buf(dg::kHandshakeHeaderSize - 1, 0x01)};
  for (const Buf& b : bad)
    send_one(*client, b);
  send_one(*client, protected_packet(0xa1, 2));  // the healthy route still gets its packet
  run_until(f.io, [&] { return f.total() >= bad.size() + 1; });
  EXPECT_EQ(f.demux->counters().malformed.load(), bad.size());
  ASSERT_EQ(f.routed[0xa1].size(), 1u);
  EXPECT_EQ(f.routed[0xa1][0].bytes, protected_packet(0xa1, 2));
  EXPECT_TRUE(f.unknown.empty());
}

TEST(UdpDemux, RoutesAreBoundedAndUnique) {
  UdpDemuxOptions options;
  options.max_routes = 2;
  DemuxFixture f(options);
  auto noop = [](const ReceivedDatagram&, const dg::PacketHeader&) {};
  EXPECT_TRUE(f.demux->add_route(1, noop));
  EXPECT_FALSE(f.demux->add_route(1, noop)) << "a dcid routes to one path";
  EXPECT_TRUE(f.demux->add_route(2, noop));
  EXPECT_FALSE(f.demux->add_route(3, noop)) << "full";
  EXPECT_EQ(f.demux->route_count(), 2u);
  f.demux->remove_route(1);
  EXPECT_TRUE(f.demux->add_route(3, noop));
  EXPECT_EQ(f.demux->route_count(), 2u);
}

TEST(UdpDemux, RemovedRouteNoLongerReceives) {
  DemuxFixture f;
  f.route(0xa1);
  f.demux->start();
  auto client = f.client();
  send_one(*client, protected_packet(0xa1, 1));
  run_until(f.io, [&] { return f.routed[0xa1].size() >= 1; });
  f.demux->remove_route(0xa1);
  send_one(*client, protected_packet(0xa1, 2));
  run_until(f.io, [&] { return f.demux->counters().unroutable >= 1; });
  EXPECT_EQ(f.routed[0xa1].size(), 1u);
  EXPECT_EQ(f.demux->counters().unroutable.load(), 1u);
}

// Closing stops the reading loop: the socket (held by its pending wait) is released.
TEST(UdpDemux, ClosedOrDroppedDemuxReleasesItsSocket) {
  for (bool explicit_close : {true, false}) {
    asio::io_context io;
    auto demux = UdpDemux::open(io.get_executor(), kLoopback, nullptr);
    demux->start();
    io.run_for(20ms);  // the loop drained and is waiting
    std::weak_ptr<UdpSocket> socket = demux->socket().shared_from_this();
    if (explicit_close) demux->close();
    demux.reset();
    EXPECT_FALSE(socket.expired()) << "the pending wait still holds it";
    io.restart();
    io.poll();
    EXPECT_TRUE(socket.expired()) << (explicit_close ? "close()" : "dropped");
  }
}

// The server answers through the shared socket to the datagram's source.
TEST(UdpDemux, ServerSendsToAClientThroughTheSharedSocket) {
  DemuxFixture f;
  f.demux->start();
  auto client = f.client();
  const auto to = client->local_endpoint();
  const Buf reply = segments(3, 1200, 10);
  ASSERT_EQ(f.demux->socket().send(reply, 1200, &to).datagrams, 3u);
  std::vector<Buf> got;
  receive_until(*client, got, 3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[2], Buf(reply.end() - 10, reply.end()));
}

}  // namespace
}  // namespace rendr::carrier::udp
