#include "carrier/quic/quic_memory.hpp"

#include <cstdlib>
#include <cstring>
#include <limits>

namespace rendr::carrier {

QuicMemory::QuicMemory()
    : mem_{.user_data = this,
           .malloc = on_malloc,
           .free = on_free,
           .calloc = on_calloc,
           .realloc = on_realloc} {}

QuicMemory::~QuicMemory() {
  while (head_.next != &head_) {
    Header* h = head_.next;
    unlink(h);
    std::free(h);
  }
}

void QuicMemory::link(Header* h) {
  h->prev = &head_;
  h->next = head_.next;
  head_.next->prev = h;
  head_.next = h;
  ++outstanding_;
}

void QuicMemory::unlink(Header* h) {
  h->prev->next = h->next;
  h->next->prev = h->prev;
  --outstanding_;
}

void* QuicMemory::allocate(std::size_t size) {
  if (size > std::numeric_limits<std::size_t>::max() - sizeof(Header)) return nullptr;
  auto* h = static_cast<Header*>(std::malloc(sizeof(Header) + size));
  if (h == nullptr) return nullptr;
  link(h);
  return h + 1;
}

void QuicMemory::release(void* ptr) {
  if (ptr == nullptr) return;
  Header* h = static_cast<Header*>(ptr) - 1;
  unlink(h);
  std::free(h);
}

void* QuicMemory::reallocate(void* ptr, std::size_t size) {
  if (ptr == nullptr) return allocate(size);
  if (size > std::numeric_limits<std::size_t>::max() - sizeof(Header)) return nullptr;
  Header* h = static_cast<Header*>(ptr) - 1;
  unlink(h);
  auto* moved = static_cast<Header*>(std::realloc(h, sizeof(Header) + size));
  if (moved == nullptr) {  // the old block stands
    link(h);
    return nullptr;
  }
  link(moved);
  return moved + 1;
}

void* QuicMemory::on_malloc(std::size_t size, void* self) {
  return static_cast<QuicMemory*>(self)->allocate(size);
}

void QuicMemory::on_free(void* ptr, void* self) {
  static_cast<QuicMemory*>(self)->release(ptr);
}

void* QuicMemory::on_calloc(std::size_t count, std::size_t size, void* self) {
  if (size != 0 && count > std::numeric_limits<std::size_t>::max() / size) return nullptr;
  void* p = static_cast<QuicMemory*>(self)->allocate(count * size);
  if (p != nullptr) std::memset(p, 0, count * size);
  return p;
}

void* QuicMemory::on_realloc(void* ptr, std::size_t size, void* self) {
  return static_cast<QuicMemory*>(self)->reallocate(ptr, size);
}

}  // namespace rendr::carrier
