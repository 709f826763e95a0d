#pragma once
// A listener's shared UDP socket, demultiplexed by connection id: every datagram goes to the
// receiver registered for its dcid, whatever address it came from, so a client whose NAT
// rebinds (new source port or address) stays on its path. The datagram's source is reported
// with it; whether to answer there is the core's decision (path validation), not the demux's.
//
// A handshake packet whose dcid has no route goes to the new-connection callback with its
// source address (a first OPEN or JOIN; core::Endpoint decides). A protected packet with no
// route, and any datagram without a well-formed header, is dropped and counted: nothing but a
// registered path can open it. Routes are bounded (max_routes); the demux keeps no state for
// unrouted datagrams.
//
// Threading: datagrams are delivered on the socket's executor. add_route/remove_route may be
// called from any thread; a route removed while its datagram is being delivered may still get
// that one.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>

#include <asio/any_io_executor.hpp>
#include <asio/ip/udp.hpp>

#include "carrier/udp/udp_socket.hpp"
#include "wire/datagram.hpp"

namespace rendr::carrier::udp {

struct UdpDemuxOptions {
  UdpSocketOptions socket;
  std::size_t max_routes = 65536;
};

struct UdpDemuxCounters {
  std::atomic<std::uint64_t> routed{0};
  std::atomic<std::uint64_t> new_connection{0};  // handed to the new-connection callback
  std::atomic<std::uint64_t> unroutable{0};      // protected packets with an unknown dcid
  std::atomic<std::uint64_t> malformed{0};       // short, or an unknown packet kind
};

class UdpDemux : public std::enable_shared_from_this<UdpDemux> {
 public:
  // One datagram, its parsed header (header.dcid picked the receiver) and its source.
  using Receiver =
      std::function<void(const ReceivedDatagram& datagram, const wire::datagram::PacketHeader&)>;
  using ErrorHandler = UdpSocket::ErrorHandler;

  // Binds `local`. Throws Asio's system_error.
  static std::shared_ptr<UdpDemux> open(asio::any_io_executor executor,
                                        const asio::ip::udp::endpoint& local,
                                        Receiver on_new_connection,
                                        const UdpDemuxOptions& options = {});

  UdpDemux(std::shared_ptr<UdpSocket> socket, Receiver on_new_connection,
           const UdpDemuxOptions& options);
  // Closes the socket (its pending wait holds it until the executor runs the cancellation).
  ~UdpDemux();

  // Starts delivering datagrams; `on_error` if the socket fails.
  void start(ErrorHandler on_error = nullptr);
  // Routes `dcid` to `receiver`; false if the dcid is taken or max_routes are in use.
  bool add_route(wire::datagram::ConnectionId dcid, Receiver receiver);
  void remove_route(wire::datagram::ConnectionId dcid);
  std::size_t route_count() const;

  // The shared socket, for sending (send() takes the destination).
  UdpSocket& socket() { return *socket_; }
  const UdpDemuxCounters& counters() const { return counters_; }
  void close();

 private:
  void deliver(std::span<const ReceivedDatagram> batch);

  const std::shared_ptr<UdpSocket> socket_;
  const Receiver on_new_connection_;
  const std::size_t max_routes_;
  mutable std::mutex routes_mutex_;  // guards routes_
  std::unordered_map<wire::datagram::ConnectionId, std::shared_ptr<const Receiver>> routes_;
  UdpDemuxCounters counters_;
};

}  // namespace rendr::carrier::udp
