#include "core/send_buffer.hpp"

#include <algorithm>
#include <cassert>

namespace rendr::core {

std::size_t SendBuffer::append(wire::ConstBytes bytes) {
  const std::size_t n = std::min(bytes.size(), free_space());
  std::size_t done = 0;
  while (done < n) {
    const std::uint64_t in_block = (end_ - blocks_start_) % block_size_;
    if (in_block == 0 && end_ - blocks_start_ == blocks_.size() * block_size_) {
      blocks_.push_back(wire::make_block(block_size_));
    }
    wire::Block& block = *blocks_.back();
    const std::size_t chunk =
        std::min<std::size_t>(n - done, block_size_ - static_cast<std::size_t>(in_block));
    std::memcpy(block.data.get() + in_block, bytes.data() + done, chunk);
    block.used = static_cast<std::size_t>(in_block) + chunk;
    done += chunk;
    end_ += chunk;
  }
  return n;
}

void SendBuffer::release_to(std::uint64_t offset) {
  offset = std::min(offset, end_);
  if (offset <= base_) return;
  base_ = offset;
  if (base_ == end_) {
    // Drained: an idle flow holds no block (the next append starts a fresh one at end_).
    blocks_.clear();
    blocks_start_ = end_;
    return;
  }
  while (!blocks_.empty() && blocks_start_ + block_size_ <= base_) {
    blocks_.pop_front();
    blocks_start_ += block_size_;
  }
}

wire::Slice SendBuffer::slice(std::uint64_t from, std::uint64_t to, std::size_t max) const {
  assert(from >= base_ && from < end_);
  to = std::min(to, end_);
  const std::uint64_t rel = from - blocks_start_;
  const std::size_t index = static_cast<std::size_t>(rel / block_size_);
  const std::size_t in_block = static_cast<std::size_t>(rel % block_size_);
  const std::size_t len =
      static_cast<std::size_t>(std::min<std::uint64_t>({to - from, max, block_size_ - in_block}));
  return wire::Slice(blocks_[index], in_block, len);
}

}  // namespace rendr::core
