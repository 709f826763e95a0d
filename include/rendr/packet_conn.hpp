#pragma once
// rendr::PacketConn — one stable message connection carried over migrating paths (packet mode,
// docs/design.md "Packet mode", docs/protocol.md §9a).
//
// Each send() is one message, each receive() returns exactly one whole message: boundaries are
// kept 1:1 over every transport (over a udpflow path a message rides in one datagram, over a TCP
// path it is one frame on the stream). Per flow, chosen by the dialer (PacketOptions):
//  - reliable (default): every message is delivered exactly once, sent again across loss and
//    migration; unreliable: a lost message is never sent again, and never delivered twice.
//  - ordered: delivered in the order sent; unordered (default): on arrival.
//
// Sizes
//  - A message of more than kMaxMessageSize bytes is refused with errc::message_too_large,
//    never truncated or split. An empty message is a message.
//  - A receive buffer smaller than the next message fails with errc::message_buffer_too_small
//    and the message stays queued; the size returned (and the async size) is that message's
//    size, so a buffer that large takes it. A buffer of kMaxMessageSize bytes always does.
//  - send() and receive() also take buffer sequences: one message gathered from, or scattered
//    over, several buffers (one copy through a kMaxMessageSize buffer on the stack).
//
// Everything else is Conn's (conn.hpp): threading, async completion (any completion token,
// signature void(error_code, std::size_t), never inline, through the handler's associated
// executor), cancellation (a pending operation has transferred nothing, so cancelling it has no
// side effect), at most one send and one receive outstanding (another one completes with
// asio::error::in_progress), empty handles failing with errc::not_connected, and the admin
// surface (migrate, add/remove path, modes, stats, on_migrate), shared with Conn. close() ends
// the sending direction: the peer's receive fails with asio::error::eof once it has received
// every message sent before it.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <system_error>
#include <utility>

#include "rendr/asio.hpp"

#include "rendr/conn.hpp"

namespace rendr {

namespace detail {
template <class T>
concept ConstBufferSequence = asio::is_const_buffer_sequence<T>::value;
template <class T>
concept MutableBufferSequence = asio::is_mutable_buffer_sequence<T>::value;
}  // namespace detail

// The largest message: it and its DATA header fit one 1200-byte datagram (docs/protocol.md §9a).
inline constexpr std::size_t kMaxMessageSize = 1153;

// A packet flow's options, chosen by the dialer and carried in its OPEN.
struct PacketOptions {
  bool reliable = true;  // delivered exactly once, across loss and migration
  bool ordered = false;  // delivered in the order sent, else on arrival
};

// Private inheritance: a PacketConn is not a byte stream (no read_some/write_some), but its
// admin surface is Conn's own.
class PacketConn : private Conn {
 public:
  // The engine's executor, type-erased, as Conn's.
  using executor_type = Conn::executor_type;

  // An empty PacketConn: not open, every operation fails with errc::not_connected.
  PacketConn() = default;
  // Used by Dialer and Listener; an application never builds a core itself.
  explicit PacketConn(std::shared_ptr<detail::ConnCore> core)
      : Conn(core), core_(std::move(core)) {}

  // Sends one message (all of `message`); returns its size. Blocks while the send buffer has
  // no room for it; on an engine thread it fails at once with
  // errc::blocking_call_on_engine_thread.
  std::size_t send(asio::const_buffer message, error_code& ec) {
    if (!check(ec)) return 0;
    return core_->send_message(message, ec);
  }
  // As above; a failure throws std::system_error.
  std::size_t send(asio::const_buffer message) {
    error_code ec;
    const std::size_t n = send(message, ec);
    if (ec) throw std::system_error(ec, "rendr::PacketConn::send");
    return n;
  }

  // One message gathered from a sequence of buffers (their bytes in order); the same as send()
  // of one buffer, which a sequence of one buffer is.
  template <detail::ConstBufferSequence Buffers>
  std::size_t send(const Buffers& message, error_code& ec) {
    const auto first = asio::buffer_sequence_begin(message);
    const auto last = asio::buffer_sequence_end(message);
    if (first == last) return send(asio::const_buffer(), ec);
    if (std::next(first) == last) return send(asio::const_buffer(*first), ec);
    if (!check(ec)) return 0;
    const std::size_t size = asio::buffer_size(message);
    if (size > kMaxMessageSize) {
      ec = errc::message_too_large;
      return 0;
    }
    std::array<std::uint8_t, kMaxMessageSize> gathered;
    asio::buffer_copy(asio::buffer(gathered.data(), size), message);
    return send(asio::const_buffer(gathered.data(), size), ec);
  }
  // As above; a failure throws std::system_error.
  template <detail::ConstBufferSequence Buffers>
  std::size_t send(const Buffers& message) {
    error_code ec;
    const std::size_t n = send(message, ec);
    if (ec) throw std::system_error(ec, "rendr::PacketConn::send");
    return n;
  }

