#pragma once
// The messages a packet flow has written and the peer has not acknowledged, by offset.
//
// A message of n bytes occupies [offset, offset + n + kMessageSpanOverhead) of the flow's offset
// space (docs/protocol.md §3.5), so schedulers, retransmit queues and ACKs work on offsets as for
// the byte stream, and every range they hand out starts and ends at a message boundary.
#include <cstddef>
#include <cstdint>
#include <deque>

#include "wire/bytes.hpp"
#include "wire/frame.hpp"

namespace rendr::core {

class MessageSendQueue {
 public:
  // `capacity`: offsets (message bytes and their overhead) kept until acknowledged.
  explicit MessageSendQueue(std::size_t capacity) : capacity_(capacity) {}

  static std::uint64_t span(std::size_t size) { return size + wire::kMessageSpanOverhead; }

  // Copies `message` in; false (nothing changes) if it does not fit.
  bool push(wire::ConstBytes message);
  // Offsets a further message may still use (its bytes and overhead).
  std::size_t free_span() const { return capacity_ - used_; }

  std::uint64_t base() const { return base_; }  // the first unacknowledged message
  std::uint64_t end() const { return end_; }    // one past the last message
  std::size_t count() const { return messages_.size(); }

  // Forgets every message that ends at or below `offset` (a message it ends inside stays).
  void release_to(std::uint64_t offset);
  // The message that starts at `offset`; nullptr if none does.
  const wire::Slice* at(std::uint64_t offset) const;
  // The end of the last message that ends at or below `limit` (base() if none does): what may
  // be sent whole under a flow-control limit.
  std::uint64_t aligned_end(std::uint64_t limit) const;

 private:
  struct Message {
    std::uint64_t offset = 0;
    wire::Slice bytes;
    std::uint64_t end() const { return offset + span(bytes.size()); }
  };
  const std::size_t capacity_;
  std::size_t used_ = 0;
  std::deque<Message> messages_;
  std::uint64_t base_ = 0;
  std::uint64_t end_ = 0;
};

}  // namespace rendr::core
