// <linux/tcp.h>, not glibc's <netinet/tcp.h>: only the kernel's struct tcp_info has the pacing
// rate and the segment counts. The two headers cannot share a file (both define tcphdr).
#include "carrier/tcp/tcp_congestion.hpp"

#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace rendr::carrier {

namespace {

// tcpi_snd_ssthresh before the first loss ("infinite", TCP_INFINITE_SSTHRESH in the kernel).
constexpr std::uint32_t kInfiniteSsthresh = 0x7fffffff;
// The longest congestion-control name the kernel keeps (TCP_CA_NAME_MAX, not in its uapi).
constexpr std::size_t kControllerNameMax = 16;

}  // namespace

std::optional<TransportCongestion> read_tcp_congestion(int fd) {
  tcp_info info{};
  socklen_t length = sizeof info;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) != 0) return std::nullopt;
  TransportCongestion out;
  char name[kControllerNameMax] = {};
  socklen_t name_length = sizeof name;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, &name_length) == 0)
    out.controller.assign(name, ::strnlen(name, name_length));
  const std::uint64_t mss = info.tcpi_snd_mss;
  out.congestion_window = std::uint64_t{info.tcpi_snd_cwnd} * mss;
  // The kernel's packets in flight (tcp_packets_in_flight): sent, less SACKed and lost, plus
  // retransmitted.
  const std::uint64_t left =
      info.tcpi_unacked - std::min(info.tcpi_unacked, info.tcpi_sacked + info.tcpi_lost);
  out.bytes_in_flight = (left + info.tcpi_retrans) * mss;
  if (info.tcpi_snd_ssthresh < kInfiniteSsthresh)
    out.slow_start_threshold = std::uint64_t{info.tcpi_snd_ssthresh} * mss;
  // ~0: no pacing rate set.
  if (info.tcpi_pacing_rate != ~std::uint64_t{0}) out.pacing_rate = info.tcpi_pacing_rate;
  out.packets_sent = info.tcpi_segs_out;
  out.packets_lost = info.tcpi_total_retrans;
  out.mtu = mss;
  return out;
}

}  // namespace rendr::carrier
