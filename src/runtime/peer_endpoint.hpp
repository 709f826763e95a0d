#pragma once
// A UDP endpoint as the core's opaque PeerAddress and back (docs/design.md, "Address
// validation"): an IPv6 address (IPv4 as ::ffff:a.b.c.d) then the port, big-endian. The core
// only compares these bytes; the runtime converts at the socket boundary.
#include <asio/ip/udp.hpp>

#include "core/peer_address.hpp"

namespace rendr::runtime {

core::PeerAddress to_peer_address(const asio::ip::udp::endpoint& endpoint);
// An IPv4-mapped address comes back as an IPv4 endpoint (the carrier maps it again for an IPv6
// socket).
asio::ip::udp::endpoint to_udp_endpoint(const core::PeerAddress& address);

}  // namespace rendr::runtime
