#pragma once
// UDP fault proxy: the UDP counterpart of FaultProxy (fault_proxy.hpp). A user-space relay that
// injects datagram faults on one network path at run time, for udpflow tests and benchmarks.
//
// One UdpFaultProxy listens on listen_host:<ephemeral> (one UDP socket) and relays to
// target_host:target_port like a NAT: each client source address gets a session with its own
// upstream socket (a fresh ephemeral port, connected to the target); what the target sends to
// that socket goes back to that client from the listening socket. Sessions live until the proxy
// is destroyed; at most kMaxSessions (datagrams from further sources are counted and dropped),
// and at most kMaxQueuedBytes held for all of them, so memory stays bounded.
// It owns one io thread (started in the constructor, joined in the destructor). All public
// member functions are thread-safe.
//
// Faults (UdpFaults, per direction, set at run time, applied to live sessions at once):
// a path MTU (larger datagrams dropped), blackhole, loss, duplication, reordering, delay with
// jitter, and a rate limit with a bounded queue; see udp_fault_pipeline.hpp for the order and
// udp_faults.hpp for each knob. Decisions come from a seeded RNG per session and direction (seed,
// session index in creation order, direction), so a run with the same seed, faults and datagrams
// makes the same decisions.
//
// rebind_source_ports() moves every session to a fresh upstream socket (a new source port seen
// by the target), as a NAT that rebinds does; the old socket is closed, so what the target still
// sends to the old port is lost, and replies to the new port reach the same client.
//
// A datagram the kernel refuses to send (full socket buffer, ICMP error) is counted as dropped.
// set_faults and rebind_source_ports are synchronous: when they return, the change has been
// applied on the io thread.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "support/udp_faults.hpp"

namespace rendr::testing {

class UdpFaultProxy {
 public:
  static constexpr std::size_t kMaxSessions = 256;
  // Every session's queues together; beyond it arriving datagrams are dropped (each session's
  // own queues are capped too, see UdpFaultPipeline).
  static constexpr std::size_t kMaxQueuedBytes = 32 * 1024 * 1024;
  static constexpr std::size_t kMaxDatagramBytes = 64 * 1024;
  static constexpr int kSocketBufferBytes = 4 * 1024 * 1024;  // asked for; the kernel may cap it

  // Binds listen_host:0 and resolves the target synchronously; throws std::system_error if that
  // fails.
  UdpFaultProxy(std::string listen_host, std::string target_host, std::uint16_t target_port,
                std::uint64_t seed = 1);
  // Closes every socket, stops and joins the io thread; queued datagrams are discarded.
  ~UdpFaultProxy();

  UdpFaultProxy(const UdpFaultProxy&) = delete;
  UdpFaultProxy& operator=(const UdpFaultProxy&) = delete;
  UdpFaultProxy(UdpFaultProxy&&) = delete;
  UdpFaultProxy& operator=(UdpFaultProxy&&) = delete;

  std::uint16_t port() const;  // the port it listens on

  void set_faults(UdpFaults client_to_server, UdpFaults server_to_client);  // synchronous
  UdpFaults faults_client_to_server() const;
  UdpFaults faults_server_to_client() const;

  void rebind_source_ports();  // synchronous

  // Called on the io thread with each datagram a client sent, as it arrives (before any fault
  // or delay): an on-path observer, for tests of what an attacker who sees the packets can do.
  // Empty: none. Synchronous, like set_faults.
  using Tap = std::function<void(std::span<const std::uint8_t> datagram)>;
  void set_client_tap(Tap tap);

  UdpFaultCounters counters_client_to_server() const;
  UdpFaultCounters counters_server_to_client() const;
  std::size_t sessions() const;
  std::uint64_t rebinds() const;       // sessions moved to a fresh port, in total
  std::uint64_t bytes_queued() const;  // currently held inside the proxy, both directions

  struct Impl;  // public only so the implementation's helpers can name it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace rendr::testing
