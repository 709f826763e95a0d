// Tests for the fault proxy over real loopback sockets (plain POSIX sockets, bounded waits).
#include "support/fault_proxy.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace {

using namespace std::chrono_literals;
using rendr::testing::FaultMode;
using rendr::testing::FaultProxy;
using rendr::testing::Shaping;
using Clock = std::chrono::steady_clock;

constexpr auto kDeadline = 5s;  // generous bound for "should happen"; only hit on failure
constexpr auto kQuiet = 200ms;  // bound for "must not happen"

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

int ms_left(Clock::time_point deadline) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::max<std::int64_t>(0, left.count()));
}

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// Bound (and, if `listening`, listening) TCP socket on 127.0.0.1:<ephemeral>.
Fd make_listener(std::uint16_t& port, bool listening = true) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return fd;
  sockaddr_in a = loopback(0);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return Fd();
  if (listening && ::listen(fd.get(), 64) != 0) return Fd();
  socklen_t len = sizeof a;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return fd;
}

Fd accept_within(int lfd, std::chrono::milliseconds timeout) {
  pollfd p{lfd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return Fd();
  return Fd(::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC));
}

Fd connect_to(std::uint16_t port) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a = loopback(port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return Fd();
  return fd;
}

bool send_all(int fd, const char* data, std::size_t n, Clock::time_point deadline) {
  while (n > 0) {
    const ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) {
      data += w;
      n -= static_cast<std::size_t>(w);
      continue;
    }
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, ms_left(deadline)) == 0) return false;
  }
  return true;
}

bool send_str(int fd, const std::string& s) {
  return send_all(fd, s.data(), s.size(), Clock::now() + kDeadline);
}

// Receives up to n bytes until the deadline, EOF or an error; returns how many arrived. Calls
// on_progress after each recv.
std::size_t recv_upto(int fd, char* out, std::size_t n, Clock::time_point deadline,
                      const std::function<void()>& on_progress = {}) {
  std::size_t got = 0;
  while (got < n) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, ms_left(deadline)) == 0) break;
    const ssize_t r = ::recv(fd, out + got, n - got, MSG_DONTWAIT);
    if (r == 0) break;
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
      break;
    }
    got += static_cast<std::size_t>(r);
    if (on_progress) on_progress();
  }
  return got;
}

// Receives exactly n bytes (false on EOF, error or deadline).
bool recv_exact(int fd, char* out, std::size_t n, Clock::time_point deadline,
                const std::function<void()>& on_progress = {}) {
  return recv_upto(fd, out, n, deadline, on_progress) == n;
}

std::optional<std::string> recv_str(int fd, std::size_t n) {
  std::string s(n, '\0');
  if (!recv_exact(fd, s.data(), n, Clock::now() + kDeadline)) return std::nullopt;
  return s;
}

struct ReadResult {
  bool timed_out = false;
  ssize_t n = 0;  // > 0 data, 0 EOF, < 0 error (err)
  int err = 0;
};

ReadResult read_once(int fd, std::chrono::milliseconds timeout) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) == 0) return {true, 0, 0};
  char buf[4096];
  ReadResult r;
  r.n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  r.err = r.n < 0 ? errno : 0;
  return r;
}

// True if none of fds becomes readable (data, EOF or error) within `quiet`.
bool stays_quiet(std::vector<int> fds, std::chrono::milliseconds quiet) {
  std::vector<pollfd> ps;
  for (int fd : fds)
    ps.push_back(pollfd{fd, POLLIN, 0});
  return ::poll(ps.data(), ps.size(), static_cast<int>(quiet.count())) == 0;
}

// Socket is open: no pending data, EOF, hang-up or error.
bool looks_open(int fd) {
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  return ::poll(&p, 1, 0) == 0;
}

bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds timeout = 5000ms) {
  const auto deadline = Clock::now() + timeout;
  while (!cond()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(1ms);  // condition poll, bounded by deadline
  }
  return true;
}

std::vector<char> pattern(std::size_t n, std::uint32_t seed) {
  std::vector<char> v(n);
  std::mt19937 rng(seed);
  for (auto& c : v)
    c = static_cast<char>(rng());
  return v;
}

