#pragma once
// One frame ready to be written: an encoded header (a whole control frame, or the header of a
// DATA frame) followed by an optional payload shared with the sender's buffer.
#include <array>
#include <cstdint>
#include <optional>

#include "wire/bytes.hpp"

namespace rendr::wire {

struct OutFrame {
  std::array<Byte, 96> header{};
  std::uint8_t header_size = 0;
  Slice payload;
  // Set: the frame goes alone in one datagram of a stream carrier (QUIC DATAGRAM) rather than
  // on its stream; the carrier reports the datagram's fate by this id (core::Flow's
  // on_datagram_acked / on_datagram_lost).
  std::optional<std::uint64_t> datagram_id;

  ConstBytes header_bytes() const { return {header.data(), header_size}; }
  std::size_t size() const { return header_size + payload.size(); }
};

}  // namespace rendr::wire
