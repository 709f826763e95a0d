#pragma once
// rendr::Conn — one stable byte-stream connection carried over migrating paths.
//
// Models asio's SyncReadStream / SyncWriteStream / AsyncReadStream / AsyncWriteStream, so
// asio::read, asio::async_write, coroutines (use_awaitable), futures and callbacks all work, and
// it can be the next layer of asio::ssl::stream<Conn> or asio::ssl::stream<Conn&> (it is its
// own lowest layer). A path change never surfaces here; only the peer's clean close reads as
// asio::error::eof, and only "no path for longer than the migration budget" as
// errc::migration_budget_exceeded.
//
// "asio" here is rendr::asio and error_code is rendr::error_code (asio.hpp): standalone Asio and
// std::error_code, or Boost.Asio and boost::system::error_code in the Boost flavour, where a
// Conn is a Boost.Beast stream (beast.hpp).
//
// Threading (see engine.hpp)
//  - A Conn lives on its Engine's io_context; get_executor() is that context's executor, so with
//    rendr::Engine(app_context) a Conn is an I/O object of the application's own io_context.
//  - A Conn is a handle: copies share one connection. Any member may be called from any thread;
//    the connection serializes them internally. As with an Asio socket, at most one read and one
//    write may be outstanding at a time (a second one completes with asio::error::in_progress).
//  - Async operations complete through the handler's associated executor (default: the
//    engine's, get_executor()) and never inline inside the initiating call.
//  - The blocking read_some/write_some wait for the engine's threads; on one of those threads
//    they fail at once with errc::blocking_call_on_engine_thread instead of deadlocking.
//
// Cancellation
//  - async_read_some / async_write_some honour the handler's cancellation slot for the
//    terminal, partial and total types: a pending operation has transferred nothing (bytes are
//    copied in one step, at completion), so cancelling it has no side effect at all. It then
//    completes with asio::error::operation_aborted and 0 bytes, and rendr never touches its
//    buffers again. Bytes that arrive afterwards go to the next read: nothing is lost or
//    duplicated. An operation whose bytes were already copied when the cancellation arrived
//    completes normally with them (the cancellation comes too late and is ignored).
//  - A cancellation_signal must be emitted on the handler's executor (Asio's rule for every
//    cancellation slot); the awaitable operators and parallel_group do so.
//  - cancel() does the same for every pending async operation of this connection, from any
//    thread. Blocking calls are not cancelled (as with asio sockets).
//  - Cancellation never harms the connection; abort() is what ends it.
//
// An empty Conn (default-constructed or moved-from) is not open: its operations fail with
// errc::not_connected, async ones through the handler's associated executor; its queries return
// neutral values (flow_id() all zero, active_path() kNoPath, state() "none", stats() default,
// migration_count() 0, mode() prime) and get_executor() an empty executor.
//
// A Conn may outlive its Engine: once the engine is destroyed every operation fails with
// errc::not_connected, pending ones included (a pending handler whose executor was the
// engine's own is destroyed, never run), and dropping the Conn is harmless. (Do not drop
// the last copy of a Conn on one thread while the engine is being destroyed on another.)
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

#include "rendr/asio.hpp"

#include "rendr/detail/buffers.hpp"
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
  virtual bool is_open() const = 0;
  // Blocking I/O: waits for at least one byte (or buffer space), EOF or an error.
  virtual std::size_t read_some(const MutableBuffers& buffers, error_code& ec) = 0;
  virtual std::size_t write_some(const ConstBuffers& buffers, error_code& ec) = 0;
  // `op` identifies the operation for cancel_op (see next_op_id).
  virtual void async_read_some(const MutableBuffers& buffers, Completion done,
                               std::uint64_t op) = 0;
  virtual void async_write_some(const ConstBuffers& buffers, Completion done, std::uint64_t op) = 0;
  // Packet flows (rendr::PacketConn, packet_conn.hpp): one whole message per call.
  virtual std::size_t send_message(asio::const_buffer message, error_code& ec) = 0;
  virtual std::size_t receive_message(asio::mutable_buffer out, error_code& ec) = 0;
  virtual void async_send_message(asio::const_buffer message, Completion done,
                                  std::uint64_t op) = 0;
  virtual void async_receive_message(asio::mutable_buffer out, Completion done,
                                     std::uint64_t op) = 0;
  // Completes pending operation `op` with operation_aborted if it is still pending.
  virtual void cancel_op(std::uint64_t op) = 0;
  // Completes every pending async operation with operation_aborted.
  virtual void cancel() = 0;
  virtual void close() = 0;
  virtual void abort() = 0;

  virtual FlowId flow_id() const = 0;
  virtual error_code migrate(PathId id) = 0;
  virtual error_code migrate_local_address(PathId id, const std::string& local_host_port) {
    (void)id;
    (void)local_host_port;
    return std::make_error_code(std::errc::operation_not_supported);
  }
  virtual PathId active_path() const = 0;
  virtual PathId add_path(const PathSpec& spec, error_code& ec) = 0;
  virtual error_code remove_path(PathId id) = 0;
  virtual std::string state() const = 0;
  virtual Mode mode() const = 0;
  virtual error_code set_mode(Mode m) = 0;
  virtual std::uint64_t migration_count() const = 0;
  virtual ConnStats stats() const = 0;
  virtual void on_migrate(std::function<void(PathId old_path, PathId new_path, MigrateCause)>) = 0;
};

