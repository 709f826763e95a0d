#pragma once
// Received stream bytes: an in-order queue ready for the application plus out-of-order
// segments waiting for a hole to fill. Everything stays below limit() = read offset + window,
// so memory is bounded and a hole-filling retransmission always fits.
#include <cstdint>
#include <deque>
#include <map>

#include "wire/bytes.hpp"

namespace rendr::core {

class RecvBuffer {
 public:
  explicit RecvBuffer(std::size_t window) : window_(window) {}

  struct InsertResult {
    std::uint64_t advanced = 0;  // bytes added to the in-order queue
    bool duplicate = false;      // some of the segment was already here
  };

  // Adds bytes at `offset` (must end at or below limit()).
  InsertResult insert(std::uint64_t offset, wire::Slice bytes);
  // Copies in-order bytes to `out`.
  std::size_t read(wire::MutableBytes out);

  std::uint64_t next() const { return next_; }                // contiguous received
  std::uint64_t read_offset() const { return read_offset_; }  // consumed by the app
  std::uint64_t limit() const { return read_offset_ + window_; }
  std::size_t readable() const { return static_cast<std::size_t>(next_ - read_offset_); }
  std::size_t segments() const { return reorder_.size(); }
  std::uint64_t buffered() const { return readable() + reorder_bytes_; }

 private:
  void push_ready(wire::Slice bytes);
  void drain_reorder();

  std::size_t window_;
  std::uint64_t next_ = 0;
  std::uint64_t read_offset_ = 0;
  std::deque<wire::Slice> ready_;
  std::map<std::uint64_t, wire::Slice> reorder_;  // offset -> bytes, non-overlapping
  std::uint64_t reorder_bytes_ = 0;
};

}  // namespace rendr::core
