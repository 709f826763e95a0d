#pragma once
// A user-space UDP relay for QUIC path faults: datagrams from clients to 127.0.0.1:<port()>
// go to the target, answers come back through the per-client upstream socket. blackhole(true)
// silently drops everything in both directions (no ICMP, nothing), like a dead network.
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <thread>

#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>

namespace rendr::testing {

class UdpRelay {
 public:
  explicit UdpRelay(std::uint16_t target_port);
  ~UdpRelay();
  UdpRelay(const UdpRelay&) = delete;
  UdpRelay& operator=(const UdpRelay&) = delete;

  std::uint16_t port() const { return port_; }
  void blackhole(bool on) { blackhole_ = on; }
  std::uint64_t dropped() const { return dropped_; }

 private:
  struct Upstream;
  void receive_front();
  void receive_back(const std::shared_ptr<Upstream>& up);

  asio::io_context io_;
  asio::ip::udp::socket front_{io_};
  asio::ip::udp::endpoint target_;
  asio::ip::udp::endpoint from_;
  std::array<std::uint8_t, 65536> buffer_{};
  std::map<asio::ip::udp::endpoint, std::shared_ptr<Upstream>> upstreams_;
  std::uint16_t port_ = 0;
  std::atomic<bool> blackhole_{false};
  std::atomic<std::uint64_t> dropped_{0};
  std::thread thread_;
};

}  // namespace rendr::testing
