// The per-connection ngtcp2 allocator (src/carrier/quic/quic_memory.hpp): it serves ngtcp2's
// four calls and frees, when it ends, what a buggy caller never freed (under ASan, a block it
// failed to free fails this binary's leak check).
#include "carrier/quic/quic_memory.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>

namespace rendr::carrier {
namespace {

TEST(QuicMemory, CountsWhatIsAllocatedAndFreed) {
  QuicMemory memory;
  const ngtcp2_mem* mem = memory.mem();
  void* a = mem->malloc(100, mem->user_data);
  void* b = mem->calloc(4, 25, mem->user_data);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(memory.outstanding(), 2u);
  mem->free(a, mem->user_data);
  EXPECT_EQ(memory.outstanding(), 1u);
  mem->free(nullptr, mem->user_data);  // as free(3): nothing
  mem->free(b, mem->user_data);
  EXPECT_EQ(memory.outstanding(), 0u);
}

TEST(QuicMemory, BlocksAreAlignedForAnyType) {
  QuicMemory memory;
  const ngtcp2_mem* mem = memory.mem();
  for (std::size_t size : {1u, 7u, 16u, 113u}) {
    void* p = mem->malloc(size, mem->user_data);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % alignof(std::max_align_t), 0u) << size;
    mem->free(p, mem->user_data);
  }
}

TEST(QuicMemory, CallocZeroesAndRefusesAnOverflowingSize) {
  QuicMemory memory;
  const ngtcp2_mem* mem = memory.mem();
  auto* p = static_cast<unsigned char*>(mem->calloc(64, 3, mem->user_data));
  ASSERT_NE(p, nullptr);
  for (int i = 0; i < 192; ++i)
    ASSERT_EQ(p[i], 0) << i;
  EXPECT_EQ(mem->calloc(std::numeric_limits<std::size_t>::max() / 2, 3, mem->user_data), nullptr);
  EXPECT_EQ(mem->malloc(std::numeric_limits<std::size_t>::max() - 4, mem->user_data), nullptr);
  EXPECT_EQ(memory.outstanding(), 1u);
  mem->free(p, mem->user_data);
}

TEST(QuicMemory, ReallocKeepsTheContentAndTheCount) {
  QuicMemory memory;
  const ngtcp2_mem* mem = memory.mem();
  auto* p = static_cast<char*>(mem->realloc(nullptr, 6, mem->user_data));  // as malloc
  ASSERT_NE(p, nullptr);
  std::memcpy(p, "rendr", 6);
  void* other = mem->malloc(32, mem->user_data);
  p = static_cast<char*>(mem->realloc(p, 4096, mem->user_data));
  ASSERT_NE(p, nullptr);
  EXPECT_STREQ(p, "rendr");
  EXPECT_EQ(memory.outstanding(), 2u);
  // A refused growth leaves the old block allocated and counted.
  EXPECT_EQ(mem->realloc(p, std::numeric_limits<std::size_t>::max() - 4, mem->user_data), nullptr);
  EXPECT_EQ(memory.outstanding(), 2u);
  EXPECT_STREQ(p, "rendr");
  mem->free(p, mem->user_data);
  mem->free(other, mem->user_data);
  EXPECT_EQ(memory.outstanding(), 0u);
}

// What ngtcp2 0.12.1 loses (a frame chain it parks in its object pool) is freed with the
// allocator; the blocks in the middle of the list unlink correctly.
TEST(QuicMemory, BlocksNeverFreedEndWithTheAllocator) {
  auto memory = std::make_unique<QuicMemory>();
  const ngtcp2_mem* mem = memory->mem();
  void* kept[8];
  for (auto*& p : kept)
    p = mem->malloc(112, mem->user_data);
  mem->free(kept[3], mem->user_data);
  mem->free(kept[0], mem->user_data);
  mem->free(kept[7], mem->user_data);
  EXPECT_EQ(memory->outstanding(), 5u);
  memory.reset();  // frees the five (ASan's leak check fails this binary otherwise)
}

}  // namespace
}  // namespace rendr::carrier
