#pragma once
// The QUIC carrier: rendr frames over one bidirectional stream of one ngtcp2 connection (TLS 1.3
// via GnuTLS, ALPN "rendr/1"), and the "quic" transport that dials one. A reliable carrier: the
// stream is ordered and retransmitted by QUIC, so the core treats it like TCP (docs/design.md
// "QUIC paths").
//
// Sockets. A client connection owns its UDP socket (one per path). A server connection shares
// its listener's socket (QuicServerSocket, quic_server.hpp), which routes each datagram to the
// connection that owns its destination connection id.
//
// Threading. Everything runs on one strand: the client's own, or the server socket's (all of a
// listen address's connections share it). executor() returns it; callbacks run on it;
// set_handler() must be called on it; start/kick/close/abort may be called from any thread.
//
// Lifetime. A client connection lives while its socket read or timer is pending; a server
// connection while its server socket routes to it. Both stop when down or closed.
//
// on_down. Exactly once after start(), as for TCP: the peer's CONNECTION_CLOSE is eof (no error
// code) or reset (an error code, with quic_errc::peer_closed_with_error), an idle timeout or
// any other transport failure is error (with a quic_errc), undecodable stream bytes are
// protocol_error, close()/abort() is closed. Never an application EOF: the core sees a path die.
//
// Flow control and back-pressure. The stream and connection windows start at
// QuicOptions::stream_window / connection_window and are extended as bytes are decoded (rendr's
// own window bounds what the application has not read). Frames are pulled from the handler only
// while fewer pulled bytes wait to enter packets than the congestion window lets out (at most
// max_write_bytes) and the stream is not blocked by the peer's window; pulled frames are kept (zero
// copy) until QUIC acknowledges them.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <asio/any_io_executor.hpp>
#include <asio/ip/udp.hpp>
#include <asio/strand.hpp>

#include "carrier/carrier.hpp"
#include "rendr/tls.hpp"

namespace rendr::carrier {

using QuicStrand = asio::strand<asio::any_io_executor>;

struct QuicOptions {
  std::size_t stream_window = 16 * 1024 * 1024;      // initial per-stream receive window
  std::size_t connection_window = 32 * 1024 * 1024;  // initial connection receive window
  std::size_t max_window = 64 * 1024 * 1024;         // ngtcp2's window auto-tuning cap
  std::size_t max_write_bytes = 256 * 1024;          // pulled bytes waiting for packets
  std::size_t read_block_size = 256 * 1024;
  std::size_t max_frame_body = wire::kDefaultMaxBody;
  std::size_t socket_buffer = 8 * 1024 * 1024;  // SO_RCVBUF / SO_SNDBUF
  // Spare connection ids offered to the peer (active_connection_id_limit), so a migration or a
  // NAT rebinding never waits for one.
  std::size_t connection_ids = 8;
  std::chrono::milliseconds idle_timeout{30'000};
  std::chrono::milliseconds handshake_timeout{10'000};
  // How long this end may delay an ACK (the max_ack_delay transport parameter; QUIC's default
  // is 25 ms). The peer's probe timeout includes it, and a loss repair whose first probe waits
  // that long holds the stream's frames back past the flow's 40 ms dead-path floor.
  std::chrono::milliseconds max_ack_delay{2};
  std::chrono::milliseconds close_linger{2'000};  // bound on a graceful close
  // After a migration to a new local address, the old socket still reads this long (what the
  // peer sent before it followed arrives there).
  std::chrono::milliseconds migration_linger{1'000};
  // A peer on this host (udp::is_same_host): UDP payloads up to this size (and the kernel's
  // route MTU: 65507 on IPv4 loopback) from the first packet, without probing, as TCP uses
  // loopback's 64 KiB MTU. Elsewhere ngtcp2 0.12's path-MTU discovery decides, and it never
  // probes above 1452 bytes. Fewer, larger packets cut the per-packet work; and ngtcp2's CUBIC
  // stops growing its window at 2.89 x max(initial window, max delivery rate x min RTT), which
  // on a microsecond RTT is ~2.9 initial windows: 42 KB at 1452-byte packets, 379 KB at 64 KiB
  // ones. The client's limit is advertised (max_udp_payload_size), so it bounds both ways: a
  // relay on this host that reads less needs its size here (PathSpec::max_datagram_size).
  // 1200 or less: 1200 asked of the peer, ngtcp2's own path-MTU discovery for this end.
  std::size_t same_host_max_udp_payload = 65527;
  // The ALPN a client offers. A server always requires "rendr/1" (kQuicAlpn); only tests offer
  // another, to see the handshake refused.
  std::string alpn = "rendr/1";
};

// Counters, readable from any thread (relaxed; for stats and tests).
struct QuicCarrierCounters {
  std::atomic<std::uint64_t> packets_received{0};
  std::atomic<std::uint64_t> packets_sent{0};
  std::atomic<std::uint64_t> stream_bytes_received{0};
  std::atomic<std::uint64_t> stream_bytes_sent{0};  // handed to packets (retransmits excluded)
  std::atomic<std::uint64_t> send_drops{0};         // datagrams the socket refused (QUIC resends)
  // Client migrations to a new local address (migrate_local_address): started, validated and
  // moved to, failed (path validation failed or the connection could not migrate).
  std::atomic<std::uint64_t> migrations_started{0};
  std::atomic<std::uint64_t> migrations_completed{0};
  std::atomic<std::uint64_t> migrations_failed{0};
  // QUIC DATAGRAMs (a packet flow's messages): sent, received, and QUIC's verdicts on those
  // sent; frames pulled for a datagram that went on the stream instead (it no longer fit one);
  // received datagrams that were not exactly one frame (dropped).
  std::atomic<std::uint64_t> datagrams_sent{0};
  std::atomic<std::uint64_t> datagrams_received{0};
  std::atomic<std::uint64_t> datagrams_acked{0};
  std::atomic<std::uint64_t> datagrams_lost{0};
  std::atomic<std::uint64_t> datagrams_on_stream{0};
  std::atomic<std::uint64_t> datagrams_undecodable{0};
};

// The "quic" transport: resolves the host, opens a UDP socket, runs the handshake (bounded by
// handshake_timeout) and hands over a carrier whose stream is open. A TLS failure fails the dial
// with a quic_errc saying why.
class QuicTransport final : public Transport {
 public:
  explicit QuicTransport(QuicOptions options = {}) : options_(options) {}
  std::string name() const override { return "quic"; }
  // Default TLS settings: verify against the system store and the host name.
  void async_dial(asio::any_io_executor executor, const std::string& host, std::uint16_t port,
                  DialCallback done) override;
  void async_dial_to(asio::any_io_executor executor, const DialTarget& target,
                     DialCallback done) override;

 private:
  QuicOptions options_;
};

}  // namespace rendr::carrier
