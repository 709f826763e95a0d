#pragma once
// Stream ranges that must be sent again because the path that carried them died (or, in prime
// mode, everything unacknowledged after a failover). Ranges are taken front to back; whatever
// the cumulative ACK has passed meanwhile is skipped, never re-sent.
#include <cstdint>
#include <deque>
#include <optional>

namespace rendr::core {

class RetransmitQueue {
 public:
  struct Range {
    std::uint64_t from = 0;
    std::uint64_t to = 0;
  };

  void clear() { ranges_.clear(); }
  void add(std::uint64_t from, std::uint64_t to) {
    if (from < to) ranges_.push_back(Range{from, to});
  }
  // Replaces everything queued by [from, to).
  void reset(std::uint64_t from, std::uint64_t to) {
    ranges_.clear();
    add(from, to);
  }

  // Moves every range of `other` to the back of this queue.
  void take_all(RetransmitQueue& other) {
    ranges_.insert(ranges_.end(), other.ranges_.begin(), other.ranges_.end());
    other.ranges_.clear();
  }

  // The next range still to send, clipped to `base` (the acknowledged offset).
  std::optional<Range> next(std::uint64_t base) {
    while (!ranges_.empty() && ranges_.front().to <= base)
      ranges_.pop_front();
    if (ranges_.empty()) return std::nullopt;
    Range r = ranges_.front();
    r.from = std::max(r.from, base);
    return r;
  }
  // The front range (as returned by next) went out up to `sent_to`.
  void consumed(std::uint64_t sent_to) {
    if (ranges_.empty()) return;
    ranges_.front().from = sent_to;
    if (ranges_.front().from >= ranges_.front().to) ranges_.pop_front();
  }

  bool pending(std::uint64_t base) const {
    for (const Range& r : ranges_) {
      if (r.to > base) return true;
    }
    return false;
  }
  // Lowest offset still queued at or above `base`, if any.
  std::optional<std::uint64_t> lowest(std::uint64_t base) const {
    std::optional<std::uint64_t> low;
    for (const Range& r : ranges_) {
      if (r.to > base) low = std::min(low.value_or(r.from), std::max(r.from, base));
    }
    return low;
  }

 private:
  std::deque<Range> ranges_;
};

}  // namespace rendr::core
