#pragma once
// A move-only, type-erased I/O completion that hands the result to the original handler's
// associated executor (as asio requires), keeping that executor busy until then. Right before
// the handler runs, its cancellation slot (if any) is cleared, as Asio's own operations do: the
// slot's cancellation handler belongs to the finished operation.
#include <cstddef>
#include <memory>
#include <system_error>
#include <utility>

#include "rendr/asio.hpp"

namespace rendr::detail {

class Completion {
 public:
  Completion() = default;

  template <class Handler, class FallbackExecutor>
  Completion(Handler&& handler, const FallbackExecutor& fallback)
      : impl_(std::make_unique<Model<std::decay_t<Handler>, FallbackExecutor>>(
            std::forward<Handler>(handler), fallback)) {}

  explicit operator bool() const { return impl_ != nullptr; }

  // Completes the operation; never runs the handler inline. For the initiating call.
  void operator()(error_code ec, std::size_t n) {
    auto impl = std::move(impl_);
    impl->complete(ec, n, false);
  }

  // Completes the operation from outside its initiating call (e.g. an I/O handler): runs the
  // handler right here if this thread already runs the handler's executor (asio::dispatch),
  // as Asio's own operations do, else posts it there.
  void dispatch(error_code ec, std::size_t n) {
    auto impl = std::move(impl_);
    impl->complete(ec, n, true);
  }

 private:
  struct Concept {
    virtual ~Concept() = default;
    virtual void complete(error_code ec, std::size_t n, bool may_run_here) = 0;
  };
  template <class Handler, class FallbackExecutor>
  struct Model final : Concept {
    using Executor = asio::associated_executor_t<Handler, FallbackExecutor>;
    Model(Handler&& h, const FallbackExecutor& fallback)
        : handler(std::move(h)),
          work(asio::make_work_guard(asio::get_associated_executor(handler, fallback))) {}
    void complete(error_code ec, std::size_t n, bool may_run_here) override {
      // Outstanding work until asio::post/dispatch has returned, not only until the handler
      // ran: else the application's run() may return, and its context be destroyed, while this
      // thread is still inside post() waking it (TSan: example.tls_echo under load).
      const auto posting = std::move(work);
      auto ex = posting.get_executor();
      auto invoke = [h = std::move(handler), w = posting, ec, n]() mutable {
        auto slot = asio::get_associated_cancellation_slot(h);
        if (slot.is_connected()) slot.clear();
        std::move(h)(ec, n);
      };
      if (may_run_here) {
        asio::dispatch(ex, std::move(invoke));
      } else {
        asio::post(ex, std::move(invoke));
      }
    }
    Handler handler;
    asio::executor_work_guard<Executor> work;
  };
  std::unique_ptr<Concept> impl_;
};

}  // namespace rendr::detail
