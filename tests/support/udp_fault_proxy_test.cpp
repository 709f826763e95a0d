// Tests for the UDP fault proxy over real loopback UDP (plain POSIX sockets, bounded waits).
// Senders go in batches and wait for the proxy to have counted each batch, so the kernel never
// drops for lack of buffer and every difference between sent and received is the proxy's doing.
#include "support/udp_fault_proxy.hpp"

#include "support/udp_fault_pipeline.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace {

using namespace std::chrono_literals;
using rendr::testing::UdpFaultCounters;
using rendr::testing::UdpFaultPipeline;
using rendr::testing::UdpFaultProxy;
using rendr::testing::UdpFaults;
using Clock = std::chrono::steady_clock;

constexpr auto kDeadline = 5000ms;  // generous bound for "should happen"; only hit on failure
constexpr auto kQuiet = 200ms;      // bound for "must not happen"
constexpr std::size_t kBatch = 64;  // datagrams in flight before the sender waits for the proxy

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&&) = delete;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// A UDP socket on 127.0.0.1:<ephemeral> with a large receive buffer.
struct UdpEnd {
  UdpEnd() : fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    const int size = 4 * 1024 * 1024;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    sockaddr_in a = loopback(0);
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }

  void send(std::uint16_t to, std::uint32_t seq, std::size_t size = 64) const {
    std::vector<char> d(std::max(size, sizeof seq), '\0');
    std::memcpy(d.data(), &seq, sizeof seq);
    sockaddr_in a = loopback(to);
    ASSERT_EQ(::sendto(fd.get(), d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a),
              static_cast<ssize_t>(d.size()));
  }

  struct Got {
    std::uint32_t seq;
    std::size_t size;
    std::uint16_t from;  // source port
    Clock::time_point at;
  };

  std::optional<Got> recv(std::chrono::milliseconds timeout) const {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
    char buf[65536];
    sockaddr_in from{};
    socklen_t len = sizeof from;
    const ssize_t n = ::recvfrom(fd.get(), buf, sizeof buf, MSG_DONTWAIT,
                                 reinterpret_cast<sockaddr*>(&from), &len);
    if (n < static_cast<ssize_t>(sizeof(std::uint32_t))) return std::nullopt;
    Got g{0, static_cast<std::size_t>(n), ntohs(from.sin_port), Clock::now()};
    std::memcpy(&g.seq, buf, sizeof g.seq);
    return g;
  }

  // Everything already queued on the socket.
  void drain_into(std::vector<Got>& out) const {
    while (auto g = recv(0ms))
      out.push_back(*g);
  }

  Fd fd;
  std::uint16_t port = 0;
};

bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds timeout = kDeadline) {
  const auto deadline = Clock::now() + timeout;
  while (!cond()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(1ms);  // condition poll, bounded by deadline
  }
  return true;
}

class UdpFaultProxyTest : public ::testing::Test {
 protected:
  explicit UdpFaultProxyTest(std::uint64_t seed = 1)
      : proxy_(std::make_unique<UdpFaultProxy>("127.0.0.1", "127.0.0.1", server_.port, seed)) {}

  UdpFaultCounters up() const { return proxy_->counters_client_to_server(); }
  UdpFaultCounters down() const { return proxy_->counters_server_to_client(); }

  // Sends seqs [0, n) client -> server through the proxy in batches, collecting what the server
  // gets; returns once the proxy has nothing queued and the server has read all it forwarded.
  std::vector<UdpEnd::Got> send_up(std::uint32_t n, std::size_t size = 64) {
    std::vector<UdpEnd::Got> got;
    const std::uint64_t base = up().received;
    for (std::uint32_t i = 0; i < n; ++i) {
      client_.send(proxy_->port(), i, size);
      if ((i + 1) % kBatch == 0 || i + 1 == n) {
        EXPECT_TRUE(wait_until([&] { return up().received == base + i + 1; }));
        server_.drain_into(got);
      }
    }
    EXPECT_TRUE(wait_until([&] {
      server_.drain_into(got);
      return proxy_->bytes_queued() == 0 && got.size() == up().forwarded;
    }));
    return got;
  }