struct Pair {
  Fd client;  // connected to the proxy
  Fd server;  // accepted by the upstream listener
};

class FaultProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    listener_ = make_listener(upstream_port_);
    ASSERT_TRUE(listener_.valid());
    proxy_ = std::make_unique<FaultProxy>("127.0.0.1", "127.0.0.1", upstream_port_);
    ASSERT_NE(proxy_->port(), 0);
  }

  Pair open_pair() {
    Pair p;
    p.client = connect_to(proxy_->port());
    EXPECT_TRUE(p.client.valid());
    p.server = accept_within(listener_.get(), kDeadline);
    EXPECT_TRUE(p.server.valid());
    return p;
  }

  // Proves the pair forwards both ways right now.
  void expect_relays(const Pair& p, const std::string& tag) {
    ASSERT_TRUE(send_str(p.client.get(), "c>" + tag));
    EXPECT_EQ(recv_str(p.server.get(), tag.size() + 2), "c>" + tag);
    ASSERT_TRUE(send_str(p.server.get(), "s>" + tag));
    EXPECT_EQ(recv_str(p.client.get(), tag.size() + 2), "s>" + tag);
  }

  std::uint16_t upstream_port_ = 0;
  Fd listener_;
  std::unique_ptr<FaultProxy> proxy_;
};

TEST_F(FaultProxyTest, PassRelaysFourMiBBothWaysAndPropagatesHalfClose) {
  Pair p = open_pair();
  constexpr std::size_t kSize = 4 * 1024 * 1024;
  const auto up = pattern(kSize, 1);
  const auto down = pattern(kSize, 2);
  const auto deadline = Clock::now() + kDeadline;

  auto send_up = std::async(std::launch::async,
                            [&] { return send_all(p.client.get(), up.data(), kSize, deadline); });
  auto send_down = std::async(
      std::launch::async, [&] { return send_all(p.server.get(), down.data(), kSize, deadline); });
  std::vector<char> got_down(kSize);
  auto recv_down = std::async(std::launch::async, [&] {
    return recv_exact(p.client.get(), got_down.data(), kSize, deadline);
  });
  std::vector<char> got_up(kSize);
  EXPECT_TRUE(recv_exact(p.server.get(), got_up.data(), kSize, deadline));
  EXPECT_TRUE(recv_down.get());
  EXPECT_TRUE(send_up.get());
  EXPECT_TRUE(send_down.get());
  EXPECT_TRUE(got_up == up);
  EXPECT_TRUE(got_down == down);
  EXPECT_TRUE(wait_until([&] { return proxy_->bytes_forwarded() == 2 * kSize; }));
  EXPECT_EQ(proxy_->bytes_discarded(), 0u);
  EXPECT_EQ(proxy_->connections_accepted(), 1u);
  EXPECT_EQ(proxy_->live_connections(), 1u);

  // Half-close: client EOF reaches the server, server can still talk back.
  ASSERT_EQ(::shutdown(p.client.get(), SHUT_WR), 0);
  ReadResult r = read_once(p.server.get(), kDeadline);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.n, 0);  // EOF
  ASSERT_TRUE(send_str(p.server.get(), "after-half-close"));
  EXPECT_EQ(recv_str(p.client.get(), 16), "after-half-close");
  ASSERT_EQ(::shutdown(p.server.get(), SHUT_WR), 0);
  r = read_once(p.client.get(), kDeadline);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.n, 0);
  EXPECT_TRUE(wait_until([&] { return proxy_->live_connections() == 0; }));
}

