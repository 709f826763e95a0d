// rendr::Engine: an io_context with a work guard and N threads running it, or the application's
// io_context as it is.
#include "rendr/engine.hpp"

#include <algorithm>
#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include <openssl/crypto.h>
#include <asio/executor_work_guard.hpp>

#include "carrier/carrier.hpp"
#include "runtime/flow_registry.hpp"
#include "runtime/keepalive.hpp"

namespace rendr {

namespace {

// How long the destructor lets closing flows finish: their close handshake takes a few round
// trips and their sockets' graceful shutdown one more. A flow whose peer has vanished is cut
// off after this.
constexpr std::chrono::seconds kCloseLinger{3};

}  // namespace

struct Engine::Impl {
  std::optional<asio::io_context> owned;  // empty: the application's context
  asio::io_context* context = nullptr;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::vector<std::thread> threads;
};

Engine::Engine(unsigned threads) : impl_(std::make_unique<Impl>()) {
  // Constructed first, the transport registry outlives the default engine (a static too), whose
  // destructor may still re-dial paths of closing flows at process exit.
  (void)carrier::Registry::instance();
  impl_->context = &impl_->owned.emplace();
  impl_->work.emplace(impl_->context->get_executor());
  impl_->threads.reserve(threads);
  for (unsigned i = 0; i < threads; ++i) {
    impl_->threads.emplace_back([ctx = impl_->context] { ctx->run(); });
  }
}

Engine::Engine(asio::io_context& context) : impl_(std::make_unique<Impl>()) {
  (void)carrier::Registry::instance();
  impl_->context = &context;
}

Engine::~Engine() {
  // The application's context: its flows are registered with the context (KeepAlive) and
  // finish, or are released, as the application runs or destroys it. Waiting here could
  // deadlock (this thread may be the one running it).
  if (!impl_->owned) return;
  // A flow closing both ways (or shutting its sockets down) still owes its peer frames, e.g.
  // the ACK of the last bytes: without them the peer waits out its whole migration budget.
  // Only the engine's own threads can send them, so they keep running until then (bounded).
  const bool on_own_thread =
      std::any_of(impl_->threads.begin(), impl_->threads.end(),
                  [](const std::thread& t) { return t.get_id() == std::this_thread::get_id(); });
  if (!impl_->threads.empty() && !on_own_thread) {
    (void)asio::use_service<runtime::KeepAlive>(*impl_->context)
        .wait_closing(std::chrono::steady_clock::now() + kCloseLinger);
  }
  impl_->work.reset();
  impl_->context->stop();
  for (auto& t : impl_->threads) {
    if (t.get_id() == std::this_thread::get_id()) {
      t.detach();  // destroyed from one of its own threads: cannot join itself
    } else {
      t.join();
    }
  }
  // Release sessions and listeners held for the I/O side while the reactor still exists.
  asio::use_service<runtime::KeepAlive>(*impl_->context).clear();
}

asio::io_context& Engine::context() {
  return *impl_->context;
}

asio::any_io_executor Engine::executor() {
  return impl_->context->get_executor();
}

EngineStats Engine::stats() const {
  return asio::use_service<runtime::FlowRegistry>(*impl_->context).snapshot();
}

Engine& Engine::default_engine() {
  // OpenSSL registers its cleanup with atexit on first use. Initialised before the engine, it is
  // cleaned up after the engine's destructor (exit handlers run in reverse), whose thread may
  // still run handshakes (HMAC) of flows winding down while it waits for them.
  // (Options 0 would return at once without initialising anything.)
  static const bool openssl_ready = OPENSSL_init_crypto(OPENSSL_INIT_ADD_ALL_DIGESTS, nullptr) == 1;
  static Engine engine(1);
  (void)openssl_ready;
  return engine;
}

}  // namespace rendr
