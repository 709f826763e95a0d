#pragma once
// The caller's buffer for one write of a stream carrier: frames appended by the core's
// poll_transmit (as quinn-proto's poll_transmit(now, buf) or ngtcp2's write_pkt fill the
// caller's buffer), then written in one gathered send.
//
// The caller owns the batch and reuses it for every write: reset() keeps the storage, so once
// it has grown to a full write, filling it allocates nothing (frames are fixed-size headers
// plus payload slices that share the sender's buffer).
//
// A datagram path fills whole *packets*: begin_packet opens one (its packet number and the
// most frame bytes it may hold), the frames pushed after it belong to it, and packets() lists
// each packet's number and frames, so the runtime seals each as one datagram. A stream carrier
// never opens a packet and pays nothing for them.
#include <algorithm>
#include <cstddef>
#include <cstdint>
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

  // One datagram's frames: frames()[first_frame, first_frame + frame_count), `bytes` long.
  struct Packet {
    std::uint64_t number = 0;
    std::size_t first_frame = 0;
    std::size_t frame_count = 0;
    std::size_t bytes = 0;
    std::size_t max_bytes = 0;  // the frames may not exceed this (the path's max payload)
  };

  // Empties the batch for a write of about `max_bytes` (releases the payloads it held).
  void reset(std::size_t max_bytes) {
    frames_.clear();
    packets_.clear();
    packet_open_ = false;
    bytes_ = 0;
    room_ = max_bytes;
    more_owed_ = true;
  }
  // Releases the payloads (the write completed); the storage stays.
  void clear() { reset(0); }

  // Bytes the write still wants; 0 once full. The last frame may overshoot the budget.
  std::size_t room() const { return room_; }
  void push(OutFrame&& frame) {
    const std::size_t n = frame.size();
    room_ -= std::min(room_, n);
    bytes_ += n;
    if (packet_open_) {
      ++packets_.back().frame_count;
      packets_.back().bytes += n;
    }
    frames_.push_back(std::move(frame));
  }

  // Datagram paths: the frames pushed from now on make up packet `number`, whose frames may
  // take `max_bytes` (the caller keeps to it: packet_room). Closes the previous packet.
  void begin_packet(std::uint64_t number, std::size_t max_bytes) {
    packets_.push_back(Packet{number, frames_.size(), 0, 0, max_bytes});
    packet_open_ = true;
  }
  // No more frames go into the open packet.
  void end_packet() { packet_open_ = false; }
  bool packet_open() const { return packet_open_; }
  // Frame bytes the open packet can still take (0 with none open).
  std::size_t packet_room() const {
    if (!packet_open_) return 0;
    const Packet& p = packets_.back();
    return p.max_bytes > p.bytes ? p.max_bytes - p.bytes : 0;
  }
  // The packets, in order (empty for a stream carrier's write).
  std::span<const Packet> packets() const { return packets_; }
  std::span<const OutFrame> frames_of(const Packet& p) const {
    return std::span<const OutFrame>(frames_).subspan(p.first_frame, p.frame_count);
  }
  std::span<const OutFrame> frames() const { return frames_; }
  std::size_t frame_count() const { return frames_.size(); }
  std::size_t bytes() const { return bytes_; }
  bool empty() const { return frames_.empty(); }
  // Whether the source may have more to send after this batch: a carrier that wrote the batch
  // at once pulls again only then (a kick follows when more becomes due later). Unless the
  // source says otherwise, it may.
  bool more_owed() const { return more_owed_; }
  void set_more_owed(bool more) { more_owed_ = more; }

 private:
  std::vector<OutFrame> frames_;
  std::vector<Packet> packets_;
  bool packet_open_ = false;
  std::size_t room_ = 0;
  std::size_t bytes_ = 0;
  bool more_owed_ = true;
};

}  // namespace rendr::wire