TEST_F(FaultProxyTest, BlackholeDiscardsBothWaysAndKeepsSocketsOpen) {
  Pair p = open_pair();
  expect_relays(p, "before");
  // The counter is bumped when the proxy's write completes, which may be after the peer read.
  ASSERT_TRUE(wait_until([&] { return proxy_->bytes_forwarded() == 16; }));
  const auto forwarded_before = proxy_->bytes_forwarded();

  proxy_->set_mode(FaultMode::blackhole);
  EXPECT_EQ(proxy_->mode(), FaultMode::blackhole);
  ASSERT_TRUE(send_str(p.client.get(), "lost-up"));     // 7 bytes
  ASSERT_TRUE(send_str(p.server.get(), "lost-down!"));  // 10 bytes
  EXPECT_TRUE(stays_quiet({p.client.get(), p.server.get()}, kQuiet));
  EXPECT_TRUE(looks_open(p.client.get()));
  EXPECT_TRUE(looks_open(p.server.get()));
  EXPECT_TRUE(wait_until([&] { return proxy_->bytes_discarded() == 17; }));
  EXPECT_EQ(proxy_->bytes_forwarded(), forwarded_before);
  EXPECT_EQ(proxy_->live_connections(), 1u);

  // Back to pass: the blackholed connection stays blackholed (its stream lost bytes) ...
  proxy_->set_mode(FaultMode::pass);
  ASSERT_TRUE(send_str(p.client.get(), "still-lost"));
  EXPECT_TRUE(stays_quiet({p.server.get()}, kQuiet));
  EXPECT_TRUE(looks_open(p.client.get()));
  // ... while a new connection forwards.
  Pair q = open_pair();
  expect_relays(q, "fresh");
  EXPECT_EQ(proxy_->live_connections(), 2u);
}

TEST_F(FaultProxyTest, ConnectionAcceptedWhileBlackholedIsSwallowed) {
  proxy_->set_mode(FaultMode::blackhole);
  Fd client = connect_to(proxy_->port());
  ASSERT_TRUE(client.valid());
  ASSERT_TRUE(send_str(client.get(), "into-the-void"));  // 13 bytes
  // Documented choice: no upstream connection is made for it.
  EXPECT_TRUE(stays_quiet({listener_.get(), client.get()}, kQuiet));
  EXPECT_TRUE(wait_until([&] { return proxy_->bytes_discarded() == 13; }));
  EXPECT_TRUE(looks_open(client.get()));
  EXPECT_EQ(proxy_->connections_accepted(), 1u);
  EXPECT_EQ(proxy_->live_connections(), 1u);
  // The client going away frees the connection.
  client.reset();
  EXPECT_TRUE(wait_until([&] { return proxy_->live_connections() == 0; }));
}

TEST_F(FaultProxyTest, ResetAbortsLiveConnectionsOnBothSides) {
  Pair p = open_pair();
  expect_relays(p, "x");
  proxy_->set_mode(FaultMode::reset);
  EXPECT_EQ(proxy_->mode(), FaultMode::reset);
  ReadResult rc = read_once(p.client.get(), kDeadline);
  EXPECT_FALSE(rc.timed_out);
  EXPECT_LT(rc.n, 0);
  EXPECT_EQ(rc.err, ECONNRESET) << std::strerror(rc.err);
  ReadResult rs = read_once(p.server.get(), kDeadline);
  EXPECT_FALSE(rs.timed_out);
  EXPECT_LT(rs.n, 0);
  EXPECT_EQ(rs.err, ECONNRESET) << std::strerror(rs.err);
  EXPECT_EQ(proxy_->live_connections(), 0u);
}

TEST_F(FaultProxyTest, NewConnectionInResetModeIsReset) {
  proxy_->set_mode(FaultMode::reset);
  Fd client = connect_to(proxy_->port());
  ASSERT_TRUE(client.valid());
  ReadResult r = read_once(client.get(), kDeadline);
  EXPECT_FALSE(r.timed_out);
  EXPECT_LT(r.n, 0);
  EXPECT_EQ(r.err, ECONNRESET) << std::strerror(r.err);
  EXPECT_TRUE(wait_until([&] { return proxy_->connections_accepted() == 1; }));
  EXPECT_EQ(proxy_->live_connections(), 0u);

  // And pass mode works again afterwards.
  proxy_->set_mode(FaultMode::pass);
  Pair p = open_pair();
  expect_relays(p, "again");
}

