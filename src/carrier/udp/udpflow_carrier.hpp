#pragma once
// The udpflow carrier: one datagram path of a flow (docs/protocol.md §10, docs/design.md
// "udpflow runtime"). A client path owns one connected UdpSocket; a server path is a route on
// its listener's shared UdpDemux (by the connection id it chose) and sends from that socket to
// the client's address.
//
// It moves packets and decides nothing about the protocol: which frames go in which packet,
// when and how many is core::Flow's (the handler's pull fills TransmitBatch packets within the
// congestion window and pacing). The carrier
//  - seals each pulled packet into one datagram: a handshake packet (frames in clear) while the
//    packet carries OPEN/OPEN_ACK/JOIN/JOIN_ACK, or the carrier has no packet keys yet, or (a
//    client) it has not heard the server's connection id for the path; a protected packet
//    (AES-128-GCM, keys per path and direction from the flow key, set_flow_key) otherwise;
//  - sends them batched: one UdpSocket::send per pull (sendmmsg, GSO runs of equal size);
//  - on receive: checks the dcid, opens protected packets (a packet that does not open is
//    dropped and counted, never answered), reconstructs the packet number, decodes the frames
//    and hands them to the handler (on_packets) with the datagram's source and size.
// Handshake packets are accepted only until the first protected packet from the peer opened,
// and only with handshake frames (OPEN, OPEN_ACK, JOIN, JOIN_ACK, PROOF, PING, PONG,
// ACK_RANGES): anything else in clear could be injected by whoever sees the connection id.
//
// The reference for packet-number reconstruction is the largest number the carrier accepted
// (opened, or a handshake packet before that): it equals core::Flow::largest_received_packet
// except for packets the core drops, and keeps the receive path off the session's lock.
//
// A client path can move to a new local address (migrate_local_address): it binds a new
// connected socket (same options) and sends from it at once; the old socket is still read until
// the new one has heard from the server (whose core validates the new address first, so it
// keeps sending to the old one until then), and for move_linger after that, so packets already
// on their way there are not lost. A new socket that hears nothing within move_timeout is given
// up and the path sends from the old one again. The carrier decides nothing else: it tells the
// handler (on_local_address_moved), whose core sends a PING from the new address at once.
//
// A udpflow path has no transport-level end: the core declares it dead (PTO counts). on_down
// comes once, for a local close()/abort() (closed) or a socket that failed (error).
//
// Threading: everything runs on executor() (a client path: its own strand; a server path: the
// demux socket's strand, shared by the listener's paths). kick(), close(), abort() and
// set_flow_key() may be called from any thread.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/ip/udp.hpp>

#include "carrier/carrier.hpp"
#include "carrier/handler_slot.hpp"
#include "carrier/udp/udp_demux.hpp"
#include "carrier/udp/udp_socket.hpp"
#include "wire/datagram.hpp"

