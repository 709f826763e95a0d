#include "carrier/udp/udp_demux.hpp"

#include <utility>

namespace rendr::carrier::udp {

std::shared_ptr<UdpDemux> UdpDemux::open(asio::any_io_executor executor,
                                         const asio::ip::udp::endpoint& local,
                                         Receiver on_new_connection,
                                         const UdpDemuxOptions& options) {
  return std::make_shared<UdpDemux>(UdpSocket::bind(std::move(executor), local, options.socket),
                                    std::move(on_new_connection), options);
}

UdpDemux::UdpDemux(std::shared_ptr<UdpSocket> socket, Receiver on_new_connection,
                   const UdpDemuxOptions& options)
    : socket_(std::move(socket)),
      on_new_connection_(std::move(on_new_connection)),
      max_routes_(options.max_routes) {}

UdpDemux::~UdpDemux() {
  socket_->close();
}

void UdpDemux::start(ErrorHandler on_error) {
  // The socket's handler holds the demux weakly: dropping the demux stops delivery.
  socket_->start_reading(
      [weak = weak_from_this()](std::span<const ReceivedDatagram> batch) {
        if (auto self = weak.lock()) self->deliver(batch);
      },
      std::move(on_error));
}

bool UdpDemux::add_route(wire::datagram::ConnectionId dcid, Receiver receiver) {
  std::lock_guard lock(routes_mutex_);
  if (routes_.size() >= max_routes_) return false;
  return routes_.try_emplace(dcid, std::make_shared<const Receiver>(std::move(receiver))).second;
}

void UdpDemux::remove_route(wire::datagram::ConnectionId dcid) {
  std::lock_guard lock(routes_mutex_);
  routes_.erase(dcid);
}

std::size_t UdpDemux::route_count() const {
  std::lock_guard lock(routes_mutex_);
  return routes_.size();
}

void UdpDemux::deliver(std::span<const ReceivedDatagram> batch) {
  for (const ReceivedDatagram& datagram : batch) {
    wire::datagram::PacketHeader header;
    if (wire::datagram::parse_header(datagram.bytes, header) != wire::datagram::PacketError::none) {
      counters_.malformed.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    std::shared_ptr<const Receiver> receiver;
    {
      std::lock_guard lock(routes_mutex_);
      if (auto it = routes_.find(header.dcid); it != routes_.end()) receiver = it->second;
    }
    if (receiver) {
      counters_.routed.fetch_add(1, std::memory_order_relaxed);
      (*receiver)(datagram, header);
    } else if (header.kind == wire::datagram::PacketKind::handshake) {
      counters_.new_connection.fetch_add(1, std::memory_order_relaxed);
      if (on_new_connection_) on_new_connection_(datagram, header);
    } else {
      counters_.unroutable.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

void UdpDemux::close() {
  socket_->close();
  std::lock_guard lock(routes_mutex_);
  routes_.clear();
}

}  // namespace rendr::carrier::udp
