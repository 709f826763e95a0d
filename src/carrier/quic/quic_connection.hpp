#pragma once
// One ngtcp2 connection carrying rendr frames on one bidirectional stream: the Carrier of a
// quic:// path (contract and options: quic_carrier.hpp). Client connections own their UDP
// socket; server connections send through, and are fed by, their QuicServerSocket.
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include <array>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <asio/ip/udp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include "carrier/handler_slot.hpp"
#include "carrier/quic/quic_carrier.hpp"
#include "carrier/quic/quic_memory.hpp"
#include "carrier/quic/quic_tls.hpp"
#include "carrier/udp/udp_socket.hpp"

namespace rendr::carrier {

class QuicServerSocket;

// The UDP socket settings of QUIC paths: GSO, GRO and batched system calls, with buffers of
// options.socket_buffer.
udp::UdpSocketOptions quic_socket_options(const QuicOptions& options);

class QuicConnection final : public Carrier, public std::enable_shared_from_this<QuicConnection> {
 public:
  // Handshake outcome: the connection (stream open on the client) or why it failed. Runs on
  // the strand, at most once; a connection that failed before it is never reported down.
  using Established = std::function<void(error_code, std::shared_ptr<QuicConnection>)>;

  // A client over `socket` (open, connected to `remote`, its executor the strand). Sends the
  // first Initial at once.
  static std::shared_ptr<QuicConnection> make_client(
      QuicStrand strand, asio::ip::udp::socket socket, std::shared_ptr<TlsCredentials> credentials,
      const TlsClientConfig& tls, const std::string& host, const QuicOptions& options,
      Established done, error_code& ec);
  // A server connection for the client Initial `hd`, on the server socket's strand. The caller
  // feeds it that Initial with on_datagram().
  static std::shared_ptr<QuicConnection> make_server(
      QuicStrand strand, std::shared_ptr<QuicServerSocket> server, const ngtcp2_pkt_hd& hd,
      const asio::ip::udp::endpoint& local, const asio::ip::udp::endpoint& remote,
      std::shared_ptr<TlsCredentials> credentials, const QuicOptions& options, Established done,
      error_code& ec);

  ~QuicConnection() override;
  QuicConnection(const QuicConnection&) = delete;
  QuicConnection& operator=(const QuicConnection&) = delete;

  // Server socket -> connection (on the strand): one datagram, then, after a batch of them,
  // after_datagrams() delivers the decoded frames and writes what is due.
  void on_datagram(const std::uint8_t* data, std::size_t size, const asio::ip::udp::endpoint& from);
  void after_datagrams();
  // Every connection id this connection answers to (for the server's routing table).
  std::vector<std::string> connection_ids() const;
  // Still in its handshake (the server drops these when it stops accepting).
  bool handshaking() const { return state_ == State::handshake; }

  void start(std::weak_ptr<CarrierHandler> handler) override;
  void set_handler(std::weak_ptr<CarrierHandler> handler) override;
  void kick() override;
  void close() override;
  void abort() override;
  bool reliable() const override { return true; }
  std::string_view transport() const override { return "quic"; }
  std::string peer_address() const override;
  std::string local_address() const override;
  asio::any_io_executor executor() const override { return strand_; }
  // Client, established: binds a socket to the new address, validates the path through it
  // (ngtcp2_conn_initiate_migration, on a spare connection id) and moves there once it is
  // validated; the old socket keeps reading for migration_linger. One migration at a time
  // (operation_in_progress otherwise); one that cannot start yet (handshake not confirmed, no
  // spare id) starts as soon as it can.
  error_code migrate_local_address(const std::string& local_host_port) override;
  std::size_t max_datagram_frame() const override {
    return max_datagram_frame_.load(std::memory_order_relaxed);
  }
  // ngtcp2's window, bytes in flight and pacing, as the last flush() left them.
  std::optional<TransportCongestion> transport_congestion() const override {
    std::lock_guard lock(congestion_mutex_);
    return congestion_;
  }

  const QuicCarrierCounters& counters() const { return counters_; }

