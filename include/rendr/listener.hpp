#pragma once
// rendr::Listener — accepts flows. One listener can serve several TCP, QUIC and udpflow addresses;
// a flow's paths may arrive on any of them.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "rendr/conn.hpp"
#include "rendr/detail/post_result.hpp"
#include "rendr/dialer.hpp"
#include "rendr/engine.hpp"
#include "rendr/packet_conn.hpp"
#include "rendr/stats.hpp"
#include "rendr/tls.hpp"

namespace rendr {

// How a Listener serves its flows; the defaults suit a public server.
struct ListenOptions {
  // How long an accepted flow may have no usable path before its I/O fails with
  // errc::migration_budget_exceeded.
  std::chrono::milliseconds migration_budget{90'000};
  // The accepted flows' own options (the pre-shared key among them, stats.hpp).
  FlowOptions options;
  // Flows held at once; more OPENs are refused (ListenerStats counts them).
  std::size_t max_flows = 4096;
  // Transport connections before OPEN/JOIN; when full, a new one evicts the oldest.
  std::size_t max_half_open = 256;
  // A connection's first frame (OPEN/JOIN) must arrive within it, and a client must prove the
  // key (PROOF) within it of its OPEN or JOIN; retries on other paths extend the latter to
  // twice this at most.
  std::chrono::milliseconds handshake_timeout{5'000};
  // Flow-table limits (core::Endpoint, docs/design.md "Endpoint"). When max_flows or
  // max_unaccepted is reached, flows without a path are evicted before an OPEN is refused.
  std::size_t max_unaccepted = 1024;    // flows opened and not yet taken by accept()
  std::size_t max_paths_per_flow = 16;  // a JOIN beyond it is refused with status `capacity`
  // A flow whose client sent nothing after its OPEN and which has no path is dropped after this
  // (anyone may OPEN without a PSK: such flows must not be held for the migration budget).
  std::chrono::milliseconds abandoned_flow_timeout{10'000};  // see above
  // Receive memory shared by all flows: the window a flow advertises beyond what its application
  // has read is reserved from it (a new flow starts with 64 KiB and grows to its full window as
  // it is read). When it is used up, windows stop opening (back-pressure) and new flows are
  // refused with `capacity` (ListenerStats::rejected_memory).
  std::size_t memory_budget = 1024 * 1024 * 1024;
  // udpflow addresses: with this many flows (or more) still awaiting their client's PROOF, an
  // OPEN from an address that has not echoed a retry token is answered with a stateless RETRY
  // (the client sends its OPEN again with the token; docs/design.md, "Address validation").
  // 0: always; SIZE_MAX: never.
  std::size_t udpflow_retry_above_unproven = 64;
  // udpflow paths: the largest datagram (UDP payload bytes) path-MTU probing tries, from the
  // safe 1200 up. 8952 fits jumbo frames (9000) under IPv6 + UDP headers; probing never goes
  // above what the route to the client takes whole either (its interface's MTU less the
  // headers: 1452 / 1472 on a 1500-byte Ethernet link). A probe larger than the real path MTU
  // is lost, never fragmented. 0: no probing.
  std::size_t udpflow_max_datagram_size = 8952;
  // udpflow paths: the congestion controller of what the server sends (PathSpec::congestion is
  // the client's); nullopt: the default (BBR).
  std::optional<Congestion> udpflow_congestion{};
  // Which kinds of flow this listener takes (the client's OPEN says which it is). A stream flow
  // goes to accept(), a packet flow to accept_packet(); an OPEN of a kind not taken is refused
  // at once (the client's dial fails with errc::handshake_failed). A flow of a taken kind that
  // the application never accepts waits like any unaccepted flow (max_unaccepted).
  bool accept_stream_flows = true;
  bool accept_packet_flows = false;  // listen_udpflow_packet sets it (and clears streams)
  Engine* engine = nullptr;          // nullptr: the default engine
};

namespace detail {
class ListenerCore {
 public:
  virtual ~ListenerCore() = default;
  virtual asio::any_io_executor executor() = 0;
  virtual Conn accept(error_code& ec) = 0;
  // `op` identifies the operation for cancel_accept (see next_op_id).
  virtual void async_accept(std::function<void(error_code, Conn)> done, std::uint64_t op) = 0;
  virtual PacketConn accept_packet(error_code& ec) = 0;
  virtual void async_accept_packet(std::function<void(error_code, PacketConn)> done,
                                   std::uint64_t op) = 0;
  // Completes the waiting async_accept `op` with operation_aborted if it is still waiting.
  virtual void cancel_accept(std::uint64_t op) = 0;
  virtual error_code listen_tcp(const std::string& address) = 0;
  virtual error_code listen_quic(const std::string& address, const TlsServerConfig& tls) = 0;
  virtual std::uint16_t quic_port(std::size_t index) const = 0;
  virtual error_code listen_udpflow(const std::string& address) = 0;
  virtual std::uint16_t udpflow_port(std::size_t index) const = 0;
  virtual std::vector<std::string> local_addresses() const = 0;
  virtual std::uint16_t port(std::size_t index) const = 0;
  virtual ListenerStats stats() const = 0;
  virtual void close() = 0;
};

// Installed in an async_accept handler's cancellation slot while it waits.
class CancelAccept {
 public:
  CancelAccept(std::weak_ptr<ListenerCore> core, std::uint64_t op)
      : core_(std::move(core)), op_(op) {}
  void operator()(asio::cancellation_type type) {
    constexpr auto supported = asio::cancellation_type::terminal |
                               asio::cancellation_type::partial | asio::cancellation_type::total;
    if ((type & supported) == asio::cancellation_type::none) return;
    if (auto core = core_.lock()) core->cancel_accept(op_);
  }

 private:
  std::weak_ptr<ListenerCore> core_;
  std::uint64_t op_;
};
}  // namespace detail

// Close a Listener (close(), or let go of its last copy) before its Engine is destroyed; a closed
// Listener may outlive it.
class Listener {
 public:
  // An empty Listener (its accepts fail with errc::not_connected).
  Listener() = default;
  // Used by listen_tcp() and its siblings.
  explicit Listener(std::shared_ptr<detail::ListenerCore> core) : core_(std::move(core)) {}

  // Adds another TCP address ("HOST:PORT"; port 0 picks a free one).
  error_code listen_tcp(const std::string& address) { return core_->listen_tcp(address); }
  // Adds a QUIC address ("HOST:PORT" over UDP; port 0 picks a free one), serving TLS with `tls`.
  error_code listen_quic(const std::string& address, const TlsServerConfig& tls) {
    return core_->listen_quic(address, tls);
  }

  // Adds a udpflow address ("HOST:PORT" over UDP; port 0 picks a free one): rendr frames in
  // UDP datagrams with the core's own loss recovery, congestion control and packet protection.
  error_code listen_udpflow(const std::string& address) { return core_->listen_udpflow(address); }

  // Blocks until a flow arrives; on an engine thread it fails at once with
  // errc::blocking_call_on_engine_thread (use async_accept there).
  Conn accept(error_code& ec) { return core_->accept(ec); }
  // As above; a failure throws std::system_error.
  Conn accept() {
    error_code ec;
    Conn c = accept(ec);
    if (ec) throw std::system_error(ec, "rendr::Listener::accept");
    return c;
  }

  // Any completion token (callback, use_awaitable, use_future, deferred, ...), signature
  // void(error_code, Conn); completes on the handler's associated executor (by default the
  // engine's), never inline.
  // Cancellable through the handler's cancellation slot (terminal, partial and total: a waiting
  // accept has taken nothing): it then completes with asio::error::operation_aborted and an
  // empty Conn, and the listener goes on; a flow that arrives later waits for the next accept.
  // An accept that already has its flow completes normally (the cancellation is too late).
  template <class CompletionToken>
  auto async_accept(CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(error_code, Conn)>(
        [core = core_](auto handler) {
          const std::uint64_t op = detail::next_op_id();
          auto slot = asio::get_associated_cancellation_slot(handler);
          if (slot.is_connected()) slot.template emplace<detail::CancelAccept>(core, op);
          core->async_accept(detail::post_result<Conn>(std::move(handler), core->executor()), op);
        },
        token);
  }

  // accept() / async_accept() for packet flows (ListenOptions::accept_packet_flows): the same
  // rules, signature void(error_code, PacketConn).
  PacketConn accept_packet(error_code& ec) { return core_->accept_packet(ec); }
  // As above; a failure throws std::system_error.
  PacketConn accept_packet() {
    error_code ec;
    PacketConn c = accept_packet(ec);
    if (ec) throw std::system_error(ec, "rendr::Listener::accept_packet");
    return c;
  }
  // async_accept() for packet flows, signature void(error_code, PacketConn).
  template <class CompletionToken>
  auto async_accept_packet(CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(error_code, PacketConn)>(
        [core = core_](auto handler) {
          const std::uint64_t op = detail::next_op_id();
          auto slot = asio::get_associated_cancellation_slot(handler);
          if (slot.is_connected()) slot.template emplace<detail::CancelAccept>(core, op);
          core->async_accept_packet(
              detail::post_result<PacketConn>(std::move(handler), core->executor()), op);
        },
        token);
  }

  // The TCP addresses listened on, "HOST:PORT" as bound (IPv6 in brackets, ports resolved).
  std::vector<std::string> local_addresses() const { return core_->local_addresses(); }
  // The TCP port of the index-th TCP address (0 if there is none).
  std::uint16_t port(std::size_t index = 0) const { return core_->port(index); }
  // The UDP port of the index-th QUIC address (0 if there is none).
  std::uint16_t quic_port(std::size_t index = 0) const { return core_->quic_port(index); }
  // The UDP port of the index-th udpflow address (0 if there is none).
  std::uint16_t udpflow_port(std::size_t index = 0) const { return core_->udpflow_port(index); }
  // Counters of accepted and refused flows and handshakes (stats.hpp).
  ListenerStats stats() const { return core_->stats(); }
  // Stops listening: pending accepts fail with errc::listener_closed; accepted flows go on.
  void close() {
    if (core_) core_->close();
  }

 private:
  std::shared_ptr<detail::ListenerCore> core_;
};

// Listens on a TCP address ("HOST:PORT"); more addresses can be added with listen_tcp.
Listener listen_tcp(const std::string& address, const ListenOptions& options, error_code& ec);
// As above; a failure throws std::system_error.
Listener listen_tcp(const std::string& address, const ListenOptions& options = {});

// Listens on a QUIC address (UDP "HOST:PORT"); more addresses of either kind can be added.
Listener listen_quic(const std::string& address, const TlsServerConfig& tls,
                     const ListenOptions& options, error_code& ec);
// As above; a failure throws std::system_error.
Listener listen_quic(const std::string& address, const TlsServerConfig& tls,
                     const ListenOptions& options = {});

// Listens on a udpflow address (UDP "HOST:PORT"); more addresses of any kind can be added.
Listener listen_udpflow(const std::string& address, const ListenOptions& options, error_code& ec);
// As above; a failure throws std::system_error.
Listener listen_udpflow(const std::string& address, const ListenOptions& options = {});

// The Go original's ListenUDPFlowPacket: a udpflow listener that takes packet flows only
// (options' accept_* are overridden); take them with accept_packet().
Listener listen_udpflow_packet(const std::string& address, const ListenOptions& options,
                               error_code& ec);
// As above; a failure throws std::system_error.
Listener listen_udpflow_packet(const std::string& address, const ListenOptions& options = {});

}  // namespace rendr
