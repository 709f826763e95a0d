#pragma once
// A fixed-capacity copy of the descriptors of an Asio buffer sequence (pointers and sizes, not
// the bytes), so that a whole scatter/gather sequence crosses the type-erased ConnCore boundary
// and can be kept by a pending operation without allocating.
#include <array>
#include <cstddef>

#include "rendr/asio.hpp"

namespace rendr::detail {

// Like Asio's own sockets, an operation uses at most this many buffers of a sequence; empty
// buffers do not count. (The *_some operations may transfer less than the whole sequence.)
inline constexpr std::size_t kMaxBuffers = 16;

template <class Buffer>
struct BufferList {
  std::array<Buffer, kMaxBuffers> items{};
  std::size_t count = 0;

  std::size_t total() const {
    std::size_t n = 0;
    for (std::size_t i = 0; i < count; ++i)
      n += items[i].size();
    return n;
  }
  const Buffer* begin() const { return items.data(); }
  const Buffer* end() const { return items.data() + count; }
};

using MutableBuffers = BufferList<asio::mutable_buffer>;
using ConstBuffers = BufferList<asio::const_buffer>;

template <class Buffer, class Sequence>
BufferList<Buffer> gather(const Sequence& sequence) {
  BufferList<Buffer> out;
  const auto end = asio::buffer_sequence_end(sequence);
  for (auto it = asio::buffer_sequence_begin(sequence); it != end && out.count < kMaxBuffers;
       ++it) {
    Buffer b(*it);
    if (b.size() != 0) out.items[out.count++] = b;
  }
  return out;
}

}  // namespace rendr::detail