  // ngtcp2 callbacks (static trampolines call these).
  int on_stream_data(std::int64_t stream_id, const std::uint8_t* data, std::size_t size);
  int on_acked(std::int64_t stream_id, std::uint64_t offset, std::uint64_t size);
  int on_new_connection_id(ngtcp2_cid* cid, std::uint8_t* token, std::size_t cidlen);
  int on_remove_connection_id(const ngtcp2_cid* cid);
  void on_handshake_completed() { handshake_completed_ = true; }
  void on_stream_gone(std::int64_t stream_id);
  void on_stream_window() { stream_blocked_ = false; }
  void on_path_validation(const ngtcp2_path& path, ngtcp2_path_validation_result result);
  int on_datagram(const std::uint8_t* data, std::size_t size);
  // ngtcp2's verdict on one of our DATAGRAMs, handed to the flow after the batch.
  enum class DatagramFate { acked, lost };
  void on_datagram_fate(std::uint64_t id, DatagramFate fate);
  ngtcp2_conn* native() const { return conn_; }

 private:
  enum class State {
    handshake,  // no stream yet (server: not yet handed to the listener)
    ready,      // established, not started (frames received meanwhile wait)
    open,       // started: delivering and pulling
    closing,    // close(): sending what was pulled, waiting for its acknowledgement
    finished,   // closed locally, down, or failed before start
  };

  QuicConnection(QuicStrand strand, const QuicOptions& options, std::string peer_address);
  error_code init_client(asio::ip::udp::socket socket, std::shared_ptr<TlsCredentials> credentials,
                         const TlsClientConfig& tls, const std::string& host);
  error_code init_server(std::shared_ptr<QuicServerSocket> server, const ngtcp2_pkt_hd& hd,
                         const asio::ip::udp::endpoint& local,
                         const asio::ip::udp::endpoint& remote,
                         std::shared_ptr<TlsCredentials> credentials);
  void fill_settings(ngtcp2_settings& settings, ngtcp2_transport_params& params) const;

  // Client sockets.
  void start_receive(const std::shared_ptr<udp::UdpSocket>& socket,
                     const asio::ip::udp::endpoint& local);
  void on_readable(const std::shared_ptr<udp::UdpSocket>& socket,
                   const asio::ip::udp::endpoint& local, error_code ec);
  // Input.
  void read_packet(const std::uint8_t* data, std::size_t size, const asio::ip::udp::endpoint& local,
                   const asio::ip::udp::endpoint& from);
  void check_established();
  // True if frames went to the handler.
  bool deliver_frames();
  // The handler hears that our packets were acknowledged, if no frame told it already.
  void report_acknowledged(bool frames_delivered);
  // Frames that came in DATAGRAMs, and the verdicts on ours, to the handler.
  void deliver_datagrams();
  // The largest frame one DATAGRAM holds now (max_datagram_frame).
  void update_datagram_room();
  // The largest UDP payload the connection sends now (this end's limit and the peer's).
  std::size_t sendable_udp_payload() const;
  void compact_block(std::size_t consumed);
  // Output.
  void flush();
  // Keeps ngtcp2's congestion state for transport_congestion().
  void sample_congestion(const ngtcp2_conn_stat& stat);
  void pull_frames();
  std::size_t gather(std::array<ngtcp2_vec, 16>& vecs) const;
  // The first pulled datagram frame no longer fits one DATAGRAM: it goes on the stream.
  void datagram_to_stream();
  void advance(std::size_t n);
  // Sends tx_[0, bytes) as the datagrams `sizes` on `path` (GSO: one system call for a run).
  void send_packets(std::size_t bytes, std::span<const std::size_t> sizes, const ngtcp2_path& path);
  std::shared_ptr<udp::UdpSocket> socket_for(const ngtcp2_addr& local) const;
  // Migration (client).
  void try_migration();
  void end_migration(bool moved);
  void retire_socket(const asio::ip::udp::endpoint& local);
  // Server: the peer moved (a client migration or a NAT rebinding) once ngtcp2 validated it.
  void follow_peer();
  void set_addresses();
  void arm_timer();
  void on_timer();
  // Ending.
  void do_start();
  void do_close();
  void do_abort();
  void finish_close();
  void send_connection_close(const ngtcp2_connection_close_error& error);
  void fail(DownReason reason, error_code ec, wire::DecodeError decode_error, bool send_close);
  void fail_with_liberr(int liberr);
  void peer_closed();
  void teardown();
  void report_down(DownReason reason, error_code ec, wire::DecodeError decode_error);

  const QuicOptions options_;
  QuicStrand strand_;
  asio::steady_timer timer_;
  mutable std::mutex address_mutex_;  // guards the two strings: read from any thread
  std::string peer_address_;
  std::string local_address_;

