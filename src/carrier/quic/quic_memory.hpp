#pragma once
// The allocator one ngtcp2 connection uses: every block it hands out is on a list, and what is
// still on the list when the allocator ends (after ngtcp2_conn_del) is freed.
//
// Why: ngtcp2 0.12.1 (Debian 12) leaks a STREAM frame chain whose vector count drops below its
// allocation threshold after a partial acknowledgement — it returns a malloc'd block to its
// object pool, which never frees it (fixed upstream in 1.6.0, commit af11b29c). A server that
// lives long and sees loss would lose such blocks with every connection; with this allocator
// they end with their connection.
#include <ngtcp2/ngtcp2.h>

#include <cstddef>

namespace rendr::carrier {

class QuicMemory {
 public:
  QuicMemory();
  ~QuicMemory();  // frees every block still allocated: call after ngtcp2_conn_del
  QuicMemory(const QuicMemory&) = delete;
  QuicMemory& operator=(const QuicMemory&) = delete;

  // For ngtcp2_conn_{client,server}_new; valid while this object lives.
  const ngtcp2_mem* mem() const { return &mem_; }
  // Blocks allocated and not freed.
  std::size_t outstanding() const { return outstanding_; }

 private:
  struct alignas(std::max_align_t) Header {
    Header* prev;
    Header* next;
  };

  void* allocate(std::size_t size);
  void* reallocate(void* ptr, std::size_t size);
  void release(void* ptr);
  void link(Header* h);
  void unlink(Header* h);

  static void* on_malloc(std::size_t size, void* self);
  static void on_free(void* ptr, void* self);
  static void* on_calloc(std::size_t count, std::size_t size, void* self);
  static void* on_realloc(void* ptr, std::size_t size, void* self);

  ngtcp2_mem mem_;
  Header head_{&head_, &head_};  // the list's sentinel
  std::size_t outstanding_ = 0;
};

}  // namespace rendr::carrier
