// rendr::Engine: an io_context, a work guard and N threads running it.
#include "rendr/engine.hpp"

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include <asio/executor_work_guard.hpp>

#include "carrier/carrier.hpp"
#include "runtime/keepalive.hpp"

namespace rendr {

namespace {

// How long the destructor lets closing flows finish: their close handshake takes a few round
// trips and their sockets' graceful shutdown one more. A flow whose peer has vanished is cut
// off after this.
constexpr std::chrono::seconds kCloseLinger{3};

}  // namespace

struct Engine::Impl {
  asio::io_context context;
  asio::executor_work_guard<asio::io_context::executor_type> work{context.get_executor()};
  std::vector<std::thread> threads;
};

Engine::Engine(unsigned threads) : impl_(std::make_unique<Impl>()) {
  // Constructed first, the transport registry outlives the default engine (a static too), whose
  // destructor may still re-dial paths of closing flows at process exit.
  (void)carrier::Registry::instance();
  impl_->threads.reserve(threads);
  for (unsigned i = 0; i < threads; ++i) {
    impl_->threads.emplace_back([ctx = &impl_->context] { ctx->run(); });
  }
}

Engine::~Engine() {
  // A flow closing both ways (or shutting its sockets down) still owes its peer frames, e.g.
  // the ACK of the last bytes: without them the peer waits out its whole migration budget.
  // Only the engine's own threads can send them, so they keep running until then (bounded).
  const bool on_own_thread =
      std::any_of(impl_->threads.begin(), impl_->threads.end(),
                  [](const std::thread& t) { return t.get_id() == std::this_thread::get_id(); });
  if (!impl_->threads.empty() && !on_own_thread) {
    (void)asio::use_service<runtime::KeepAlive>(impl_->context)
        .wait_closing(std::chrono::steady_clock::now() + kCloseLinger);
  }
  impl_->work.reset();
  impl_->context.stop();
  for (auto& t : impl_->threads) {
    if (t.get_id() == std::this_thread::get_id()) {
      t.detach();  // destroyed from one of its own threads: cannot join itself
    } else {
      t.join();
    }
  }
  // Release sessions and listeners held for the I/O side while the reactor still exists.
  asio::use_service<runtime::KeepAlive>(impl_->context).clear();
}

asio::io_context& Engine::context() {
  return impl_->context;
}

asio::any_io_executor Engine::executor() {
  return impl_->context.get_executor();
}

Engine& Engine::default_engine() {
  static Engine engine(1);
  return engine;
}

}  // namespace rendr
