#pragma once
// rendr::Dialer — opens a flow over one or more paths.
#include <chrono>
#include <cstdint>
#include <functional>
#include <system_error>
#include <vector>

#include "rendr/conn.hpp"
#include "rendr/detail/post_result.hpp"
#include "rendr/engine.hpp"
#include "rendr/packet_conn.hpp"
#include "rendr/types.hpp"

namespace rendr {

// Tunables shared by both ends; defaults suit loopback to WAN (see docs/design.md).
struct FlowOptions {
  std::size_t send_buffer = 8 * 1024 * 1024;   // bytes written and not yet acknowledged, at most
  std::size_t recv_window = 8 * 1024 * 1024;   // bytes the peer may send ahead of the reader
  std::chrono::milliseconds dead_floor{40};    // liveness deadline floor
  std::chrono::milliseconds dead_cap{3000};    // liveness deadline cap
  std::chrono::milliseconds redial_max{2000};  // backoff cap for re-dialing a dead path
  std::vector<std::uint8_t> psk;               // optional pre-shared key (both ends)
};

// Opens flows: set the paths (and anything else), then dial(); a Dialer can dial many times.
struct Dialer {
  Mode mode = Mode::prime;      // the flow's first mode (Conn::set_mode changes it later)
  std::vector<PathSpec> paths;  // every path of the flow, the first one tried first
  // How long the flow may have no usable path before its I/O fails with
  // errc::migration_budget_exceeded.
  std::chrono::milliseconds migration_budget{90'000};
  std::chrono::milliseconds dial_timeout{10'000};  // for the first OPEN to complete
  FlowOptions options;                             // tunables and the pre-shared key
  Engine* engine = nullptr;                        // nullptr: the default engine

  // Connects: OPEN on the first path that answers, then JOIN on the others in the background.
  // Paths that fail are re-dialed with backoff until dial_timeout; if none ever connected, the
  // error is the transport's last one (e.g. connection_refused), else errc::handshake_failed.
  // Blocks; on an engine thread it fails at once with errc::blocking_call_on_engine_thread.
  Conn dial(error_code& ec) const;
  Conn dial() const;  // throws std::system_error

  // dial() for a packet flow (packet_conn.hpp) with these options; the listener must take
  // packet flows (ListenOptions::accept_packet_flows), else this fails with
  // errc::handshake_failed.
  PacketConn dial_packet(const PacketOptions& packet, error_code& ec) const;
  PacketConn dial_packet(const PacketOptions& packet = {}) const;  // throws std::system_error

  // dial() without blocking, with any completion token (callback, use_awaitable, use_future,
  // deferred, ...), signature void(error_code, Conn). Completes on the handler's associated
  // executor (by default the engine's), never inline. The Dialer is copied: it may go away.
  template <class CompletionToken>
  auto async_dial(CompletionToken&& token) const {
    return asio::async_initiate<CompletionToken, void(error_code, Conn)>(
        [dialer = *this](auto handler) {
          Engine& eng = dialer.engine != nullptr ? *dialer.engine : Engine::default_engine();
          dialer.start_async_dial(detail::post_result<Conn>(std::move(handler), eng.executor()));
        },
        token);
  }

  // dial_packet() without blocking, as async_dial: signature void(error_code, PacketConn).
  template <class CompletionToken>
  auto async_dial_packet(const PacketOptions& packet, CompletionToken&& token) const {
    return asio::async_initiate<CompletionToken, void(error_code, PacketConn)>(
        [dialer = *this](auto handler, const PacketOptions& options) {
          Engine& eng = dialer.engine != nullptr ? *dialer.engine : Engine::default_engine();
          dialer.start_async_dial_packet(
              options, detail::post_result<PacketConn>(std::move(handler), eng.executor()));
        },
        token, packet);
  }

 private:
  // Either kind of async dial (packet: a packet flow): the application handle, or null.
  using AsyncDialDone = std::function<void(error_code, std::shared_ptr<detail::ConnCore>)>;
  void start_async_dial(std::function<void(error_code, Conn)> done) const;
  void start_async_dial_packet(const PacketOptions& packet,
                               std::function<void(error_code, PacketConn)> done) const;
  void start_async_dial_core(const PacketOptions* packet, AsyncDialDone done) const;
  // Blocking dial of either kind (packet: a packet flow); the application handle, or null.
  std::shared_ptr<detail::ConnCore> dial_core(const PacketOptions* packet, error_code& ec) const;
};

}  // namespace rendr