// Process-wide unique ids of async operations, so a late cancellation never hits a later one.
inline std::uint64_t next_op_id() {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

// Installed in a handler's cancellation slot while its operation is pending.
class CancelOp {
 public:
  CancelOp(std::weak_ptr<ConnCore> core, std::uint64_t op) : core_(std::move(core)), op_(op) {}
  void operator()(asio::cancellation_type type) {
    constexpr auto supported = asio::cancellation_type::terminal |
                               asio::cancellation_type::partial | asio::cancellation_type::total;
    if ((type & supported) == asio::cancellation_type::none) return;
    if (auto core = core_.lock()) core->cancel_op(op_);
  }

 private:
  std::weak_ptr<ConnCore> core_;
  std::uint64_t op_;
};

template <class Handler>
void install_cancellation(Handler& handler, const std::shared_ptr<ConnCore>& core,
                          std::uint64_t op) {
  auto slot = asio::get_associated_cancellation_slot(handler);
  if (slot.is_connected()) slot.template emplace<CancelOp>(core, op);
}

// An async operation on an empty Conn: fails through the handler's associated executor.
template <class Handler>
void fail_not_connected(Handler handler) {
  Completion(std::move(handler), asio::system_executor())(errc::not_connected, 0);
}

}  // namespace detail

// One stable byte-stream connection (the file comment above says how it behaves: threading,
// cancellation, empty Conns, a Conn outliving its Engine). Made by Dialer and Listener.
class Conn {
 public:
  // The engine's executor, type-erased (an io_context executor).
  using executor_type = asio::any_io_executor;

  // An empty Conn: not open, every operation fails with errc::not_connected.
  Conn() = default;
  // Used by Dialer and Listener; an application never builds a core itself.
  explicit Conn(std::shared_ptr<detail::ConnCore> core) : core_(std::move(core)) {}

  // True while the flow can still carry data: false for an empty Conn, after abort(), after
  // the flow failed (budget, peer abort, protocol error) or finished (both sides closed), and
  // once the engine is gone. After close() it stays true until the peer has closed too, since
  // the reading direction still works.
  bool is_open() const { return core_ != nullptr && core_->is_open(); }
  // The executor of the Conn's engine (an empty executor for an empty Conn).
  executor_type get_executor() { return core_ ? core_->executor() : executor_type(); }

  // A Conn is its own lowest layer (what asio::ssl::stream<Conn> and stream<Conn&> need).
  using lowest_layer_type = Conn;
  // This Conn itself.
  lowest_layer_type& lowest_layer() { return *this; }
  // This Conn itself.
  const lowest_layer_type& lowest_layer() const { return *this; }

