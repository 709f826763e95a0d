// RecvBuffer: ordering, duplicates, and the memory its slices pin (defect 5: a small slice must
// not keep a whole carrier read block alive).
#include "core/recv_buffer.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace rendr::core {
namespace {

constexpr std::size_t kReadBlock = 256 * 1024;  // the TCP carrier's read block

// A slice of `size` bytes (value `fill`) at the start of a fresh read-block-sized block, as a
// carrier hands out a frame's payload when the rest of its read block holds other frames.
wire::Slice in_read_block(std::size_t size, wire::Byte fill, std::size_t block = kReadBlock) {
  auto b = wire::make_block(block);
  std::memset(b->data.get(), fill, size);
  b->used = block;
  return wire::Slice(b, 0, size);
}

std::vector<wire::Byte> read_all(RecvBuffer& buffer) {
  std::vector<wire::Byte> out(buffer.readable());
  out.resize(buffer.read(out));
  return out;
}

TEST(RecvBuffer, ReordersAndDeliversInOrder) {
  RecvBuffer buffer(1 << 20);
  EXPECT_EQ(buffer.insert(4, wire::Slice::copy_of(std::vector<wire::Byte>{4, 5})).advanced, 0u);
  EXPECT_EQ(buffer.insert(0, wire::Slice::copy_of(std::vector<wire::Byte>{0, 1, 2, 3})).advanced,
            6u);
  EXPECT_TRUE(buffer.insert(2, wire::Slice::copy_of(std::vector<wire::Byte>{2, 3})).duplicate);
  EXPECT_EQ(read_all(buffer), (std::vector<wire::Byte>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(buffer.memory(), 0u);
}

// A peer sending small out-of-order frames, each in its own read block: payload is bounded by
// the window, and so must memory be (within kMaxWaste), not 64x it.
TEST(RecvBuffer, SmallOutOfOrderSlicesDoNotPinTheirReadBlocks) {
  const std::size_t window = 4 * 1024 * 1024;
  RecvBuffer buffer(window);
  const std::size_t frame = 4096;
  std::size_t kept = 0;
  for (std::uint64_t offset = frame; offset + frame <= window; offset += 2 * frame) {
    EXPECT_FALSE(buffer.insert(offset, in_read_block(frame, 7)).refused);
    kept += frame;
  }
  EXPECT_EQ(buffer.buffered(), kept);
  EXPECT_LE(buffer.memory(), RecvBuffer::kMaxWaste * buffer.buffered() + RecvBuffer::kCompactSlack);
  EXPECT_LE(buffer.memory(), 2 * window);
}

// In order too: a slow reader and a trickle of small frames (each read into a fresh block).
TEST(RecvBuffer, SmallInOrderSlicesAreCompactedIntoTheArena) {
  RecvBuffer buffer(4 * 1024 * 1024);
  for (std::uint64_t i = 0; i < 512; ++i)
    buffer.insert(i * 4096, in_read_block(4096, 1));
  EXPECT_EQ(buffer.readable(), 512u * 4096);
  EXPECT_LE(buffer.memory(), buffer.buffered() + RecvBuffer::kArenaBlock);
  std::vector<wire::Byte> out = read_all(buffer);
  EXPECT_EQ(out.size(), 512u * 4096);
  EXPECT_EQ(buffer.memory(), 0u);
}

// Bulk: 64 KiB frames (a quarter of a read block and more) stay zero-copy in their blocks.
TEST(RecvBuffer, LargeSlicesStayZeroCopy) {
  RecvBuffer buffer(8 * 1024 * 1024);
  auto block = wire::make_block(kReadBlock);
  block->used = kReadBlock;
  for (std::size_t i = 0; i < 4; ++i)
    buffer.insert(i * 65536, wire::Slice(block, i * 65536, 65536));
  EXPECT_EQ(buffer.memory(), kReadBlock);
  std::vector<wire::Byte> first(100);
  buffer.read(first);
  EXPECT_EQ(buffer.memory(), kReadBlock);
}

// Each read block carries a 64 KiB in-order frame (zero-copy) and a 1 KiB frame beyond a hole:
// once the application reads the in-order bytes, each block is pinned by its 1 KiB alone, and
// compaction must copy those out.
TEST(RecvBuffer, ReadsThatLeaveBlocksMostlyEmptyCompactThem) {
  RecvBuffer buffer(16 * 1024 * 1024);
  const std::size_t blocks = 32;
  const std::uint64_t hole = blocks * 65536;
  for (std::size_t i = 0; i < blocks; ++i) {
    auto block = wire::make_block(kReadBlock);
    block->used = kReadBlock;
    buffer.insert(i * 65536, wire::Slice(block, 0, 65536));
    buffer.insert(hole + 1024 + i * 2048, wire::Slice(block, 65536, 1024));
  }
  EXPECT_EQ(buffer.memory(), blocks * kReadBlock);
  std::vector<wire::Byte> sink(hole);
  EXPECT_EQ(buffer.read(sink), sink.size());
  EXPECT_EQ(buffer.buffered(), blocks * 1024);
  EXPECT_LE(buffer.memory(), 4 * RecvBuffer::kArenaBlock);
}

TEST(RecvBuffer, TooManyOutOfOrderSegmentsAreRefused) {
  const std::size_t window = 64 * 1024;
  RecvBuffer buffer(window);
  std::size_t refused = 0;
  for (std::uint64_t offset = 2; offset < window; offset += 2)
    refused += buffer.insert(offset, wire::Slice::copy_of(std::vector<wire::Byte>{1})).refused;
  EXPECT_EQ(buffer.segments(), buffer.max_segments());
  EXPECT_GT(refused, 0u);
}

}  // namespace
}  // namespace rendr::core
