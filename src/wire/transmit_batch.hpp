#pragma once
// The caller's buffer for one write of a stream carrier: frames appended by the core's
// poll_transmit (as quinn-proto's poll_transmit(now, buf) or ngtcp2's write_pkt fill the
// caller's buffer), then written in one gathered send.
//
// The caller owns the batch and reuses it for every write: reset() keeps the storage, so once
// it has grown to a full write, filling it allocates nothing (frames are fixed-size headers
// plus payload slices that share the sender's buffer). A datagram path will fill one
// datagram's bytes instead (core/transport.hpp).
#include <algorithm>
#include <cstddef>
#include <span>
#include <vector>

#include "wire/out_frame.hpp"

namespace rendr::wire {

class TransmitBatch {
 public:
  // Enough frame slots for a typical write up front (a 256 KiB write is four DATA frames and
  // a few control frames); more are added once if a write needs them, never per frame.
  static constexpr std::size_t kInitialFrames = 32;

  explicit TransmitBatch(std::size_t max_bytes = 0) : room_(max_bytes) {
    frames_.reserve(kInitialFrames);
  }

  // Empties the batch for a write of about `max_bytes` (releases the payloads it held).
  void reset(std::size_t max_bytes) {
    frames_.clear();
    bytes_ = 0;
    room_ = max_bytes;
  }
  // Releases the payloads (the write completed); the storage stays.
  void clear() { reset(0); }

  // Bytes the write still wants; 0 once full. The last frame may overshoot the budget.
  std::size_t room() const { return room_; }
  void push(OutFrame&& frame) {
    const std::size_t n = frame.size();
    room_ -= std::min(room_, n);
    bytes_ += n;
    frames_.push_back(std::move(frame));
  }

  std::span<const OutFrame> frames() const { return frames_; }
  std::size_t frame_count() const { return frames_.size(); }
  std::size_t bytes() const { return bytes_; }
  bool empty() const { return frames_.empty(); }

 private:
  std::vector<OutFrame> frames_;
  std::size_t room_ = 0;
  std::size_t bytes_ = 0;
};

}  // namespace rendr::wire