  HandlerSlot handler_;
  std::atomic<bool> kick_pending_{false};
  QuicCarrierCounters counters_;
  mutable std::mutex congestion_mutex_;
  std::optional<TransportCongestion> congestion_;  // guarded by congestion_mutex_

  // Strand-only state.
  State state_ = State::handshake;
  bool started_ = false;  // start() was called (so on_down is owed)
  Established established_;
  QuicMemory memory_;  // conn_'s allocations; outlives it (ngtcp2_conn_del in the destructor)
  ngtcp2_conn* conn_ = nullptr;
  ngtcp2_crypto_conn_ref conn_ref_{};
  TlsSession tls_;
  bool is_server_ = false;
  // The socket packets go out on: the client's own, or the server socket's.
  std::shared_ptr<udp::UdpSocket> socket_;
  // Server: the socket owns its connections (and lives while its read is pending), so a
  // connection only borrows it; a strong reference back would be a cycle that outlives the
  // engine when a connection is still up at exit.
  std::weak_ptr<QuicServerSocket> server_;
  // Client: sockets besides socket_ — a migration's new one (until validated) and old ones
  // (reading for migration_linger).
  struct LocalSocket {
    asio::ip::udp::endpoint local;
    std::shared_ptr<udp::UdpSocket> socket;
  };
  std::vector<LocalSocket> other_sockets_;
  std::optional<asio::ip::udp::endpoint> migration_;  // its local address, until it ends
  bool migration_started_ = false;                    // ngtcp2 is validating it
  std::atomic<bool> migrating_{false};                // any thread: one migration at a time
  std::atomic<bool> can_migrate_{false};              // any thread: a client, established
  asio::ip::udp::endpoint local_;
  asio::ip::udp::endpoint remote_;
  std::vector<std::string> cids_;  // ours, as routing keys
  bool handshake_completed_ = false;
  std::int64_t stream_id_ = -1;
  error_code stream_error_;  // the peer reset the stream
  // A packet read since the last report acknowledged packets of ours (report_acknowledged),
  // and when the last report went (ngtcp2 timestamp).
  bool acknowledged_ = false;
  ngtcp2_tstamp acknowledged_reported_at_ = 0;
  // Receive: undelivered stream bytes are [0, block_->used) of block_.
  wire::BlockPtr block_;
  std::vector<wire::Frame> frames_;
  // Send: pulled frames from stream offset sent_base_ (acknowledged below it); the next byte
  // to packetize is frame next_frame_, at next_pos_ within it.
  std::deque<wire::OutFrame> sendq_;
  std::uint64_t acked_offset_ = 0;
  std::uint64_t queue_base_ = 0;  // stream offset of sendq_.front()
  std::size_t next_frame_ = 0;
  std::size_t next_pos_ = 0;
  std::size_t unsent_bytes_ = 0;
  bool stream_blocked_ = false;
  // DATAGRAMs (docs/design.md "Packet mode over QUIC DATAGRAM"): pulled frames that go one
  // per DATAGRAM (dropped once QUIC took them: the core sends a lost one again), their bytes,
  // and the head's attempts that packed it into no packet.
  std::deque<wire::OutFrame> datagramq_;
  std::size_t datagram_bytes_ = 0;
  int datagram_refusals_ = 0;
  std::atomic<std::size_t> max_datagram_frame_{0};
  // Received frames (each one datagram's) in datagram_block_, and the verdicts on ours, until
  // the read batch ends.
  wire::BlockPtr datagram_block_;
  std::vector<wire::Frame> datagram_frames_;
  // Full blocks whose frames are datagram_frames_ up to `end` (before datagram_block_'s).
  struct DatagramBlock {
    wire::BlockPtr block;
    std::size_t end = 0;
  };
  std::vector<DatagramBlock> datagram_blocks_;
  std::vector<wire::Frame> datagram_part_;  // one block's frames, as handed over (reused)
  std::vector<std::uint64_t> datagrams_acked_;
  std::vector<std::uint64_t> datagrams_lost_;
  wire::TransmitBatch batch_;
  std::vector<std::uint8_t> tx_;  // one flush's packets, back to back
  std::vector<std::size_t> tx_sizes_;
  bool flush_posted_ = false;
  bool timer_armed_ = false;
  ngtcp2_tstamp armed_expiry_ = 0;
};

}  // namespace rendr::carrier
