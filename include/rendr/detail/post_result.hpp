#pragma once
// Turns a (possibly move-only) completion handler for void(error_code, Result) into a
// copyable callback that hands the result to the handler's associated executor (as asio
// requires), keeping that executor busy until then. The callback is called at most once. Right
// before the handler runs, its cancellation slot (if any) is cleared, as Asio's own operations
// do: the slot's cancellation handler belongs to the finished operation.
#include <functional>
#include <memory>
#include <optional>
#include <system_error>
#include <utility>

#include "rendr/asio.hpp"

namespace rendr::detail {

template <class Result, class Handler, class FallbackExecutor>
std::function<void(error_code, Result)> post_result(Handler handler,
                                                    const FallbackExecutor& fallback) {
  auto work = asio::make_work_guard(asio::get_associated_executor(handler, fallback));
  auto slot = std::make_shared<std::optional<Handler>>(std::move(handler));
  return [slot, work](error_code ec, Result result) mutable {
    // The handler moves into the posted function: nothing of it stays in this callback, which
    // its caller may destroy later, on its own thread, when the handler's executor (e.g. a
    // strand of a context the application has destroyed since) must no longer be touched.
    Handler h = std::move(**slot);
    slot->reset();
    // Outstanding work until asio::post has returned, not only until the handler ran: else the
    // application's run() may return, and its context be destroyed, while this thread is still
    // inside post() waking it (TSan: TokenTest.AsyncDialAndAcceptTakeEveryCompletionToken).
    const auto posting = std::move(work);
    asio::post(posting.get_executor(),
               [h = std::move(h), w = posting, ec, r = std::move(result)]() mutable {
                 auto cancellation = asio::get_associated_cancellation_slot(h);
                 if (cancellation.is_connected()) cancellation.clear();
                 std::move(h)(ec, std::move(r));
               });
  };
}

}  // namespace rendr::detail
