#pragma once
// Whether the calling thread is running an engine's io_context: a blocking call there would
// wait for work that only this thread can do (errc::blocking_call_on_engine_thread).
#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/query.hpp>

namespace rendr::runtime {

// `ex` is an executor of an Engine (or a strand of one), whose context is always an io_context.
inline bool on_engine_thread(const asio::any_io_executor& ex) {
  auto& io = static_cast<asio::io_context&>(asio::query(ex, asio::execution::context));
  return io.get_executor().running_in_this_thread();
}

}  // namespace rendr::runtime