TEST_F(FaultProxyTest, DelayAddsLatencyEachWay) {
  proxy_->set_shaping(Shaping{20ms, 0us, 0}, Shaping{20ms, 0us, 0});
  EXPECT_EQ(proxy_->shaping_client_to_server().delay, 20ms);
  Pair p = open_pair();
  char b = 'x';
  const auto t0 = Clock::now();
  ASSERT_TRUE(send_all(p.client.get(), &b, 1, t0 + kDeadline));
  ASSERT_TRUE(recv_exact(p.server.get(), &b, 1, t0 + kDeadline));
  const auto one_way = Clock::now() - t0;
  ASSERT_TRUE(send_all(p.server.get(), &b, 1, t0 + kDeadline));
  ASSERT_TRUE(recv_exact(p.client.get(), &b, 1, t0 + kDeadline));
  const auto rtt = Clock::now() - t0;
  EXPECT_GE(one_way, 20ms);
  EXPECT_GE(rtt, 40ms);
}

TEST_F(FaultProxyTest, JitterNeverReorders) {
  proxy_->set_shaping(Shaping{500us, 3ms, 0}, Shaping{500us, 3ms, 0});
  Pair p = open_pair();
  constexpr std::size_t kSize = 512 * 1024;
  const auto data = pattern(kSize, 3);
  const auto deadline = Clock::now() + kDeadline;
  auto sender = std::async(std::launch::async, [&] {
    for (std::size_t off = 0; off < kSize; off += 1000) {  // many small writes -> many chunks
      if (!send_all(p.client.get(), data.data() + off, std::min<std::size_t>(1000, kSize - off),
                    deadline)) {
        return false;
      }
    }
    return true;
  });
  std::vector<char> got(kSize);
  EXPECT_TRUE(recv_exact(p.server.get(), got.data(), kSize, deadline));
  EXPECT_TRUE(sender.get());
  EXPECT_TRUE(got == data);
}

TEST_F(FaultProxyTest, RateLimitPacesThroughputWithBoundedBuffering) {
  constexpr std::uint64_t kRate = 40'000'000;  // 40 Mbit/s = 5 MB/s
  proxy_->set_shaping(Shaping{0us, 0us, kRate}, Shaping{});
  Pair p = open_pair();
  constexpr std::size_t kSize = 2 * 1024 * 1024;
  const auto data = pattern(kSize, 4);
  const auto t0 = Clock::now();
  const auto deadline = t0 + kDeadline;
  auto sender = std::async(std::launch::async,
                           [&] { return send_all(p.client.get(), data.data(), kSize, deadline); });
  std::vector<char> got(kSize);
  std::uint64_t max_queued = 0;
  EXPECT_TRUE(recv_exact(p.server.get(), got.data(), kSize, deadline,
                         [&] { max_queued = std::max(max_queued, proxy_->bytes_queued()); }));
  const auto elapsed = Clock::now() - t0;
  EXPECT_TRUE(sender.get());
  EXPECT_TRUE(got == data);
  EXPECT_GE(elapsed, 350ms);  // ideal 2 MiB / 5 MB/s = 0.42 s (minus one burst)
  // No delay configured: the proxy holds at most the base buffer for this direction.
  EXPECT_LE(max_queued, FaultProxy::kBaseBufferBytes);
}

TEST_F(FaultProxyTest, ShapingChangeAppliesToLiveConnections) {
  // 8 kbit/s: the bucket lets its depth through less at most one piece (the pieces follow the
  // proxy's reads, so the last one may not fit), then the next piece waits ~16 s ...
  proxy_->set_shaping(Shaping{0us, 0us, 8000}, Shaping{});
  Pair p = open_pair();
  constexpr std::size_t kSize = FaultProxy::kBurstBytes + 32 * 1024;
  const auto data = pattern(kSize, 5);
  ASSERT_TRUE(send_all(p.client.get(), data.data(), kSize, Clock::now() + kDeadline));
  std::vector<char> got(kSize);
  constexpr std::size_t kSurelyThrough = FaultProxy::kBurstBytes - FaultProxy::kPaceBytes;
  ASSERT_TRUE(recv_exact(p.server.get(), got.data(), kSurelyThrough, Clock::now() + kDeadline));
  std::size_t received = kSurelyThrough;
  received +=
      recv_upto(p.server.get(), got.data() + received, kSize - received, Clock::now() + 100ms);
  EXPECT_LT(received, FaultProxy::kBurstBytes + FaultProxy::kPaceBytes);  // held back (16 s)
  // ... until the limit is lifted, which cuts the pending wait short.
  proxy_->set_shaping(Shaping{}, Shaping{});
  ASSERT_TRUE(recv_exact(p.server.get(), got.data() + received, kSize - received,
                         Clock::now() + kDeadline));
  EXPECT_TRUE(got == data);
}