  // Every non-empty buffer of the sequence (up to detail::kMaxBuffers) is filled in order.
  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers, error_code& ec) {
    if (!check(ec)) return 0;
    return core_->read_some(detail::gather<asio::mutable_buffer>(buffers), ec);
  }
  // As above; a failure throws std::system_error.
  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers) {
    error_code ec;
    const std::size_t n = read_some(buffers, ec);
    if (ec) throw std::system_error(ec, "rendr::Conn::read_some");
    return n;
  }

  // Every non-empty buffer of the sequence (up to detail::kMaxBuffers) is sent in order.
  template <class ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers, error_code& ec) {
    if (!check(ec)) return 0;
    return core_->write_some(detail::gather<asio::const_buffer>(buffers), ec);
  }
  // As above; a failure throws std::system_error.
  template <class ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers) {
    error_code ec;
    const std::size_t n = write_some(buffers, ec);
    if (ec) throw std::system_error(ec, "rendr::Conn::write_some");
    return n;
  }

  // Reads at least one byte into the buffers (filled in order), or fails. Completion signature
  // void(error_code, std::size_t). Cancellable: see the header.
  template <class MutableBufferSequence, class CompletionToken>
  auto async_read_some(const MutableBufferSequence& buffers, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(error_code, std::size_t)>(
        [core = core_](auto handler, const detail::MutableBuffers& list) {
          if (!core) return detail::fail_not_connected(std::move(handler));
          const std::uint64_t op = detail::next_op_id();
          detail::install_cancellation(handler, core, op);
          auto ex = core->executor();
          core->async_read_some(list, detail::Completion(std::move(handler), ex), op);
        },
        token, detail::gather<asio::mutable_buffer>(buffers));
  }

  // Writes at least one byte of the buffers (in order), or fails. Completion signature
  // void(error_code, std::size_t). Cancellable: see the header.
  template <class ConstBufferSequence, class CompletionToken>
  auto async_write_some(const ConstBufferSequence& buffers, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(error_code, std::size_t)>(
        [core = core_](auto handler, const detail::ConstBuffers& list) {
          if (!core) return detail::fail_not_connected(std::move(handler));
          const std::uint64_t op = detail::next_op_id();
          detail::install_cancellation(handler, core, op);
          auto ex = core->executor();
          core->async_write_some(list, detail::Completion(std::move(handler), ex), op);
        },
        token, detail::gather<asio::const_buffer>(buffers));
  }

  // Completes every pending async read and write of this connection (all copies of the handle)
  // with asio::error::operation_aborted; the connection stays usable. Any thread.
  void cancel() {
    if (core_) core_->cancel();
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

  // The flow's 128-bit id: fixed for the flow's life, the same on both ends (all zero when empty).
  FlowId flow_id() const { return core_ ? core_->flow_id() : FlowId{}; }

  // ---- admin
  // Makes path `id` the active one (prime mode); the peer follows. Bytes in flight on the old
  // path are not lost. Errors: no such path, path not up, not_connected.
  error_code migrate(PathId id) { return core_ ? core_->migrate(id) : not_connected(); }
  // Moves path `id` to a new local address ("host:port", numeric, port 0 for any) without
  // interrupting the flow, on a client's quic:// or udpflow:// path: a quic:// path migrates its
  // QUIC connection (the client binds a new UDP socket, validates the path through it and moves
  // there; the server follows); a udpflow:// path binds a new UDP socket and sends from it at
  // once, still reading the old one until the server, which follows once the new address
  // answered its challenge, sends to the new one. Returns at once: errors it can see now (no such
  // path, path not up, an unparsable address (invalid_argument), another address family, an
  // address not of this host, operation_in_progress, operation_not_supported for tcp:// paths and
  // on the server side); a move whose validation fails leaves the path where it was.
  error_code migrate_local_address(PathId id, const std::string& local_host_port) {
    return core_ ? core_->migrate_local_address(id, local_host_port) : not_connected();
  }
  // The path prime mode sends on now (kNoPath when empty or none is up).
  PathId active_path() const { return core_ ? core_->active_path() : kNoPath; }
  // Opens one more path to the peer and joins it to the flow; returns its id at once (the path
  // comes up in the background; stats() shows its state).
  PathId add_path(const PathSpec& spec, error_code& ec) {
    if (!check(ec)) return kNoPath;
    return core_->add_path(spec, ec);
  }
  // As above; a failure throws std::system_error.
  PathId add_path(const PathSpec& spec) {
    error_code ec;
    const PathId id = add_path(spec, ec);
    if (ec) throw std::system_error(ec, "rendr::Conn::add_path");
    return id;
  }
  // Closes path `id`; if it was the active one the flow moves to another path first.
  error_code remove_path(PathId id) { return core_ ? core_->remove_path(id) : not_connected(); }
  // "opening", "established", "migrating", "closed", "failed"; "none" for an empty Conn.
  std::string state() const { return core_ ? core_->state() : "none"; }
  // The scheduling mode now (prime, race or bond).
  Mode mode() const { return core_ ? core_->mode() : Mode::prime; }
  // Switches the scheduling mode at run time, announced to the peer in-band so both directions
  // agree: prime<->race and prime<->bond; race<->bond returns errc::illegal_mode_switch.
  error_code set_mode(Mode m) { return core_ ? core_->set_mode(m) : not_connected(); }
  // Changes of the active path so far, of every cause.
  std::uint64_t migration_count() const { return core_ ? core_->migration_count() : 0; }
  // The receive queue's high-water mark in bytes (stats().recv_queue_hwm).
  std::uint64_t recv_queue_hwm() const { return stats().recv_queue_hwm; }
  // Duplicate copies received and dropped, e.g. in race mode (stats().recv_dups).
  std::uint64_t recv_dups() const { return stats().recv_dups; }
  // Times bond mode skipped a path that was stuck (stats().bond_stuck_skips).
  std::uint64_t bond_stuck_skips() const { return stats().bond_stuck_skips; }
  // A consistent snapshot of the flow and every path (stats.hpp).
  ConnStats stats() const { return core_ ? core_->stats() : ConnStats{}; }
  // Called after every change of the active path: on get_executor() (an engine thread, never
  // inline inside the call that caused it, e.g. migrate() or write_some()), in order, one at a
  // time. Never called once the last copy of this Conn has been dropped: dropping it on another
  // thread waits for a callback that is running to return; dropping it inside the callback is
  // fine (so do not drop it while holding a lock the callback takes). The callback should not
  // hold a copy of the Conn (a cycle: the flow would never end). Ignored on an empty Conn.
  void on_migrate(std::function<void(PathId old_path, PathId new_path, MigrateCause)> callback) {
    if (core_) core_->on_migrate(std::move(callback));
  }

 private:
  static error_code not_connected() { return errc::not_connected; }
  bool check(error_code& ec) {
    if (core_) return true;
    ec = errc::not_connected;
    return false;
  }
  std::shared_ptr<detail::ConnCore> core_;
};

}  // namespace rendr
