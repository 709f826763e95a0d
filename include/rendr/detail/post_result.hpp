#pragma once
// Turns a (possibly move-only) completion handler for void(std::error_code, Result) into a
// copyable callback that hands the result to the handler's associated executor (as asio
// requires), keeping that executor busy until then. The callback is called at most once.
#include <functional>
#include <memory>
#include <system_error>
#include <utility>

#include <asio/associated_executor.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>

namespace rendr::detail {

template <class Result, class Handler, class FallbackExecutor>
std::function<void(std::error_code, Result)> post_result(Handler handler,
                                                         const FallbackExecutor& fallback) {
  auto work = asio::make_work_guard(asio::get_associated_executor(handler, fallback));
  auto shared = std::make_shared<Handler>(std::move(handler));
  return [shared, work](std::error_code ec, Result result) mutable {
    auto ex = work.get_executor();
    asio::post(ex, [shared, w = std::move(work), ec, r = std::move(result)]() mutable {
      std::move (*shared)(ec, std::move(r));
    });
  };
}

}  // namespace rendr::detail
