#pragma once
// What a transport that does its own loss recovery and congestion control (TCP, QUIC) says of
// its congestion state (Carrier::transport_congestion).
#include <cstdint>
#include <string>

namespace rendr::carrier {

struct TransportCongestion {
  std::string controller;                  // "cubic", "bbr", ... (the transport's own)
  std::uint64_t congestion_window = 0;     // bytes
  std::uint64_t bytes_in_flight = 0;       // sent and not yet acknowledged, bytes
  std::uint64_t slow_start_threshold = 0;  // bytes; 0: still in the first slow start
  std::uint64_t pacing_rate = 0;           // bytes/s; 0: not pacing, or not said
  std::uint64_t packets_sent = 0;          // TCP segments, QUIC packets
  std::uint64_t packets_lost = 0;          // TCP: segments retransmitted; QUIC: 0 (not counted)
  std::uint64_t mtu = 0;                   // TCP: the MSS; QUIC: the UDP payload it sends
};

}  // namespace rendr::carrier
