#include "carrier/udp/route_mtu.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace rendr::carrier::udp {

namespace {

constexpr std::size_t kUdpHeader = 8;
constexpr std::size_t kIpv4Header = 20;
constexpr std::size_t kIpv6Header = 40;

}  // namespace

std::optional<std::size_t> route_max_udp_payload(const asio::ip::udp::endpoint& peer) {
  // An IPv4-mapped address (a dual-stack listener's IPv4 client) takes the IPv4 route.
  asio::ip::udp::endpoint target = peer;
  if (peer.address().is_v6() && peer.address().to_v6().is_v4_mapped())
    target = {asio::ip::make_address_v4(asio::ip::v4_mapped, peer.address().to_v6()), peer.port()};
  const bool v6 = target.address().is_v6();
  const int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  int mtu = 0;
  socklen_t length = sizeof mtu;
  // connect() on a UDP socket only looks the route up and binds it to the socket.
  const bool found =
      ::connect(fd, target.data(), static_cast<socklen_t>(target.size())) == 0 &&
      ::getsockopt(fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_MTU : IP_MTU, &mtu, &length) == 0;
  ::close(fd);
  const std::size_t headers = (v6 ? kIpv6Header : kIpv4Header) + kUdpHeader;
  if (!found || mtu <= 0 || static_cast<std::size_t>(mtu) <= headers) return std::nullopt;
  return static_cast<std::size_t>(mtu) - headers;
}

bool is_same_host(const asio::ip::udp::endpoint& local, const asio::ip::udp::endpoint& peer) {
  const asio::ip::address a = peer.address();
  if (a.is_loopback()) return true;
  if (a.is_v6() && a.to_v6().is_v4_mapped() &&
      asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).is_loopback())
    return true;
  return !local.address().is_unspecified() && local.address() == a;
}

}  // namespace rendr::carrier::udp
