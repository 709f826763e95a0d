#pragma once
// Bytes written by the application and kept until the peer acknowledges them, so any path can
// (re)send them. Fixed-size blocks make offset -> block lookup O(1); frames reference blocks
// through wire::Slice, so a block handed to a socket write stays valid after it is released.
#include <cstdint>
#include <deque>

#include "wire/bytes.hpp"

namespace rendr::core {

class SendBuffer {
 public:
  SendBuffer(std::size_t block_size, std::size_t capacity)
      : block_size_(block_size), capacity_(capacity) {}

  std::uint64_t base() const { return base_; }  // first unacknowledged offset
  std::uint64_t end() const { return end_; }    // one past the last written byte
  std::size_t free_space() const {
    const std::uint64_t used = end_ - base_;
    return used >= capacity_ ? 0 : static_cast<std::size_t>(capacity_ - used);
  }

  // Copies as much of `bytes` as fits; returns the count.
  std::size_t append(wire::ConstBytes bytes);
  // Drops everything below `offset` (acknowledged).
  void release_to(std::uint64_t offset);
  // Bytes [from, min(to, from + max, end of from's block)).
  wire::Slice slice(std::uint64_t from, std::uint64_t to, std::size_t max) const;

 private:
  std::size_t block_size_;
  std::size_t capacity_;
  std::uint64_t base_ = 0;
  std::uint64_t end_ = 0;
  std::uint64_t blocks_start_ = 0;  // offset of blocks_.front()'s first byte
  std::deque<wire::BlockPtr> blocks_;
};

}  // namespace rendr::core
