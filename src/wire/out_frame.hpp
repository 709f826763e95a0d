#pragma once
// One frame ready to be written: an encoded header (a whole control frame, or the header of a
// DATA frame) followed by an optional payload shared with the sender's buffer.
#include <array>
#include <cstdint>

#include "wire/bytes.hpp"

namespace rendr::wire {

struct OutFrame {
  std::array<Byte, 96> header{};
  std::uint8_t header_size = 0;
  Slice payload;

  ConstBytes header_bytes() const { return {header.data(), header_size}; }
  std::size_t size() const { return header_size + payload.size(); }
};

}  // namespace rendr::wire
