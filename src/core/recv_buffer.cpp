#include "core/recv_buffer.hpp"

#include <algorithm>
#include <cstring>

namespace rendr::core {

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
    compact_if_wasteful();
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
      if (reorder_.size() >= max_segments()) {
        r.refused = true;
        break;
      }
      const std::size_t len = static_cast<std::size_t>(gap_end - offset);
      reorder_.emplace(offset, keep(bytes.sub(0, len)));
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
  compact_if_wasteful();
  return r;
}

void RecvBuffer::push_ready(wire::Slice bytes) {
  if (bytes.empty()) return;
  next_ += bytes.size();
  // A small copy that continues the previous one extends it in the arena: a trickle of tiny
  // frames costs its bytes, not a queue entry each.
  if (!ready_.empty() && arena_ && !blocks_.contains(bytes.block()) && wasteful(bytes)) {
    wire::Slice& back = ready_.back();
    const wire::Byte* arena_end = arena_->data.get() + arena_->used;
    if (back.block() == arena_.get() && back.data() + back.size() == arena_end &&
        arena_->capacity - arena_->used >= bytes.size()) {
      std::memcpy(arena_->data.get() + arena_->used, bytes.data(), bytes.size());
      arena_->used += bytes.size();
      blocks_[arena_.get()].bytes += bytes.size();
      back = wire::Slice(arena_, static_cast<std::size_t>(back.data() - arena_->data.get()),
                         back.size() + bytes.size());
      return;
    }
  }
  ready_.push_back(keep(std::move(bytes)));
}

void RecvBuffer::drain_reorder() {
  while (!reorder_.empty()) {
    auto it = reorder_.begin();
    if (it->first > next_) break;
    wire::Slice s = std::move(it->second);
    const std::uint64_t start = it->first;
    reorder_bytes_ -= s.size();
    reorder_.erase(it);
    forget(s);
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
    forget_prefix(front, n);
    front.remove_prefix(n);
    if (front.empty()) ready_.pop_front();
  }
  read_offset_ += done;
  if (buffered() == 0) arena_.reset();  // an idle flow holds no storage
  compact_if_wasteful();
  return done;
}

// ---- memory accounting ------------------------------------------------------------------------

bool RecvBuffer::wasteful(const wire::Slice& bytes) const {
  return bytes.size() * kMaxWaste < bytes.block()->capacity;
}

wire::Slice RecvBuffer::keep(wire::Slice bytes) {
  if (bytes.empty()) return bytes;
  if (!blocks_.contains(bytes.block()) && wasteful(bytes)) bytes = copy(bytes);
  track(bytes);
  return bytes;
}

void RecvBuffer::track(const wire::Slice& bytes) {
  auto [it, fresh] = blocks_.try_emplace(bytes.block());
  if (fresh) pinned_ += bytes.block()->capacity;
  ++it->second.slices;
  it->second.bytes += bytes.size();
}

void RecvBuffer::forget(const wire::Slice& bytes) {
  if (bytes.empty()) return;
  auto it = blocks_.find(bytes.block());
  it->second.bytes -= bytes.size();
  if (--it->second.slices > 0) return;
  pinned_ -= bytes.block()->capacity;
  blocks_.erase(it);
}

void RecvBuffer::forget_prefix(const wire::Slice& bytes, std::size_t n) {
  if (n == bytes.size()) {
    forget(bytes);
    return;
  }
  blocks_[bytes.block()].bytes -= n;
}

wire::Slice RecvBuffer::copy(const wire::Slice& bytes) {
  if (!arena_ || arena_->capacity - arena_->used < bytes.size()) {
    arena_ = wire::make_block(std::max(kArenaBlock, bytes.size()));
  }
  std::memcpy(arena_->data.get() + arena_->used, bytes.data(), bytes.size());
  wire::Slice copied(arena_, arena_->used, bytes.size());
  arena_->used += bytes.size();
  return copied;
}

void RecvBuffer::compact_if_wasteful() {
  if (pinned_ <= kMaxWaste * buffered() + kCompactSlack) return;
  auto compact = [&](wire::Slice& s) {
    if (s.empty() || s.block() == arena_.get()) return;
    if (blocks_[s.block()].bytes * kMaxWaste >= s.block()->capacity) return;
    wire::Slice copied = copy(s);
    forget(s);
    track(copied);
    s = std::move(copied);
  };
  for (wire::Slice& s : ready_)
    compact(s);
  for (auto& [offset, s] : reorder_)
    compact(s);
}

}  // namespace rendr::core
