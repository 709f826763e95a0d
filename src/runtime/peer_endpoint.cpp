#include "runtime/peer_endpoint.hpp"

#include <algorithm>

namespace rendr::runtime {

core::PeerAddress to_peer_address(const asio::ip::udp::endpoint& endpoint) {
  const asio::ip::address a = endpoint.address();
  if (a.is_v4()) return core::peer_address_v4(a.to_v4().to_uint(), endpoint.port());
  const asio::ip::address_v6::bytes_type bytes = a.to_v6().to_bytes();
  return core::peer_address_v6(std::span<const std::uint8_t, 16>(bytes.data(), 16),
                               endpoint.port());
}

asio::ip::udp::endpoint to_udp_endpoint(const core::PeerAddress& address) {
  asio::ip::address_v6::bytes_type bytes{};
  std::copy_n(address.bytes.begin(), bytes.size(), bytes.begin());
  const auto port = static_cast<unsigned short>(address.bytes[16] << 8 | address.bytes[17]);
  const asio::ip::address_v6 v6(bytes);
  if (v6.is_v4_mapped()) return {asio::ip::make_address_v4(asio::ip::v4_mapped, v6), port};
  return {v6, port};
}

}  // namespace rendr::runtime