  // One datagram each way; returns the source port the server saw.
  std::uint16_t round_trip(std::uint32_t seq) {
    client_.send(proxy_->port(), seq);
    const auto at_server = server_.recv(kDeadline);
    EXPECT_TRUE(at_server);
    if (!at_server) return 0;
    EXPECT_EQ(at_server->seq, seq);
    server_.send(at_server->from, seq + 1000);
    const auto at_client = client_.recv(kDeadline);
    EXPECT_TRUE(at_client);
    if (at_client) {
      EXPECT_EQ(at_client->seq, seq + 1000);
      EXPECT_EQ(at_client->from, proxy_->port());
    }
    return at_server->from;
  }

  UdpEnd server_;
  UdpEnd client_;
  std::unique_ptr<UdpFaultProxy> proxy_;
};

TEST_F(UdpFaultProxyTest, RelaysBothWaysLikeANatWithOneUpstreamPortPerClient) {
  const std::uint16_t first = round_trip(1);
  EXPECT_NE(first, 0);
  EXPECT_NE(first, proxy_->port());
  EXPECT_EQ(round_trip(2), first);  // same client, same session

  UdpEnd other;
  other.send(proxy_->port(), 7);
  const auto g = server_.recv(kDeadline);
  ASSERT_TRUE(g);
  EXPECT_NE(g->from, first);  // its own upstream socket
  server_.send(g->from, 77);
  const auto back = other.recv(kDeadline);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->seq, 77u);
  EXPECT_FALSE(client_.recv(kQuiet));  // the reply went to its client only
  EXPECT_EQ(proxy_->sessions(), 2u);
  EXPECT_EQ(up().forwarded, 3u);
  EXPECT_EQ(down().forwarded, 3u);
}

std::set<std::uint32_t> seqs_of(const std::vector<UdpEnd::Got>& got) {
  std::set<std::uint32_t> s;
  for (const auto& g : got)
    s.insert(g.seq);
  return s;
}

