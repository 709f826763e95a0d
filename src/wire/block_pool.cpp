// block_pool: bounded recycling of large block storage (see bytes.hpp).
#include <mutex>
#include <unordered_map>
#include <vector>

#include "wire/bytes.hpp"

namespace rendr::wire::block_pool {

namespace {

// Smaller blocks come cheaply from malloc's free lists; only multi-page ones are pooled.
constexpr std::size_t kMinPooled = 16 * 1024;
// Storage kept idle across all sizes; beyond it, freed storage goes back to malloc.
constexpr std::size_t kMaxIdleBytes = 64 * 1024 * 1024;

struct Pool {
  std::mutex mu;
  std::unordered_map<std::size_t, std::vector<std::unique_ptr<Byte[]>>> idle;
  std::size_t idle_bytes = 0;
};

Pool& pool() {
  // Leaked on purpose: blocks may be freed by static destructors after the pool would be gone.
  static Pool* instance = new Pool;
  return *instance;
}

}  // namespace

std::unique_ptr<Byte[]> take(std::size_t capacity) {
  if (capacity >= kMinPooled) {
    Pool& p = pool();
    std::lock_guard lock(p.mu);
    auto it = p.idle.find(capacity);
    if (it != p.idle.end() && !it->second.empty()) {
      auto storage = std::move(it->second.back());
      it->second.pop_back();
      p.idle_bytes -= capacity;
      return storage;
    }
  }
  return std::unique_ptr<Byte[]>(new Byte[capacity]);
}

void give(std::unique_ptr<Byte[]> storage, std::size_t capacity) {
  if (!storage || capacity < kMinPooled) return;
  Pool& p = pool();
  std::lock_guard lock(p.mu);
  if (p.idle_bytes + capacity > kMaxIdleBytes) return;  // `storage` is freed on return
  p.idle_bytes += capacity;
  p.idle[capacity].push_back(std::move(storage));
}

}  // namespace rendr::wire::block_pool
