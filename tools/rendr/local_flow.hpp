#pragma once
// A rendr flow inside this process over loopback: a listener with one TCP (QUIC, udpflow) port
// per path and a client dialing each port, directly or through a fault proxy per path (FaultProxy
// for tcp paths, UdpFaultProxy for udpflow paths). Used by the demo and the benchmarks.
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "rendr/rendr.hpp"
#include "support/fault_proxy.hpp"
#include "support/udp_fault_proxy.hpp"

namespace rendr::cli {

struct LocalFlowConfig {
  std::size_t paths = 2;
  // "tcp"; "quic": every path a QUIC path to its own UDP port, with TLS from `quic_server` and
  // `quic_client`; "udpflow": every path over UDP; "mixed": odd paths udpflow.
  // through_proxies puts a udpflow or quic path through a UdpFaultProxy; `shaping` needs tcp
  // paths.
  std::string transport = "tcp";
  rendr::TlsServerConfig quic_server{};
  rendr::TlsClientConfig quic_client{};
  bool through_proxies = false;
  rendr::Mode mode = rendr::Mode::prime;
  // Per path, both directions; non-empty (one per path) puts every path through a proxy.
  std::vector<testing::Shaping> shaping{};
  // Per path (udpflow paths only), both directions; non-empty puts every udpflow path through a
  // UdpFaultProxy with these faults (a path beyond the vector's end gets none).
  std::vector<testing::UdpFaults> udp_faults{};
  std::chrono::milliseconds path_up_timeout{5000};
  // One engine (I/O thread) per end, as two processes would have; otherwise both ends share
  // the default engine's single I/O thread.
  bool engine_per_end = false;
  // Both ends on this engine instead (e.g. one over the application's own io_context).
  rendr::Engine* engine = nullptr;
  // A packet flow with these options (packet_client / packet_server) instead of a stream flow.
  std::optional<rendr::PacketOptions> packet{};
  // udpflow paths: both ends' congestion controller (nullopt: the default).
  std::optional<rendr::Congestion> congestion{};
};

class LocalFlow {
 public:
  // Listens, dials, accepts, then waits until every path is up. On failure sets `ec` (the
  // dial's error, or std::errc::timed_out if the paths did not all come up) and returns null.
  static std::unique_ptr<LocalFlow> open(const LocalFlowConfig& config, std::error_code& ec);

  LocalFlow() = default;
  // Closes both ends and waits (bounded) until the flow has finished before the proxies go: a
  // proxy closed under a flow still exchanging its FINs is a path death, which would be
  // reported as a spurious migration after the measurement.
  ~LocalFlow();
  LocalFlow(const LocalFlow&) = delete;
  LocalFlow& operator=(const LocalFlow&) = delete;

  // The client's stats, of whichever kind of flow it is.
  rendr::ConnStats client_stats() const;

  // The proxy carrying client path `id`, or null (no proxies, an unknown path, or a udpflow or
  // quic path: see udp_proxy_of).
  testing::FaultProxy* proxy_of(rendr::PathId id);
  // The UDP fault proxy carrying client udpflow or quic path `id`, or null.
  testing::UdpFaultProxy* udp_proxy_of(rendr::PathId id);

  // Replaces the proxy of a dead path `id` by a fresh one of the same kind without faults and
  // attaches it to the client with add_path, after removing `id`. Returns the new path's id.
  rendr::PathId replace_path(rendr::PathId id, std::error_code& ec);

  // Declared first so they are destroyed last, after the connections that use them.
  std::unique_ptr<rendr::Engine> server_engine;  // engine_per_end only
  std::unique_ptr<rendr::Engine> client_engine;
  std::vector<std::unique_ptr<testing::FaultProxy>> proxies;
  std::vector<std::unique_ptr<testing::UdpFaultProxy>> udp_proxies;
  rendr::Listener listener;
  rendr::Conn client;                  // the dialing side
  rendr::Conn server;                  // the accepted side
  rendr::PacketConn packet_client;     // LocalFlowConfig::packet: the dialing side
  rendr::PacketConn packet_server;     // and the accepted side
  rendr::TlsClientConfig quic_client;  // for a replaced quic path
};

}  // namespace rendr::cli
