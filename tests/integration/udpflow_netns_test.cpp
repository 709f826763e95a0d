// udpflow in a network namespace whose loopback has a small link MTU (1300 bytes): both ends
// look the route up, so path-MTU probing tops out at what the link carries (1272 bytes of UDP
// payload, not the default 8952; the kernel would refuse anything larger with EMSGSIZE, DF
// being always set) and settles at or under it, with no error and the streams intact. Needs
// CAP_SYS_ADMIN for unshare(CLONE_NEWNET); skipped, with the reason, where namespaces are
// unavailable.
#include "harness.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace rendr::itest {
namespace {

// Moves the calling thread into a fresh network namespace whose loopback is up with `mtu`, and
// back when destroyed. Threads it starts meanwhile (the test's engines) are born in it. The
// namespace has no name: the kernel frees it with its last thread and socket, whatever happens
// to the test, so there is nothing to clean up beyond returning the thread.
class LoopbackNamespace {
 public:
  explicit LoopbackNamespace(int mtu) {
    original_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (original_ < 0) {
      reason_ = std::string("open /proc/thread-self/ns/net: ") + std::strerror(errno);
      return;
    }
    if (::unshare(CLONE_NEWNET) != 0) {
      reason_ = std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno) +
                " (network namespaces need CAP_SYS_ADMIN)";
      return;
    }
    entered_ = true;
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    ifr.ifr_mtu = mtu;
    const bool mtu_set = fd >= 0 && ::ioctl(fd, SIOCSIFMTU, &ifr) == 0;
    const bool flags_read = mtu_set && ::ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    ready_ = flags_read && ::ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
    if (!ready_) reason_ = std::string("configuring lo: ") + std::strerror(errno);
    if (fd >= 0) ::close(fd);
  }
  ~LoopbackNamespace() {
    if (entered_) (void)::setns(original_, CLONE_NEWNET);
    if (original_ >= 0) ::close(original_);
  }
  LoopbackNamespace(const LoopbackNamespace&) = delete;
  LoopbackNamespace& operator=(const LoopbackNamespace&) = delete;

  bool ready() const { return ready_; }
  const std::string& reason() const { return reason_; }

 private:
  int original_ = -1;
  bool entered_ = false;
  bool ready_ = false;
  std::string reason_;
};

constexpr int kLinkMtu = 1300;
// What a datagram may carry on that link: the MTU less the IPv4 (20) and UDP (8) headers.
constexpr std::uint64_t kLinkPayload = kLinkMtu - 20 - 8;

// The namespace comes first, so that the fixture's engines start their threads inside it.
struct InLoopbackNamespace {
  LoopbackNamespace netns{kLinkMtu};
};

class UdpflowNetnsTest : protected InLoopbackNamespace, public IntegrationTest {};

TEST_F(UdpflowNetnsTest, MtuSettlesUnderASmallLinkMtuWithoutAnError) {
  if (!netns.ready()) GTEST_SKIP() << netns.reason();
  listen();
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_EQ(listener_.listen_udpflow("127.0.0.1:0"), std::error_code{});
  Conn client;
  Conn server;
  ASSERT_TRUE(connect_all_paths(
      dialer({PathSpec::parse("udpflow://" + loopback(listener_.udpflow_port()))}), client,
      server));
  StreamWriter upload(client, {.seed = 50, .bytes = std::nullopt});
  StreamReader reader(server, {.seed = 50});
  StreamWriter download(server, {.seed = 51, .bytes = std::nullopt});
  StreamReader download_reader(client, {.seed = 51});
  const auto path = [](const Conn& c) { return c.stats().paths.at(0); };
  // The search ends within its precision (20 bytes) of what the link carries.
  const auto settled = [&] {
    return path(client).mtu + 20 >= kLinkPayload && path(server).mtu + 20 >= kLinkPayload;
  };
  EXPECT_TRUE(wait_until(settled, scaled(20s)))
      << describe(client.stats()) << describe(server.stats());
  upload.stop();
  download.stop();
  finish_transfer(upload, reader, scaled(30s));
  finish_transfer(download, download_reader, scaled(30s));
  for (const Conn* c : {&client, &server}) {
    const PathInfo p = path(*c);
    EXPECT_EQ(p.mtu_ceiling, kLinkPayload) << describe(c->stats());
    EXPECT_LE(p.mtu, kLinkPayload) << describe(c->stats());
    EXPECT_GT(p.mtu, 1200u);
    EXPECT_EQ(p.down_count, 0u);
    EXPECT_EQ(p.mtu_black_holes, 0u);  // only probes were too big, never data
  }
}

}  // namespace
}  // namespace rendr::itest
