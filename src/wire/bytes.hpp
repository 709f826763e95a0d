#pragma once
// Shared, immutable byte slices. A Slice keeps its backing block alive, so a frame payload can
// travel from a socket read buffer to the application, or from the send buffer to a socket
// write, without being copied.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

namespace rendr::wire {

using Byte = std::uint8_t;
using ConstBytes = std::span<const Byte>;
using MutableBytes = std::span<Byte>;

// Recycles the storage of large blocks. Fresh multi-page allocations are expensive on the hot
// path (glibc hands them back to the kernel and the next one page-faults and zeroes them again),
// so freed storage is kept, up to a bounded total, for the next block of the same size.
namespace block_pool {
std::unique_ptr<Byte[]> take(std::size_t capacity);
void give(std::unique_ptr<Byte[]> storage, std::size_t capacity);
}  // namespace block_pool

// A heap block of fixed capacity; `used` grows as it is filled.
struct Block {
  explicit Block(std::size_t capacity) : data(block_pool::take(capacity)), capacity(capacity) {}
  ~Block() { block_pool::give(std::move(data), capacity); }
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;
  std::unique_ptr<Byte[]> data;
  std::size_t capacity;
  std::size_t used = 0;
};

using BlockPtr = std::shared_ptr<Block>;

inline BlockPtr make_block(std::size_t capacity) {
  return std::make_shared<Block>(capacity);
}

// A view of [offset, offset + length) of a block, holding a reference to it.
class Slice {
 public:
  Slice() = default;
  Slice(BlockPtr block, std::size_t offset, std::size_t length)
      : block_(std::move(block)), offset_(offset), length_(length) {}

  // Copies `bytes` into a fresh block (tests and cold paths only).
  static Slice copy_of(ConstBytes bytes) {
    auto block = make_block(bytes.size() == 0 ? 1 : bytes.size());
    if (!bytes.empty()) std::memcpy(block->data.get(), bytes.data(), bytes.size());
    block->used = bytes.size();
    return Slice(std::move(block), 0, bytes.size());
  }

  const Byte* data() const { return block_ ? block_->data.get() + offset_ : nullptr; }
  std::size_t size() const { return length_; }
  bool empty() const { return length_ == 0; }
  ConstBytes bytes() const { return {data(), length_}; }
  // The block this slice keeps alive (for memory accounting), or nullptr.
  const Block* block() const { return block_.get(); }

  // Narrows the view to [from, from + count) relative to its current start.
  Slice sub(std::size_t from, std::size_t count) const {
    return Slice(block_, offset_ + from, count);
  }
  void remove_prefix(std::size_t n) {
    offset_ += n;
    length_ -= n;
  }

 private:
  BlockPtr block_;
  std::size_t offset_ = 0;
  std::size_t length_ = 0;
};

}  // namespace rendr::wire
