#pragma once
// A datagram peer's address as the core sees it: opaque bytes the runtime fills from the source
// of a datagram (docs/design.md, "Address validation"). The core only compares them; it never
// parses them, and it has no sockets (no Asio here).
#include <array>
#include <compare>
#include <cstdint>
#include <span>

namespace rendr::core {

struct PeerAddress {
  // The runtime's encoding; udpflow uses an IPv6 address (IPv4 as ::ffff:a.b.c.d) then the
  // port, big-endian. Equal bytes are the same address; nothing else is assumed.
  static constexpr std::size_t kSize = 18;
  std::array<std::uint8_t, kSize> bytes{};

  std::span<const std::uint8_t> view() const { return bytes; }
  friend auto operator<=>(const PeerAddress&, const PeerAddress&) = default;
};

// The udpflow encoding of an IPv4 address and port (for the runtime and tests).
inline PeerAddress peer_address_v4(std::uint32_t ip, std::uint16_t port) {
  PeerAddress a;
  a.bytes[10] = 0xff;
  a.bytes[11] = 0xff;
  for (int i = 0; i < 4; ++i)
    a.bytes[static_cast<std::size_t>(12 + i)] = static_cast<std::uint8_t>(ip >> (24 - 8 * i));
  a.bytes[16] = static_cast<std::uint8_t>(port >> 8);
  a.bytes[17] = static_cast<std::uint8_t>(port);
  return a;
}

// The same for an IPv6 address (16 bytes, network order) and port.
inline PeerAddress peer_address_v6(std::span<const std::uint8_t, 16> ip, std::uint16_t port) {
  PeerAddress a;
  for (std::size_t i = 0; i < 16; ++i)
    a.bytes[i] = ip[i];
  a.bytes[16] = static_cast<std::uint8_t>(port >> 8);
  a.bytes[17] = static_cast<std::uint8_t>(port);
  return a;
}

}  // namespace rendr::core
