#pragma once
// What the kernel's route to a peer carries whole: the ceiling for a udpflow path's MTU search.
//
// DPLPMTUD (RFC 8899 §5.1.2) never probes above the local interface's MTU: a larger datagram
// cannot leave this host unfragmented (with DF set, sendmsg refuses it with EMSGSIZE). Asking
// the kernel spares a path on an ordinary 1500-byte link probes it could never pass, and lets a
// path over jumbo frames or loopback use the large datagrams it can.
#include <cstddef>
#include <optional>

#include <asio/ip/udp.hpp>

namespace rendr::carrier::udp {

// The largest UDP payload the route to `peer` carries unfragmented as the kernel knows it now
// (the outgoing interface's MTU, or a lower path MTU it has cached), less the IP and UDP
// headers. nullopt: no route, or the lookup failed. A throwaway socket is connected to `peer`
// for the lookup; nothing is sent.
std::optional<std::size_t> route_max_udp_payload(const asio::ip::udp::endpoint& peer);

// Whether `peer` is this host: a loopback address, or the address `local` is bound to. Then no
// router lies between the ends, and the kernel's route MTU is the path's.
bool is_same_host(const asio::ip::udp::endpoint& local, const asio::ip::udp::endpoint& peer);

}  // namespace rendr::carrier::udp