TEST_F(UdpFaultProxyTest, TenPercentLossOverTenThousandDatagramsIsSeededAndReproducible) {
  UdpFaults lossy;
  lossy.loss = 0.1;
  proxy_->set_faults(lossy, {});
  const auto got = send_up(10'000);
  const auto c = up();
  EXPECT_EQ(c.received, 10'000u);
  EXPECT_EQ(c.forwarded + c.dropped, 10'000u);
  EXPECT_EQ(got.size(), c.forwarded);
  EXPECT_NEAR(static_cast<double>(c.dropped), 1000.0, 150.0);  // 5 standard deviations

  // A second proxy with the same seed drops exactly the same datagrams.
  UdpEnd other_server;
  UdpFaultProxy twin("127.0.0.1", "127.0.0.1", other_server.port, 1);
  twin.set_faults(lossy, {});
  std::vector<UdpEnd::Got> twin_got;
  UdpEnd twin_client;
  for (std::uint32_t i = 0; i < 10'000; ++i) {
    twin_client.send(twin.port(), i);
    if ((i + 1) % kBatch == 0) {
      ASSERT_TRUE(wait_until([&] { return twin.counters_client_to_server().received == i + 1; }));
      other_server.drain_into(twin_got);
    }
  }
  ASSERT_TRUE(wait_until([&] {
    other_server.drain_into(twin_got);
    return twin.counters_client_to_server().received == 10'000 &&
           twin_got.size() == twin.counters_client_to_server().forwarded;
  }));
  EXPECT_EQ(seqs_of(twin_got), seqs_of(got));
}

TEST_F(UdpFaultProxyTest, DuplicatesAreCountedAndArrive) {
  UdpFaults dup;
  dup.duplicate = 0.2;
  proxy_->set_faults(dup, {});
  const auto got = send_up(2000);
  std::map<std::uint32_t, int> copies;
  for (const auto& g : got)
    ++copies[g.seq];
  std::uint64_t twice = 0;
  for (const auto& [seq, n] : copies) {
    EXPECT_LE(n, 2);
    twice += n == 2 ? 1 : 0;
  }
  EXPECT_EQ(copies.size(), 2000u);  // nothing lost
  EXPECT_EQ(twice, up().duplicated);
  EXPECT_EQ(got.size(), 2000u + up().duplicated);
  EXPECT_NEAR(static_cast<double>(twice), 400.0, 90.0);
}

TEST_F(UdpFaultProxyTest, ReorderingShowsAsLateSequenceNumbers) {
  UdpFaults shuffle;
  shuffle.reorder = 0.1;
  shuffle.reorder_gap = 3;
  proxy_->set_faults(shuffle, {});
  const auto got = send_up(2000);
  ASSERT_EQ(got.size(), 2000u);  // reordering loses nothing
  EXPECT_EQ(seqs_of(got).size(), 2000u);
  std::uint64_t late = 0;
  std::uint32_t highest = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (i > 0 && got[i].seq < highest) ++late;
    highest = std::max(highest, got[i].seq);
  }
  EXPECT_GT(late, 100u);
  EXPECT_LE(late, up().reordered);
  EXPECT_NEAR(static_cast<double>(up().reordered), 200.0, 70.0);
}

TEST_F(UdpFaultProxyTest, DelayIsAtLeastWhatIsConfiguredEachWay) {
  UdpFaults slow;
  slow.delay = 30ms;
  slow.jitter = 10ms;
  proxy_->set_faults(slow, slow);
  for (std::uint32_t i = 0; i < 5; ++i) {
    const auto sent = Clock::now();
    client_.send(proxy_->port(), i);
    const auto g = server_.recv(kDeadline);
    ASSERT_TRUE(g);
    EXPECT_GE(g->at - sent, 30ms);
    const auto sent_back = Clock::now();
    server_.send(g->from, i);
    const auto back = client_.recv(kDeadline);
    ASSERT_TRUE(back);
    EXPECT_GE(back->at - sent_back, 30ms);
  }
  EXPECT_EQ(up().delayed, 5u);
  EXPECT_EQ(down().delayed, 5u);
}

TEST_F(UdpFaultProxyTest, BlackholeOneDirectionPassesTheOther) {
  const std::uint16_t upstream = round_trip(1);
  UdpFaults dark;
  dark.blackhole = true;

  proxy_->set_faults(dark, {});  // client -> server dark
  client_.send(proxy_->port(), 2);
  server_.send(upstream, 3);
  const auto back = client_.recv(kDeadline);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->seq, 3u);
  EXPECT_FALSE(server_.recv(kQuiet));
  EXPECT_EQ(up().dropped, 1u);

  proxy_->set_faults({}, dark);  // server -> client dark
  server_.send(upstream, 4);
  client_.send(proxy_->port(), 5);
  const auto there = server_.recv(kDeadline);
  ASSERT_TRUE(there);
  EXPECT_EQ(there->seq, 5u);
  EXPECT_FALSE(client_.recv(kQuiet));
  EXPECT_EQ(down().dropped, 1u);

  proxy_->set_faults(dark, dark);  // both
  client_.send(proxy_->port(), 6);
  server_.send(upstream, 7);
  EXPECT_FALSE(server_.recv(kQuiet));
  EXPECT_FALSE(client_.recv(0ms));

  proxy_->set_faults({}, {});  // and back
  EXPECT_EQ(round_trip(8), upstream);
}

TEST_F(UdpFaultProxyTest, RateLimitBoundsThroughputAndQueue) {
  constexpr std::uint64_t kRate = 1'000'000;  // bytes/s
  constexpr std::size_t kSize = 1000;
  UdpFaults narrow;
  narrow.rate_bytes_per_sec = kRate;
  narrow.queue_limit_bytes = 100 * kSize;  // 100 ms at the rate: a late sender thread is absorbed
  proxy_->set_faults(narrow, {});
  const auto start = Clock::now();
  std::vector<UdpEnd::Got> got;
  std::uint64_t max_queued = 0;
  auto watch = [&] {
    max_queued = std::max(max_queued, proxy_->bytes_queued());
    server_.drain_into(got);
  };

  // Keep the queue nearly full without overfilling it: the link should then never idle.
  constexpr std::uint32_t kFed = 600;
  const auto deadline = start + 10s;
  for (std::uint32_t sent = 0; sent < kFed && Clock::now() < deadline;) {
    const std::uint64_t in_flight = (sent - up().received) * kSize + proxy_->bytes_queued();
    if (in_flight + kSize <= narrow.queue_limit_bytes) {
      client_.send(proxy_->port(), sent++, kSize);
    } else {
      std::this_thread::sleep_for(1ms);  // condition poll, bounded by deadline
    }
    watch();
  }
  ASSERT_TRUE(wait_until([&] {
    watch();
    return up().received == kFed && proxy_->bytes_queued() == 0 && got.size() == up().forwarded;
  }));
  const double fed_seconds = std::chrono::duration<double>(got.back().at - start).count();
  const std::size_t fed_bytes = got.size() * kSize;
  EXPECT_GE(static_cast<double>(fed_bytes) / fed_seconds, 0.5 * kRate);  // the link is used

  // Then three queues' worth at once: the excess is dropped, the queue stays within its limit.
  for (std::uint32_t i = 0; i < 300; ++i) {
    client_.send(proxy_->port(), kFed + i, kSize);
    watch();
  }
  ASSERT_TRUE(wait_until([&] {
    watch();
    return up().received == kFed + 300 && proxy_->bytes_queued() == 0 &&
           got.size() == up().forwarded;
  }));
  EXPECT_GT(up().overflowed, 100u);
  EXPECT_LE(max_queued, narrow.queue_limit_bytes);

  // Never more than the bucket's depth (plus the datagram that takes it into debt) and the rate
  // since `start`, at any arrival.
  std::size_t bytes = 0;
  for (const auto& g : got) {
    bytes += g.size;
    const double allowed = static_cast<double>(UdpFaultPipeline::kBurstBytes + kSize) +
                           std::chrono::duration<double>(g.at - start).count() * kRate;
    ASSERT_LE(static_cast<double>(bytes), allowed);
  }
}

TEST_F(UdpFaultProxyTest, RebindingShowsANewSourcePortAndRepliesStillReachTheClient) {
  const std::uint16_t before = round_trip(1);
  proxy_->rebind_source_ports();
  EXPECT_EQ(proxy_->rebinds(), 1u);
  const std::uint16_t after = round_trip(2);  // also checks the reply reaches the client
  EXPECT_NE(after, before);
  EXPECT_NE(after, 0);
  EXPECT_EQ(proxy_->sessions(), 1u);  // same client, same session

  server_.send(before, 3);  // the old port is gone, as after a real NAT rebinding
  EXPECT_FALSE(client_.recv(kQuiet));
  EXPECT_EQ(round_trip(4), after);
}

TEST_F(UdpFaultProxyTest, SessionsAreCapped) {
  std::vector<std::unique_ptr<UdpEnd>> clients;
  for (std::size_t i = 0; i < UdpFaultProxy::kMaxSessions + 4; ++i) {
    clients.push_back(std::make_unique<UdpEnd>());
    clients.back()->send(proxy_->port(), static_cast<std::uint32_t>(i));
    if (clients.size() % kBatch == 0) {
      ASSERT_TRUE(wait_until([&] { return up().received == clients.size(); }));
    }
  }
  ASSERT_TRUE(wait_until([&] { return up().received == clients.size(); }));
  EXPECT_EQ(proxy_->sessions(), UdpFaultProxy::kMaxSessions);
  EXPECT_EQ(up().dropped, 4u);
}

TEST_F(UdpFaultProxyTest, QueuedBytesAreCappedAcrossSessions) {
  UdpFaults stuck;
  stuck.delay = 10s;
  proxy_->set_faults(stuck, stuck);
  constexpr std::size_t kSize = 60'000;
  constexpr std::uint32_t kPerClient = 350;  // 21 MB each: past one session's 16 MiB cap
  std::vector<std::unique_ptr<UdpEnd>> clients;
  std::uint64_t sent = 0;
  for (int c = 0; c < 3; ++c) {
    clients.push_back(std::make_unique<UdpEnd>());
    for (std::uint32_t i = 0; i < kPerClient; ++i) {
      clients.back()->send(proxy_->port(), i, kSize);
      if (++sent % 32 == 0) {
        ASSERT_TRUE(wait_until([&] { return up().received == sent; }));
      }
    }
  }
  ASSERT_TRUE(wait_until([&] { return up().received == sent; }));
  EXPECT_LE(proxy_->bytes_queued(), UdpFaultProxy::kMaxQueuedBytes);
  EXPECT_GT(proxy_->bytes_queued(), UdpFaultProxy::kMaxQueuedBytes - kSize);  // it was the cap
  EXPECT_EQ(up().dropped, sent - proxy_->bytes_queued() / kSize);
  EXPECT_FALSE(server_.recv(0ms));
}

TEST_F(UdpFaultProxyTest, DestructorReturnsPromptlyWithQueuedDatagrams) {
  UdpFaults stuck;
  stuck.delay = 10s;
  proxy_->set_faults(stuck, stuck);
  for (std::uint32_t i = 0; i < 100; ++i)
    client_.send(proxy_->port(), i);
  ASSERT_TRUE(wait_until([&] { return up().received == 100; }));
  EXPECT_GT(proxy_->bytes_queued(), 0u);
  const auto t = Clock::now();
  proxy_.reset();
  EXPECT_LT(Clock::now() - t, 1s);
  EXPECT_FALSE(server_.recv(kQuiet));
}

}  // namespace