namespace rendr::carrier::udp {

struct UdpflowOptions {
  UdpSocketOptions socket;
  // Frame bytes per packet: the 1200-byte safe datagram minus the protected header and tag.
  std::size_t max_packet_payload = wire::datagram::kSafeDatagramSize -
                                   wire::datagram::kProtectedHeaderSize - wire::datagram::kTagSize;
  // Packets per pull (one sendmmsg call's worth).
  std::size_t packets_per_pull = 64;
  // Pulls per executor turn before the carrier lets other handlers (reads) run.
  int pulls_per_turn = 8;
  // A client's move to a new local address: how long the old socket is still read after the new
  // one heard from the server (packets sent before the server moved), and how long the new one
  // may stay unheard before the path goes back to the old one.
  std::chrono::milliseconds move_linger{1'000};
  std::chrono::milliseconds move_timeout{3'000};
};

// Counters, readable from any thread (relaxed; for stats and tests).
struct UdpflowCounters {
  std::atomic<std::uint64_t> packets_sent{0};
  std::atomic<std::uint64_t> handshake_packets_sent{0};
  std::atomic<std::uint64_t> packets_received{0};
  std::atomic<std::uint64_t> dropped_auth_failed{0};  // did not open
  std::atomic<std::uint64_t> dropped_no_keys{0};      // protected, before keys were known
  std::atomic<std::uint64_t> dropped_wrong_dcid{0};
  std::atomic<std::uint64_t> dropped_malformed{0};     // bad header or undecodable frames
  std::atomic<std::uint64_t> dropped_clear_frames{0};  // handshake packet with other frames
  std::atomic<std::uint64_t> send_errors{0};
  // Datagrams the kernel refused as larger than the route's MTU (EMSGSIZE; DF is always set):
  // a path-MTU probe too big for the path, lost like any datagram, not a failure.
  std::atomic<std::uint64_t> dropped_too_big{0};
  std::atomic<std::uint64_t> probes_sent{0};  // address-validation probes (challenge/response)
  // Server: times the core moved the path to a newly validated peer address.
  std::atomic<std::uint64_t> peer_moves{0};
  // Client: moves to a new local address (migrate_local_address) started, completed (the new
  // socket heard from the server) and given up (it never did: back to the old socket).
  std::atomic<std::uint64_t> local_moves_started{0};
  std::atomic<std::uint64_t> local_moves_completed{0};
  std::atomic<std::uint64_t> local_moves_failed{0};
};

class UdpflowCarrier final : public Carrier, public std::enable_shared_from_this<UdpflowCarrier> {
 public:
  enum class Side { client, server };

  // Client: a connected socket; the server's connection id is learnt from its first handshake
  // packet (until then packets carry a random one, as docs/protocol.md §10.2 says).
  static std::shared_ptr<UdpflowCarrier> make_client(asio::any_io_executor strand,
                                                     std::shared_ptr<UdpSocket> socket,
                                                     const asio::ip::udp::endpoint& remote,
                                                     const UdpflowOptions& options = {});
  // Server: packets for `local_cid` arrive through the demux (route_to_carrier adds the route);
  // packets go to `peer` with dcid `peer_cid` (the client's scid).
  static std::shared_ptr<UdpflowCarrier> make_server(std::shared_ptr<UdpDemux> demux,
                                                     wire::datagram::ConnectionId local_cid,
                                                     wire::datagram::ConnectionId peer_cid,
                                                     asio::ip::udp::endpoint peer,
                                                     const UdpflowOptions& options = {});

  struct Private {};
  UdpflowCarrier(Private, Side side, asio::any_io_executor executor,
                 std::shared_ptr<UdpSocket> socket, std::shared_ptr<UdpDemux> demux,
                 wire::datagram::ConnectionId local_cid, wire::datagram::ConnectionId peer_cid,
                 std::optional<asio::ip::udp::endpoint> peer, const asio::ip::udp::endpoint& remote,
                 const UdpflowOptions& options);
  ~UdpflowCarrier() override;
  UdpflowCarrier(const UdpflowCarrier&) = delete;
  UdpflowCarrier& operator=(const UdpflowCarrier&) = delete;

  // ---- Carrier
  void start(std::weak_ptr<CarrierHandler> handler) override;
  void set_handler(std::weak_ptr<CarrierHandler> handler) override;
  void kick() override;
  void close() override;
  void abort() override;
  bool reliable() const override { return false; }
  std::string_view transport() const override { return "udpflow"; }
  std::string peer_address() const override;
  std::string local_address() const override;
  // Client: moves the path's sends to a new socket bound to `local_host_port` (numeric host,
  // port 0: any). Errors found at once: a server path (operation_not_supported), a path whose
  // handshake is not over (not_connected), an unparsable address (invalid_argument), another
  // family than the server's (address_family_not_supported), a move still waiting to hear from
  // the server (operation_in_progress), or the bind's own error (an address not of this host).
  error_code migrate_local_address(const std::string& local_host_port) override;
  asio::any_io_executor executor() const override { return executor_; }
  bool datagram() const override { return true; }
  std::size_t max_packet_payload() const override { return options_.max_packet_payload; }
  std::size_t route_max_datagram() const override { return route_max_datagram_; }
  void set_flow_key(const FlowKeyBytes& key) override;

  // Server: one datagram routed to this path by the demux (on the demux's executor). Also used
  // for the first packet's answer path: the listener delivers nothing else through it.
  void receive(const ReceivedDatagram& datagram, const wire::datagram::PacketHeader& header);
  // Server: adds the demux route for local_cid to this carrier; false if the id is taken.
  bool route_to_carrier();
  // Server: also routes the random dcid of the client's first packet here, so that a handshake
  // packet the client sends again before it heard our id (an OPEN or JOIN whose answer was lost)
  // reaches this path rather than the listener. Only handshake packets are taken on it; false if
  // the id is taken (then such a repeat goes to the listener, as on a new connection).
  bool route_initial_dcid(wire::datagram::ConnectionId initial_dcid);
  // Seals `frames` as one handshake packet and sends it at once (the listener's refusal or
  // answer on a path it does not keep). On the executor.
  void send_handshake_frames(std::span<const wire::OutFrame> frames);

  wire::datagram::ConnectionId local_cid() const { return local_cid_; }
  const UdpflowCounters& counters() const { return counters_; }

 private:
  struct Keys;

  void do_start();
  void do_write();
  // Seals and sends the address-validation probes the core owes; false if a send would block.
  bool send_probes();
  // Server: the core's destination for the next packets (after a validation it moves).
  void set_destination(const std::optional<asio::ip::udp::endpoint>& to);
  void flush_unsent();
  // Reads `socket` into on_batch; its failure ends the path only while it is the one sent from.
  void read_from(const std::shared_ptr<UdpSocket>& socket);
  void on_batch(std::span<const ReceivedDatagram> batch, const UdpSocket* from);
  void on_socket_error(const UdpSocket* socket, error_code ec);
  // Client moves: sends go to `socket` from now on; the new socket heard from the server; it
  // did not in time (`move` is the move's number); the old socket is closed after the linger.
  void start_move(std::shared_ptr<UdpSocket> socket, const asio::ip::udp::endpoint& bound);
  void complete_move();
  void move_timed_out(std::uint64_t move);
  void retire(std::shared_ptr<UdpSocket> socket);
  void set_local_address(const asio::ip::udp::endpoint& local);
  // Opens/checks one datagram; appends its frames to frames_ and a packet to packets_.
  void accept_datagram(const ReceivedDatagram& datagram, const wire::datagram::PacketHeader& h);
  void deliver_packets();
  // Seals the pulled packets of out_ into send_buffer_ / send_sizes_.
  void seal_batch();
  // Each writes one datagram at the start of `room`; returns its size, 0 if none was written.
  std::size_t seal_packet(const wire::TransmitBatch::Packet& packet, wire::MutableBytes room);
  std::size_t write_clear_packet(std::span<const wire::OutFrame> frames, std::uint64_t number,
                                 wire::MutableBytes room);
  bool derive_keys_locked();
  void do_close(bool graceful);
  void finish(DownReason reason, error_code ec);

  const Side side_;
  const UdpflowOptions options_;
  const asio::any_io_executor executor_;
  // Client: owned, replaced by a move (on the executor); server: the demux's.
  std::shared_ptr<UdpSocket> socket_;
  const std::shared_ptr<UdpDemux> demux_;  // server only
  const wire::datagram::ConnectionId local_cid_;
  const asio::ip::udp::endpoint remote_;  // client: the server, where every socket connects
  const std::size_t route_max_datagram_;  // client: to remote_ when made (0: unknown, server)
  mutable std::mutex address_mutex_;      // guards the addresses (read from any thread)
  std::string peer_address_;
  std::string local_address_;
  // Client: the server's first protected packet opened (the handshake is over): a move may start.
  std::atomic<bool> can_move_{false};
  // Client: a move waits for its new socket to hear from the server.
  std::atomic<bool> moving_{false};

  HandlerSlot handler_;
  std::atomic<bool> kick_pending_{false};
  UdpflowCounters counters_;

  std::mutex keys_mutex_;  // guards flow_key_ (set from any thread)
  std::optional<FlowKeyBytes> flow_key_;
  std::atomic<bool> key_set_{false};

  // Executor-only state.
  enum class State { idle, open, closed } state_ = State::idle;
  // Server: where the path's packets go (the core's validated address of the peer).
  std::optional<asio::ip::udp::endpoint> peer_;
  // Where the sealed, still unsent batch goes (nullopt: the connected socket's peer).
  std::optional<asio::ip::udp::endpoint> send_to_;
  wire::datagram::ConnectionId peer_cid_;
  bool peer_cid_known_;  // server: from the first packet; client: from the server's first packet
  std::unique_ptr<Keys> keys_;  // once the flow key and the peer's cid are known
  bool peer_protected_seen_ = false;
  bool routed_ = false;  // server: the demux routes local_cid_ here
  std::optional<wire::datagram::ConnectionId> initial_dcid_;  // server: routed here too
  std::optional<std::uint64_t> largest_received_;
  std::uint64_t next_handshake_pn_ = 0;  // listener answers only (send_handshake_frames)
  // Receive batch: frames_ holds every packet's frames; packets_ index into it.
  std::vector<wire::Frame> frames_;
  struct PacketRef {
    std::uint64_t number;
    std::size_t first;
    std::size_t count;
    wire::Slice backing;
    asio::ip::udp::endpoint source;
    std::size_t size;
  };
  std::vector<PacketRef> packet_refs_;
  std::vector<ReceivedPacket> packets_;
  bool delivery_posted_ = false;  // server: deliver_packets is queued on the executor
  // Send side: what was pulled, sealed back to back, and how much of it is still unsent.
  wire::TransmitBatch out_;
  std::unique_ptr<wire::Byte[]> send_buffer_;
  std::size_t send_capacity_ = 0;
  std::size_t send_used_ = 0;
  std::vector<std::size_t> send_sizes_;
  std::vector<wire::ConstBytes> plaintext_;  // the frame pieces of the packet being sealed
  std::size_t unsent_offset_ = 0;            // bytes of send_buffer_ sent
  std::size_t unsent_index_ = 0;             // datagrams of send_sizes_ sent
  bool waiting_writable_ = false;
  // Client moves: the socket sent from before the move in progress (read until the new one
  // heard), the number of the latest move, and old sockets read for move_linger.
  std::shared_ptr<UdpSocket> previous_socket_;
  std::uint64_t move_number_ = 0;
  std::vector<std::shared_ptr<UdpSocket>> retiring_;
};

// The "udpflow" transport: resolves HOST:PORT, connects a UdpSocket to it and wraps it in a
// client UdpflowCarrier. Nothing is exchanged before the core's OPEN or JOIN.
class UdpflowTransport final : public Transport {
 public:
  explicit UdpflowTransport(UdpflowOptions options = {}) : options_(options) {}
  std::string name() const override { return "udpflow"; }
  void async_dial(asio::any_io_executor executor, const std::string& host, std::uint16_t port,
                  DialCallback done) override;

 private:
  UdpflowOptions options_;
};

// A random connection id (never 0).
wire::datagram::ConnectionId random_connection_id();

}  // namespace rendr::carrier::udp
