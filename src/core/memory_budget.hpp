#pragma once
// The receive memory budget a listener shares among its flows. A flow reserves from it every
// byte of receive window it advertises beyond what the application has read, and gives bytes
// back as they are read, so the peers of all flows together can never have more than limit()
// bytes buffered at the listener (in memory, up to RecvBuffer::kMaxWaste times that for hostile
// framing). When it is exhausted, flows stop opening their windows: back-pressure, not loss.
// Thread-safe: flows on different strands share one.
#include <algorithm>
#include <atomic>
#include <cstddef>

namespace rendr::core {

class MemoryBudget {
 public:
  // A new flow's first window: enough to start; it grows to the full window on its first read.
  static constexpr std::size_t kInitialWindow = 64 * 1024;

  explicit MemoryBudget(std::size_t limit) : limit_(limit) {}

  // Reserves up to `want` bytes; returns how many were granted (0 when exhausted).
  std::size_t reserve(std::size_t want) {
    std::size_t used = used_.load(std::memory_order_relaxed);
    for (;;) {
      const std::size_t grant = std::min(want, limit_ - std::min(used, limit_));
      if (grant == 0) return 0;
      if (used_.compare_exchange_weak(used, used + grant, std::memory_order_relaxed)) return grant;
    }
  }
  void release(std::size_t bytes) { used_.fetch_sub(bytes, std::memory_order_relaxed); }

  // Flows sharing the budget. One flow's window is capped at its fair share, so flows that went
  // idle after a burst (their grant cannot be taken back) hold little of it.
  void add_flow() { flows_.fetch_add(1, std::memory_order_relaxed); }
  void remove_flow() { flows_.fetch_sub(1, std::memory_order_relaxed); }
  std::size_t fair_share() const {
    const std::size_t flows = std::max<std::size_t>(1, flows_.load(std::memory_order_relaxed));
    return std::max(kInitialWindow, limit_ / flows);
  }

  std::size_t limit() const { return limit_; }
  std::size_t used() const { return used_.load(std::memory_order_relaxed); }
  std::size_t available() const { return limit_ - std::min(used(), limit_); }

 private:
  const std::size_t limit_;
  std::atomic<std::size_t> used_{0};
  std::atomic<std::size_t> flows_{0};
};

}  // namespace rendr::core