TEST_F(FaultProxyTest, StalledReceiverBoundsProxyBuffering) {
  Pair p = open_pair();
  ASSERT_EQ(::fcntl(p.client.get(), F_SETFL, O_NONBLOCK), 0);
  constexpr std::size_t kLimit = 256 * 1024 * 1024;  // far above all kernel buffers together
  const std::vector<char> block(64 * 1024, 'z');
  std::size_t total = 0;
  while (total < kLimit) {
    const ssize_t w = ::send(p.client.get(), block.data(), block.size(), MSG_NOSIGNAL);
    if (w > 0) {
      total += static_cast<std::size_t>(w);
      continue;
    }
    ASSERT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK) << std::strerror(errno);
    pollfd pf{p.client.get(), POLLOUT, 0};
    if (::poll(&pf, 1, 150) == 0) break;  // the whole path is full and stays full
  }
  EXPECT_LT(total, kLimit);
  EXPECT_LE(proxy_->bytes_queued(), FaultProxy::kBaseBufferBytes);
  EXPECT_EQ(proxy_->live_connections(), 1u);
}

TEST_F(FaultProxyTest, UnreachableUpstreamResetsClient) {
  std::uint16_t dead_port = 0;
  Fd dead = make_listener(dead_port, /*listening=*/false);  // bound, never listens -> refused
  ASSERT_TRUE(dead.valid());
  FaultProxy proxy("127.0.0.1", "127.0.0.1", dead_port);
  Fd client = connect_to(proxy.port());
  ASSERT_TRUE(client.valid());
  ReadResult r = read_once(client.get(), kDeadline);
  EXPECT_FALSE(r.timed_out);
  EXPECT_LT(r.n, 0);
  EXPECT_EQ(r.err, ECONNRESET) << std::strerror(r.err);
  EXPECT_TRUE(wait_until([&] { return proxy.live_connections() == 0; }));
}

TEST_F(FaultProxyTest, DestructorReturnsPromptlyWithLiveConnections) {
  Pair idle = open_pair();
  expect_relays(idle, "idle");
  Pair stalled = open_pair();  // server never reads: proxy has a write stuck
  {
    const std::vector<char> block(1024 * 1024, 's');
    ASSERT_EQ(::fcntl(stalled.client.get(), F_SETFL, O_NONBLOCK), 0);
    for (int i = 0; i < 64; ++i) {
      if (::send(stalled.client.get(), block.data(), block.size(), MSG_NOSIGNAL) <= 0) break;
    }
  }
  proxy_->set_shaping(Shaping{2s, 0us, 0}, Shaping{2s, 0us, 0});
  Pair delayed = open_pair();  // bytes sitting in the delay line, timer pending
  ASSERT_TRUE(send_str(delayed.client.get(), "in-the-delay-line"));
  ASSERT_TRUE(wait_until([&] { return proxy_->bytes_queued() >= 17; }));
  Pair limbo = open_pair();
  proxy_->set_mode(FaultMode::blackhole);  // limbo and the others now blackholed
  Fd swallowed = connect_to(proxy_->port());
  ASSERT_TRUE(wait_until([&] { return proxy_->live_connections() == 5; }));

  const auto t0 = Clock::now();
  proxy_.reset();
  EXPECT_LT(Clock::now() - t0, 2s);  // generous: only catches a hang

  // Everything the proxy held is closed now (EOF or reset, not silence).
  for (int fd : {idle.client.get(), idle.server.get(), delayed.client.get(), limbo.server.get(),
                 swallowed.get()}) {
    ReadResult r = read_once(fd, kDeadline);
    EXPECT_FALSE(r.timed_out) << "fd " << fd;
    EXPECT_LE(r.n, 0) << "fd " << fd;
  }
}

}  // namespace
