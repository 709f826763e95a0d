#pragma once
// Received stream bytes: an in-order queue ready for the application plus out-of-order
// segments waiting for a hole to fill. Everything stays below limit() = read offset + window,
// so payload is bounded and a hole-filling retransmission always fits.
//
// Memory. A kept slice pins its whole block (a carrier's 256 KiB read block), so payload bytes
// alone do not bound memory: a peer's small frames could pin a block each. memory() counts what
// is really held (each distinct block's capacity once), and two rules keep it within
// kMaxWaste * buffered() + a block or two:
//  - a slice that would be the first to pin a block while using under 1/kMaxWaste of it is
//    copied into a small owned arena block instead (bulk data, in 64 KiB frames packed into
//    read blocks, stays zero-copy);
//  - when reads or drops leave blocks pinned by few bytes (memory() over the bound), the slices
//    in blocks used under 1/kMaxWaste are copied out (each byte at most once, so amortised).
// Out-of-order segments are also limited in number (kSegmentBytes of window per segment), so
// per-segment bookkeeping cannot outgrow the window either.
#include <cstdint>
#include <deque>
#include <map>
#include <unordered_map>

#include "wire/bytes.hpp"

namespace rendr::core {

class RecvBuffer {
 public:
  static constexpr std::size_t kMaxWaste = 4;
  static constexpr std::size_t kArenaBlock = 16 * 1024;
  // Slack over kMaxWaste * buffered() before compaction: blocks the carrier is still filling.
  static constexpr std::size_t kCompactSlack = 512 * 1024;
  static constexpr std::size_t kSegmentBytes = 256;

  explicit RecvBuffer(std::size_t window) : window_(window) {}

  struct InsertResult {
    std::uint64_t advanced = 0;  // bytes added to the in-order queue
    bool duplicate = false;      // some of the segment was already here
    bool refused = false;        // out of order and too many segments: not kept
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
  std::size_t max_segments() const { return std::max<std::size_t>(64, window_ / kSegmentBytes); }
  std::uint64_t buffered() const { return readable() + reorder_bytes_; }
  // Bytes of block storage held by buffered slices (each distinct block counted once).
  std::size_t memory() const { return pinned_; }

 private:
  struct BlockUse {
    std::size_t slices = 0;
    std::size_t bytes = 0;
  };

  void push_ready(wire::Slice bytes);
  void drain_reorder();
  // Accounting of every slice held in ready_ or reorder_.
  wire::Slice keep(wire::Slice bytes);  // may copy; returns what is held
  void track(const wire::Slice& bytes);
  void forget(const wire::Slice& bytes);
  void forget_prefix(const wire::Slice& bytes, std::size_t n);
  wire::Slice copy(const wire::Slice& bytes);
  bool wasteful(const wire::Slice& bytes) const;
  void compact_if_wasteful();

  std::size_t window_;
  std::uint64_t next_ = 0;
  std::uint64_t read_offset_ = 0;
  std::deque<wire::Slice> ready_;
  std::map<std::uint64_t, wire::Slice> reorder_;  // offset -> bytes, non-overlapping
  std::uint64_t reorder_bytes_ = 0;
  std::unordered_map<const wire::Block*, BlockUse> blocks_;
  std::size_t pinned_ = 0;
  wire::BlockPtr arena_;  // small slices are copied here; released when the buffer drains
};

}  // namespace rendr::core
