#pragma once
// The carrier contract: a carrier moves rendr frames over one transport connection (one path).
// It makes no protocol decision; it reports "frames arrived", "down (cause)" and pulls frames
// to send when its transport can take them.
//
// Threading: every callback runs on the carrier's executor (an engine I/O thread); kick() and
// close() may be called from any thread.
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/ip/udp.hpp>

#include "carrier/transport_congestion.hpp"
#include "rendr/asio.hpp"
#include "rendr/tls.hpp"
#include "wire/frame.hpp"
#include "wire/out_frame.hpp"
#include "wire/transmit_batch.hpp"

namespace rendr::carrier {

enum class DownReason {
  eof,             // the peer closed the transport (not an application EOF)
  reset,           // connection reset / aborted
  error,           // other transport error
  protocol_error,  // undecodable bytes
  closed,          // close() or abort() was called locally
};

// One packet a datagram carrier received, opened (or, during the path's handshake, checked) and
// decoded: the core gets it whole (core::Flow::on_packet).
struct ReceivedPacket {
  std::uint64_t number = 0;             // the full packet number (reconstructed)
  std::span<const wire::Frame> frames;  // in order; DATA payloads point into `backing`
  wire::Slice backing;
  // Where the datagram came from and how long it was: what path validation and the
  // anti-amplification limit need (docs/design.md, "udpflow runtime"). The carrier itself never
  // changes where it sends because of a source address; the core decides that.
  asio::ip::udp::endpoint source;
  std::size_t datagram_size = 0;
};

class CarrierHandler {
 public:
  virtual ~CarrierHandler() = default;
  // Frames decoded from one read. Every DATA payload points into `backing`.
  virtual void on_frames(const std::vector<wire::Frame>& frames, const wire::Slice& backing) = 0;
  // The transport is gone; no callback follows this one.
  virtual void on_down(DownReason reason, error_code ec, wire::DecodeError decode_error) = 0;
  // Stream carriers whose transport acknowledges packets (QUIC): the peer acknowledged packets
  // of ours, but no frame arrived in that read (the stream holds them back until a loss is
  // repaired). The path works both ways.
  virtual void on_acknowledged() {}
  // The transport can take about `out.room()` more bytes: append frames to the carrier's
  // batch (reused for every write), false if none.
  virtual bool pull(wire::TransmitBatch& out) = 0;
  // Datagram carriers: packets that arrived in one receive batch (a stream carrier never calls
  // it). On a datagram carrier `pull` must fill whole packets (TransmitBatch::packets()).
  virtual void on_packets(std::span<const ReceivedPacket> packets) { (void)packets; }
  // Datagram carriers: `pull`, and where the pulled packets go: `to` is set to the address the
  // core validated for the path (a server path's peer moves only after a PATH_RESPONSE), or left
  // empty for the carrier's own peer (a client's connected socket).
  virtual bool pull_datagrams(wire::TransmitBatch& out,
                              std::optional<asio::ip::udp::endpoint>& to) {
    to.reset();
    return pull(out);
  }
  // Datagram carriers: one address-validation probe packet (PATH_CHALLENGE / PATH_RESPONSE) in
  // `out` and where it goes (empty: as pull_datagrams' packets); false when none is owed.
  virtual bool pull_probe(wire::TransmitBatch& out, std::optional<asio::ip::udp::endpoint>& to) {
    (void)out;
    (void)to;
    return false;
  }
  // Datagram carriers: this end now sends from a new local address
  // (Carrier::migrate_local_address); the peer must hear from it soon to validate it.
  virtual void on_local_address_moved() {}
  // Stream carriers that also carry datagrams (QUIC DATAGRAM, Carrier::max_datagram_frame):
  // frames that arrived one per datagram (DATA payloads point into `backing`) ...
  virtual void on_datagram_frames(const std::vector<wire::Frame>& frames,
                                  const wire::Slice& backing) {
    (void)frames;
    (void)backing;
  }
  // ... and the fates of pulled frames sent in datagrams (OutFrame::datagram_id): acknowledged
  // by the peer (or sent on the stream after all), or declared lost by the transport.
  virtual void on_datagram_fates(std::span<const std::uint64_t> acked,
                                 std::span<const std::uint64_t> lost) {
    (void)acked;
    (void)lost;
  }
};

// The 32-byte flow key a datagram carrier derives its packet keys from (core::crypto::FlowKey).
using FlowKeyBytes = std::array<wire::Byte, 32>;

class Carrier {
 public:
  virtual ~Carrier() = default;
  // Starts reading and writing; the handler is held weakly (a dead handler stops the carrier).
  virtual void start(std::weak_ptr<CarrierHandler> handler) = 0;
  // Replaces the handler (a listener hands a new carrier to a flow). Call on the executor.
  virtual void set_handler(std::weak_ptr<CarrierHandler> handler) = 0;
  // There may be frames to pull. Cheap; coalesces.
  virtual void kick() = 0;
  // Graceful: writes what was already pulled, shuts the transport down, then closes.
  virtual void close() = 0;
  // Immediate close (TCP: RST).
  virtual void abort() = 0;
  virtual bool reliable() const = 0;
  virtual std::string peer_address() const = 0;
  // This end's address ("host:port"), empty where the carrier does not say. Like
  // peer_address(), it may change while the carrier runs (a QUIC connection migrates).
  virtual std::string local_address() const { return {}; }
  virtual asio::any_io_executor executor() const = 0;
  // Moves the transport to a new local address ("host:port", numeric; port 0: any) without
  // interrupting it, where the transport can (QUIC connection migration). Errors found at once
  // (a bad or unusable address, a carrier that cannot migrate) are returned; the move itself
  // completes later, and if it fails the carrier stays where it was.
  virtual error_code migrate_local_address(const std::string& local_host_port) {
    (void)local_host_port;
    return std::make_error_code(std::errc::operation_not_supported);
  }
  // Stream carriers that can also send datagrams (QUIC DATAGRAM): the largest frame one
  // datagram carries now (0: none). A pulled frame with a datagram_id goes in one if it fits.
  // Any thread.
  virtual std::size_t max_datagram_frame() const { return 0; }
  // "tcp", "quic", ...: the scheme of the paths it carries (PathInfo::transport).
  virtual std::string_view transport() const { return {}; }
  // A datagram carrier (udpflow): frames travel in packets the core numbers (PathOptions
  // datagram); the session calls on_packets / pulls packets and hands it the flow key.
  virtual bool datagram() const { return false; }
  // Datagram carriers: the frame bytes one packet may hold.
  virtual std::size_t max_packet_payload() const { return 0; }
  // A client's datagram carrier: the largest datagram (UDP payload) the kernel's route to the
  // peer carried whole when the carrier was made, a ceiling for path-MTU probing; 0: unknown
  // (a server's paths take theirs from the listener, which knows the route before the carrier).
  virtual std::size_t route_max_datagram() const { return 0; }
  // Datagram carriers: the flow key, once the session's flow holds it; packets after the
  // path's handshake are protected with keys derived from it. Any thread; idempotent.
  virtual void set_flow_key(const FlowKeyBytes& key) { (void)key; }
  // Carriers whose transport controls congestion itself (TCP, QUIC): its state (TCP: read now;
  // QUIC: as its last send left it); nullopt when there is none yet or any more, and for other
  // carriers. Any thread.
  virtual std::optional<TransportCongestion> transport_congestion() const { return std::nullopt; }
};

using DialCallback = std::function<void(error_code, std::shared_ptr<Carrier>)>;

// Where a dial goes, with what a secure transport needs (the TLS settings of a quic:// path).
struct DialTarget {
  std::string host;
  std::uint16_t port = 0;
  TlsClientConfig tls;
  // PathSpec::max_datagram_size: for a quic path, the largest UDP payload towards a peer on
  // this host (0: the transport's default). Others ignore it.
  std::size_t max_datagram_size = 0;
};

// A transport kind ("tcp", "quic", later "udpflow") that can dial carriers.
class Transport {
 public:
  virtual ~Transport() = default;
  virtual std::string name() const = 0;
  // Connects to host:port; calls `done` once on `executor`.
  virtual void async_dial(asio::any_io_executor executor, const std::string& host,
                          std::uint16_t port, DialCallback done) = 0;
  // Connects to `target`; a transport without TLS ignores target.tls.
  virtual void async_dial_to(asio::any_io_executor executor, const DialTarget& target,
                             DialCallback done) {
    async_dial(std::move(executor), target.host, target.port, std::move(done));
  }
};

// Maps a transport name to its implementation ("tcp" is always registered).
class Registry {
 public:
  static Registry& instance();
  void add(std::shared_ptr<Transport> transport);
  std::shared_ptr<Transport> find(const std::string& name) const;

 private:
  Registry();
  mutable std::mutex mutex_;  // guards transports_ (add/find are thread-safe)
  std::vector<std::shared_ptr<Transport>> transports_;
};

}  // namespace rendr::carrier
