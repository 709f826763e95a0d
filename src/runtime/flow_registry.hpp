#pragma once
// Every flow of one io_context, for Engine::stats(): the live sessions (held weakly, so the
// registry never keeps a flow alive) and the final counters of those that finished. An Asio
// service of the context, like KeepAlive, so an Engine over the application's io_context sees
// the same flows as any other Engine object over it.
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include <asio/any_io_executor.hpp>
#include <asio/execution_context.hpp>

#include "rendr/stats.hpp"

namespace rendr::runtime {

class Session;

class FlowRegistry final : public asio::execution_context::service {
 public:
  static inline asio::execution_context::id id;

  explicit FlowRegistry(asio::execution_context& ctx) : asio::execution_context::service(ctx) {}

  static FlowRegistry& of(const asio::any_io_executor& ex);

  // The flow is established (client) or authenticated (server). Called outside its lock.
  void started(const std::shared_ptr<Session>& session);
  // The flow has finished: `final` is its last snapshot. Called outside its lock.
  void ended(const Session* session, const ConnStats& final, bool failed);

  // Calls each live session's stats() after releasing the registry's lock.
  EngineStats snapshot();

 private:
  void shutdown() override;

  std::mutex mu_;
  std::unordered_map<const Session*, std::weak_ptr<Session>> live_;
  EngineStats ended_;  // counters and totals of the finished flows; `flows` stays empty
};

}  // namespace rendr::runtime
