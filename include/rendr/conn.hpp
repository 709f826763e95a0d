#pragma once
// rendr::Conn — one stable byte-stream connection carried over migrating paths.
//
// Models asio's SyncReadStream / SyncWriteStream / AsyncReadStream / AsyncWriteStream, so
// asio::read, asio::async_write, coroutines (use_awaitable), futures and callbacks all work.
// A path change never surfaces here; only the peer's clean close reads as asio::error::eof,
// and only "no path for longer than the migration budget" as errc::migration_budget_exceeded.
//
// Threading (see engine.hpp): a Conn lives on its Engine's io_context; get_executor() is that
// context's executor, so with rendr::Engine(app_context) a Conn is an I/O object of the
// application's own io_context. Any method may be called from any thread, as for an Asio socket
// (one pending read and one pending write at a time). Async operations complete on the
// handler's associated executor, never inline. The blocking read_some/write_some wait for the
// engine's threads; on one of those threads they fail at once with
// errc::blocking_call_on_engine_thread instead of deadlocking.
#include <cstddef>
#include <functional>
#include <memory>
#include <system_error>

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/buffer.hpp>

#include "rendr/detail/completion.hpp"
#include "rendr/error.hpp"
#include "rendr/stats.hpp"
#include "rendr/types.hpp"

namespace rendr {

namespace detail {

// Implemented by the runtime; Conn is a thin handle over it.
class ConnCore {
 public:
  virtual ~ConnCore() = default;
  virtual asio::any_io_executor executor() = 0;
  // Blocking I/O: waits for at least one byte (or buffer space), EOF or an error.
  virtual std::size_t read_some(asio::mutable_buffer buffer, std::error_code& ec) = 0;
  virtual std::size_t write_some(asio::const_buffer buffer, std::error_code& ec) = 0;
  virtual void async_read_some(asio::mutable_buffer buffer, Completion done) = 0;
  virtual void async_write_some(asio::const_buffer buffer, Completion done) = 0;
  virtual void close() = 0;
  virtual void abort() = 0;

  virtual FlowId flow_id() const = 0;
  virtual std::error_code migrate(PathId id) = 0;
  virtual PathId active_path() const = 0;
  virtual PathId add_path(const PathSpec& spec, std::error_code& ec) = 0;
  virtual std::error_code remove_path(PathId id) = 0;
  virtual std::string state() const = 0;
  virtual Mode mode() const = 0;
  virtual std::error_code set_mode(Mode m) = 0;
  virtual std::uint64_t migration_count() const = 0;
  virtual ConnStats stats() const = 0;
  virtual void on_migrate(std::function<void(PathId old_path, PathId new_path, MigrateCause)>) = 0;
};

template <class BufferSequence>
auto first_buffer(const BufferSequence& buffers) {
  auto it = asio::buffer_sequence_begin(buffers);
  const auto end = asio::buffer_sequence_end(buffers);
  for (; it != end; ++it)
    if (asio::buffer(*it).size() != 0) return asio::buffer(*it);
  return asio::buffer(*asio::buffer_sequence_begin(buffers), 0);
}

}  // namespace detail

class Conn {
 public:
  using executor_type = asio::any_io_executor;

  Conn() = default;
  explicit Conn(std::shared_ptr<detail::ConnCore> core) : core_(std::move(core)) {}

  bool is_open() const { return core_ != nullptr; }
  executor_type get_executor() { return core_->executor(); }

  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers, std::error_code& ec) {
    if (!check(ec)) return 0;
    return core_->read_some(detail::first_buffer(buffers), ec);
  }
  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers) {
    std::error_code ec;
    const std::size_t n = read_some(buffers, ec);
    if (ec) throw std::system_error(ec, "rendr::Conn::read_some");
    return n;
  }

  template <class ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers, std::error_code& ec) {
    if (!check(ec)) return 0;
    return core_->write_some(detail::first_buffer(buffers), ec);
  }
  template <class ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers) {
    std::error_code ec;
    const std::size_t n = write_some(buffers, ec);
    if (ec) throw std::system_error(ec, "rendr::Conn::write_some");
    return n;
  }

  template <class MutableBufferSequence, class CompletionToken>
  auto async_read_some(const MutableBufferSequence& buffers, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(std::error_code, std::size_t)>(
        [core = core_](auto handler, asio::mutable_buffer buffer) {
          auto ex = core->executor();
          core->async_read_some(buffer, detail::Completion(std::move(handler), ex));
        },
        token, detail::first_buffer(buffers));
  }

  template <class ConstBufferSequence, class CompletionToken>
  auto async_write_some(const ConstBufferSequence& buffers, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(std::error_code, std::size_t)>(
        [core = core_](auto handler, asio::const_buffer buffer) {
          auto ex = core->executor();
          core->async_write_some(buffer, detail::Completion(std::move(handler), ex));
        },
        token, detail::first_buffer(buffers));
  }

  // Graceful close of the sending direction: the peer reads EOF after every byte written so
  // far. Reading goes on until the peer closes too; the flow ends when both have.
  void close() {
    if (core_) core_->close();
  }
  // Abandons the flow at once (the peer sees errc::peer_aborted).
  void abort() {
    if (core_) core_->abort();
  }

  FlowId flow_id() const { return core_->flow_id(); }

  // ---- admin
  std::error_code migrate(PathId id) { return core_->migrate(id); }
  PathId active_path() const { return core_->active_path(); }
  PathId add_path(const PathSpec& spec, std::error_code& ec) { return core_->add_path(spec, ec); }
  PathId add_path(const PathSpec& spec) {
    std::error_code ec;
    const PathId id = add_path(spec, ec);
    if (ec) throw std::system_error(ec, "rendr::Conn::add_path");
    return id;
  }
  std::error_code remove_path(PathId id) { return core_->remove_path(id); }
  std::string state() const { return core_->state(); }
  Mode mode() const { return core_->mode(); }
  // Switches the scheduling mode at run time, announced to the peer in-band so both directions
  // agree: prime<->race and prime<->bond; race<->bond returns errc::illegal_mode_switch.
  std::error_code set_mode(Mode m) { return core_->set_mode(m); }
  std::uint64_t migration_count() const { return core_->migration_count(); }
  std::uint64_t recv_queue_hwm() const { return stats().recv_queue_hwm; }
  std::uint64_t recv_dups() const { return stats().recv_dups; }
  std::uint64_t bond_stuck_skips() const { return stats().bond_stuck_skips; }
  ConnStats stats() const { return core_->stats(); }
  // Called after every change of the active path: on get_executor() (an engine thread, never
  // inline inside the call that caused it, e.g. migrate() or write_some()), in order, one at a
  // time. Never called once the last copy of this Conn has been dropped: dropping it on another
  // thread waits for a callback that is running to return; dropping it inside the callback is
  // fine (so do not drop it while holding a lock the callback takes). The callback should not
  // hold a copy of the Conn (a cycle: the flow would never end).
  void on_migrate(std::function<void(PathId old_path, PathId new_path, MigrateCause)> callback) {
    core_->on_migrate(std::move(callback));
  }

 private:
  bool check(std::error_code& ec) {
    if (core_) return true;
    ec = errc::not_connected;
    return false;
  }
  std::shared_ptr<detail::ConnCore> core_;
};

}  // namespace rendr
