#pragma once
// Keeps runtime objects (sessions) alive while the I/O side still needs them, e.g. a flow whose
// application handle was dropped after close() but whose FIN exchange is still running.
//
// The registry is an Asio service of the execution context, so everything it holds is released
// when the context shuts down (Engine destructor), never leaked and never outliving the
// context's reactor.
//
// A held object may also be marked *closing*: it is finishing on its own (a flow in its close
// handshake, or one whose sockets are shutting down) and the peer needs what it still sends, its
// last ACK or CLOSE. The Engine destructor waits (bounded) until no closing object is held, so
// a process that exits right after its flow ended does not cut it off (issue 7, defect 7).
//
// Objects may also be *watched*, held or not: when the context shuts down each watcher is called
// (while the context still exists), so an object the application still owns (a session behind
// a Conn) can drop its timers and sockets before the context's services go away.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

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
    if (closing_.erase(object) > 0 && closing_.empty()) closing_done_.notify_all();
    return ref;
  }

  // `object` (held) will release itself once it has finished closing.
  void mark_closing(const void* object) {
    std::lock_guard lock(mu_);
    if (held_.count(const_cast<void*>(object)) > 0) closing_.insert(object);
  }

  // Waits until no held object is closing, or until `deadline`; true if none is left. The
  // context's threads must be running (they do the closing).
  bool wait_closing(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mu_);
    return closing_done_.wait_until(lock, deadline, [&] { return closing_.empty(); });
  }

  // `on_shutdown` runs once when the context shuts down, unless unwatch(object) came first.
  void watch(const void* object, std::function<void()> on_shutdown) {
    std::lock_guard lock(mu_);
    if (shut_down_) return;
    watchers_.emplace(object, std::move(on_shutdown));
  }
  void unwatch(const void* object) {
    std::function<void()> dropped;  // destroyed outside the mutex
    std::lock_guard lock(mu_);
    auto it = watchers_.find(object);
    if (it == watchers_.end()) return;
    dropped = std::move(it->second);
    watchers_.erase(it);
  }

  // Tells the watchers, then drops everything held (the context is going away).
  void clear() {
    std::unordered_map<void*, std::shared_ptr<void>> held;
    std::unordered_map<const void*, std::function<void()>> watchers;
    {
      std::lock_guard lock(mu_);
      shut_down_ = true;
      held.swap(held_);
      watchers.swap(watchers_);
      closing_.clear();
    }
    closing_done_.notify_all();
    for (auto& [object, on_shutdown] : watchers)
      on_shutdown();
    watchers.clear();
    held.clear();
  }

 private:
  void shutdown() override { clear(); }

  std::mutex mu_;
  bool shut_down_ = false;
  std::unordered_map<void*, std::shared_ptr<void>> held_;
  std::unordered_set<const void*> closing_;  // a subset of held_
  std::unordered_map<const void*, std::function<void()>> watchers_;
  std::condition_variable closing_done_;
};

}  // namespace rendr::runtime
