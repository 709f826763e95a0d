#include "core/recv_buffer.hpp"

#include <algorithm>
#include <cstring>

namespace rendr::core {

namespace {

// Small segments are copied out of the carrier's (large) read block, so a trickle of tiny
// frames cannot pin many large blocks.
constexpr std::size_t kCopyBelow = 4096;

wire::Slice compact(wire::Slice s) {
  if (s.size() >= kCopyBelow || s.empty()) return s;
  return wire::Slice::copy_of(s.bytes());
}

}  // namespace

RecvBuffer::InsertResult RecvBuffer::insert(std::uint64_t offset, wire::Slice bytes) {
  InsertResult r;
  std::uint64_t end = offset + bytes.size();
  if (end <= next_) {
    r.duplicate = true;
    return r;
  }
  if (offset < next_) {
    bytes.remove_prefix(static_cast<std::size_t>(next_ - offset));
    offset = next_;
    r.duplicate = true;
  }
  if (offset == next_) {
    const std::uint64_t before = next_;
    push_ready(std::move(bytes));
    drain_reorder();
    r.advanced = next_ - before;
    return r;
  }
  // Out of order: keep only the parts not already buffered.
  auto it = reorder_.upper_bound(offset);
  if (it != reorder_.begin()) {
    auto prev = std::prev(it);
    const std::uint64_t prev_end = prev->first + prev->second.size();
    if (prev_end >= end) {
      r.duplicate = true;
      return r;
    }
    if (prev_end > offset) {
      bytes.remove_prefix(static_cast<std::size_t>(prev_end - offset));
      offset = prev_end;
      r.duplicate = true;
    }
  }
  while (offset < end) {
    it = reorder_.lower_bound(offset);
    const std::uint64_t gap_end = it == reorder_.end() ? end : std::min(end, it->first);
    if (gap_end > offset) {
      const std::size_t len = static_cast<std::size_t>(gap_end - offset);
      reorder_.emplace(offset, compact(bytes.sub(0, len)));
      reorder_bytes_ += len;
      bytes.remove_prefix(len);
      offset = gap_end;
    }
    if (offset >= end) break;
    // Skip the part an existing segment already covers.
    const std::uint64_t seg_end = it->first + it->second.size();
    const std::uint64_t skip_to = std::min(end, seg_end);
    bytes.remove_prefix(static_cast<std::size_t>(skip_to - offset));
    offset = skip_to;
    r.duplicate = true;
  }
  return r;
}

void RecvBuffer::push_ready(wire::Slice bytes) {
  if (bytes.empty()) return;
  next_ += bytes.size();
  ready_.push_back(compact(std::move(bytes)));
}

void RecvBuffer::drain_reorder() {
  while (!reorder_.empty()) {
    auto it = reorder_.begin();
    if (it->first > next_) break;
    wire::Slice s = std::move(it->second);
    const std::uint64_t start = it->first;
    reorder_bytes_ -= s.size();
    reorder_.erase(it);
    const std::uint64_t end = start + s.size();
    if (end <= next_) continue;
    s.remove_prefix(static_cast<std::size_t>(next_ - start));
    push_ready(std::move(s));
  }
}

std::size_t RecvBuffer::read(wire::MutableBytes out) {
  std::size_t done = 0;
  while (done < out.size() && !ready_.empty()) {
    wire::Slice& front = ready_.front();
    const std::size_t n = std::min(out.size() - done, front.size());
    std::memcpy(out.data() + done, front.data(), n);
    done += n;
    front.remove_prefix(n);
    if (front.empty()) ready_.pop_front();
  }
  read_offset_ += done;
  return done;
}

}  // namespace rendr::core
