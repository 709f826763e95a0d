#pragma once
// Keeps runtime objects (sessions) alive while the I/O side still needs them, e.g. a flow whose
// application handle was dropped after close() but whose FIN exchange is still running.
//
// The registry is an Asio service of the execution context, so everything it holds is released
// when the context shuts down (Engine destructor), never leaked and never outliving the
// context's reactor.
#include <memory>
#include <mutex>
#include <unordered_map>

#include <asio/any_io_executor.hpp>
#include <asio/execution_context.hpp>
#include <asio/query.hpp>

namespace rendr::runtime {

class KeepAlive final : public asio::execution_context::service {
 public:
  static inline asio::execution_context::id id;

  explicit KeepAlive(asio::execution_context& ctx) : asio::execution_context::service(ctx) {}

  static KeepAlive& of(const asio::any_io_executor& ex) {
    return asio::use_service<KeepAlive>(asio::query(ex, asio::execution::context));
  }

  void hold(std::shared_ptr<void> object) {
    std::lock_guard lock(mu_);
    if (shut_down_) return;
    void* key = object.get();
    held_.emplace(key, std::move(object));
  }

  // Returns the reference so that the caller drops it outside the registry's mutex.
  [[nodiscard]] std::shared_ptr<void> release(const void* object) {
    std::lock_guard lock(mu_);
    auto it = held_.find(const_cast<void*>(object));
    if (it == held_.end()) return nullptr;
    auto ref = std::move(it->second);
    held_.erase(it);
    return ref;
  }

  // Drops everything (the context is going away).
  void clear() {
    std::unordered_map<void*, std::shared_ptr<void>> held;
    {
      std::lock_guard lock(mu_);
      shut_down_ = true;
      held.swap(held_);
    }
    held.clear();
  }

 private:
  void shutdown() override { clear(); }

  std::mutex mu_;
  bool shut_down_ = false;
  std::unordered_map<void*, std::shared_ptr<void>> held_;
};

}  // namespace rendr::runtime