  // Receives the next message into `out`; returns its size (see the header for a buffer too
  // small). Blocks until one arrives, the peer closed (asio::error::eof) or the flow failed.
  std::size_t receive(asio::mutable_buffer out, error_code& ec) {
    if (!check(ec)) return 0;
    return core_->receive_message(out, ec);
  }
  // As above; a failure throws std::system_error.
  std::size_t receive(asio::mutable_buffer out) {
    error_code ec;
    const std::size_t n = receive(out, ec);
    if (ec) throw std::system_error(ec, "rendr::PacketConn::receive");
    return n;
  }

  // One message scattered over a sequence of buffers, filled in order; a sequence smaller in
  // total than the message fails as a buffer too small does (the message stays queued).
  template <detail::MutableBufferSequence Buffers>
  std::size_t receive(const Buffers& out, error_code& ec) {
    const auto first = asio::buffer_sequence_begin(out);
    const auto last = asio::buffer_sequence_end(out);
    if (first == last) return receive(asio::mutable_buffer(), ec);
    if (std::next(first) == last) return receive(asio::mutable_buffer(*first), ec);
    std::array<std::uint8_t, kMaxMessageSize> staging;
    const std::size_t room = std::min(asio::buffer_size(out), kMaxMessageSize);
    const std::size_t n = receive(asio::mutable_buffer(staging.data(), room), ec);
    if (!ec) asio::buffer_copy(out, asio::const_buffer(staging.data(), n));
    return n;
  }
  // As above; a failure throws std::system_error.
  template <detail::MutableBufferSequence Buffers>
  std::size_t receive(const Buffers& out) {
    error_code ec;
    const std::size_t n = receive(out, ec);
    if (ec) throw std::system_error(ec, "rendr::PacketConn::receive");
    return n;
  }

  // Sends one message without blocking. Completion signature void(error_code,
  // std::size_t). The buffer must stay valid until completion. Cancellable like Conn's
  // operations.
  template <class CompletionToken>
  auto async_send(asio::const_buffer message, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(error_code, std::size_t)>(
        [core = core_](auto handler, asio::const_buffer buffer) {
          if (!core) return detail::fail_not_connected(std::move(handler));
          const std::uint64_t op = detail::next_op_id();
          detail::install_cancellation(handler, core, op);
          auto ex = core->executor();
          core->async_send_message(buffer, detail::Completion(std::move(handler), ex), op);
        },
        token, message);
  }

  // Receives the next message without blocking, as receive() does; the same signature and rules
  // as async_send().
  template <class CompletionToken>
  auto async_receive(asio::mutable_buffer out, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(error_code, std::size_t)>(
        [core = core_](auto handler, asio::mutable_buffer buffer) {
          if (!core) return detail::fail_not_connected(std::move(handler));
          const std::uint64_t op = detail::next_op_id();
          detail::install_cancellation(handler, core, op);
          auto ex = core->executor();
          core->async_receive_message(buffer, detail::Completion(std::move(handler), ex), op);
        },
        token, out);
  }

  // ---- shared with Conn (conn.hpp documents them)
  using Conn::abort;
  using Conn::active_path;
  using Conn::add_path;
  using Conn::bond_stuck_skips;
  using Conn::cancel;
  using Conn::close;
  using Conn::flow_id;
  using Conn::get_executor;
  using Conn::is_open;
  using Conn::migrate;
  using Conn::migrate_local_address;
  using Conn::migration_count;
  using Conn::mode;
  using Conn::on_migrate;
  using Conn::recv_dups;
  using Conn::recv_queue_hwm;
  using Conn::remove_path;
  using Conn::set_mode;
  using Conn::state;
  using Conn::stats;

 private:
  bool check(error_code& ec) {
    if (core_) return true;
    ec = errc::not_connected;
    return false;
  }
  // The same core as Conn's (whose own pointer is private to it).
  std::shared_ptr<detail::ConnCore> core_;
};

}  // namespace rendr
