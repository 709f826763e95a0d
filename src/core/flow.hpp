#pragma once
// core::Flow — the sans-I/O state machine of one rendr flow (a byte stream, or messages in
// packet mode).
//
// It owns no socket and no clock: every input carries `now`, and every output is pulled.
// The runtime (or a simulation) feeds it frames and path events and asks it what to send on
// which path, which paths to dial or close, and when to call on_timer next.
//
// Not thread-safe: the caller serialises all calls.
#include <array>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "core/address_validation.hpp"
#include "core/config.hpp"
#include "core/crypto.hpp"
#include "core/stats.hpp"
#include "core/transport.hpp"
#include "core/types.hpp"
#include "wire/frame.hpp"
#include "wire/out_frame.hpp"
#include "wire/transmit_batch.hpp"

namespace rendr::core {

using wire::OutFrame;
using wire::TransmitBatch;

// Things the runtime must act on; drained with poll_event().
struct Event {
  enum class Kind {
    dial_path,     // client: connect the carrier of `path` now, then call on_path_connected
    close_path,    // drop the carrier of `path` (the core has already forgotten it)
    established,   // client: OPEN_ACK verified; dial() may return
    migrated,      // active path changed: `path` is the new one, `old_path` the old one
    readable,      // read() has bytes, EOF or an error to report
    writable,      // write() can accept bytes again
    finished,      // the flow is closed or failed; the runtime may release it
    mode_changed,  // the peer's MODE changed our mode to `mode`
    // Server: the client proved the flow key (a valid PROOF); only now may the flow be offered
    // to accept(). Once per flow.
    authenticated,
    // Server: a client did not prove the key on `path` (a wrong PROOF, another frame in its
    // place, or none in time). The path is closed; after an OPEN the flow fails too.
    authentication_failed,
    // Server: the provisional JOIN path `old_path` proved itself and is now `path`. No
    // close_path comes for an older carrier of `path`: the owner closes the carrier it
    // replaces when it sees this event.
    path_joined,
  };
  Kind kind;
  PathId path = kNoPath;
  PathId old_path = kNoPath;
  MigrateCause cause = MigrateCause::explicit_request;
  Mode mode = Mode::prime;
};

// Result of a server-side JOIN check. On ok the carrier is a *provisional* path, known to the
// flow as `provisional` until its PROOF attaches it under the JOIN's path id (path_joined).
struct JoinVerdict {
  wire::Status status = wire::Status::ok;
  PathId provisional = kNoPath;
};

// Path ids from here up name provisional JOIN paths on a server; a client's ids stay below.
inline constexpr PathId kFirstProvisionalPath = PathId{1} << 31;

// Frame bytes a datagram path's packet may hold by default: the 1200-byte safe datagram minus
// the protected packet's header (kind 1, dcid 8, pn 4) and its AEAD tag (16) (docs/protocol.md).
inline constexpr std::size_t kDefaultPacketPayload = 1200 - 13 - 16;
// A packet smaller than this could not hold a DATA frame worth sending.
inline constexpr std::size_t kMinPacketPayload = 256;

// How a path is carried and scheduled.
struct PathOptions {
  // reliable: the carrier repairs loss (TCP); datagram: the core numbers packets, detects loss,
  // controls congestion and paces (udpflow). A flow may mix both.
  TransportKind transport = TransportKind::reliable;
  std::uint32_t weight = 1;  // bond scheduling weight (0 counts as 1)
  // Datagram paths: frame bytes per packet (at least kMinPacketPayload).
  std::size_t max_packet_payload = kDefaultPacketPayload;
  // Datagram paths: the largest datagram (UDP payload bytes) the carrier can send unfragmented
  // (DF set, IP_PMTUDISC_PROBE). Above the starting size the flow probes the path's MTU up to
  // it with padded probe packets and grows its packets once one is acknowledged
  // (max_datagram_size(path) says the size in use). 0: no probing.
  std::size_t max_datagram_size = 0;
  // Datagram paths: the congestion controller of what this end sends on the path; nullopt:
  // FlowConfig::datagram_recovery's.
  std::optional<recovery::CongestionAlgorithm> congestion{};
  // Datagram paths on a server: the address the OPEN or JOIN came from, the size of that
  // datagram (the start of its 3x allowance) and whether a retry token proved it already. A
  // listener sets these; without `peer` the path's address is its carrier's business.
  std::optional<PeerAddress> peer{};
  std::size_t peer_datagram_bytes = 0;
  bool peer_validated = false;
};

// Where an authenticated datagram came from, as the runtime saw it.
struct PacketSource {
  PeerAddress from;
  std::size_t datagram_bytes = 0;  // the whole UDP payload, as received
};

// Where poll_probe's packet goes: `to`, or the path's current peer when nullopt.
struct ProbeTarget {
  std::optional<PeerAddress> to;
};

class Flow {
 public:
  // Client side: a new flow with a fresh FlowId and key pair. Paths are added with add_path.
  static std::unique_ptr<Flow> make_client(const FlowConfig& config, Time now);
  // Server side: a flow created from a verified-syntax OPEN that arrived on `first_path`.
  // Returns nullptr (and sets `status`) if the OPEN is unacceptable (version, bad key share).
  static std::unique_ptr<Flow> make_server(const FlowConfig& config, const wire::Open& open,
                                           PathId first_path, Time now, wire::Status& status);
  // The same for an OPEN that came over a carrier of kind `first.transport`.
  static std::unique_ptr<Flow> make_server(const FlowConfig& config, const wire::Open& open,
                                           PathId first_path, Time now, wire::Status& status,
                                           const PathOptions& first);

  ~Flow();
  Flow(const Flow&) = delete;
  Flow& operator=(const Flow&) = delete;

  // ---- identity / status
  Role role() const;
  const wire::FlowId& flow_id() const;
  FlowState state() const;
  FlowError error() const;
  Mode mode() const;
  PathId active_path() const;
  std::uint64_t migration_count() const;
  FlowStats stats(Time now) const;
  PathState path_state(PathId id) const;  // PathState::removed for unknown ids
  std::size_t path_count() const;         // paths neither dead nor removed
  // Server: the client has proven the flow key (PROOF). Until then nothing is delivered, nothing
  // but the handshake answers is sent, and the flow ends after handshake_timeout. Client: true.
  bool authenticated() const;
  // The flow key (docs/protocol.md §8) once this side holds it: a server from the OPEN on, a
  // client once it verified the OPEN_ACK. udpflow packet keys derive from it (§10.4).
  std::optional<crypto::FlowKey> flow_key() const;

  // ---- path management
  // Client: adds a path to keep alive (dialed at once, re-dialed after death). Returns its id.
  PathId add_path(Time now);
  // The same with a bond scheduling weight (0 counts as 1): while the paths have room a
  // weight-2 path gets twice the bytes of a weight-1 path; a full path takes what it can.
  PathId add_path(Time now, std::uint32_t weight);
  // The same with its transport kind (a datagram path is dialed like any other: on_path_connected
  // once its socket can send, then the OPEN or JOIN goes out in its first packet).
  PathId add_path(Time now, const PathOptions& options);
  bool set_path_weight(PathId id, std::uint32_t weight);
  // Removes a path (client: stops re-dialing it). Fails if it is the last path.
  bool remove_path(PathId id, Time now);
  // Client: the carrier of `id` is connected; the core sends OPEN or JOIN on it. A datagram
  // path's MTU search stays at or under `route_max_datagram`, what the carrier's route takes
  // whole (0: unknown; PathOptions::max_datagram_size is the other ceiling).
  void on_path_connected(PathId id, Time now, std::size_t route_max_datagram = 0);
  // Client: connecting the carrier of `id` failed; it will be re-dialed after a backoff.
  void on_dial_failed(PathId id, Time now);
  // Server: the answer to an OPEN for this flow that arrived on another carrier. If it repeats
  // the OPEN that created the flow (every field but path_id, which names the carrier a client
  // re-sends it on), it is the OPEN_ACK this flow sends on its first path, byte for byte: the
  // client resends when that path died before the answer arrived. Nothing secret is in it, and
  // the carrier is not attached (the sender has proven no key), so a replay gains nothing.
  // nullopt for any other OPEN (refuse it), on a client flow, or once the flow has finished.
  // An answered repeat also gives an unauthenticated flow another handshake_timeout: the
  // client will JOIN once it has the OPEN_ACK.
  std::optional<wire::OpenAck> open_ack_for_repeated_open(const wire::Open& open, Time now);
  // Server: checks a JOIN that arrived on a new carrier; on ok, holds it as a provisional path
  // (verdict.provisional) and queues JOIN_ACK with a fresh challenge on it. That path carries
  // nothing and replaces nothing: only a valid PROOF on it attaches it under the JOIN's path id
  // (replacing an older carrier with that id, which the owner closes on path_joined); anything
  // else, or no PROOF within handshake_timeout, closes it (authentication_failed).
  JoinVerdict on_join(const wire::Join& join, Time now);
  // The same for a JOIN that came over a carrier of kind `carrier.transport`.
  JoinVerdict on_join(const wire::Join& join, Time now, const PathOptions& carrier);
  // A carrier went down (transport error, EOF, reset). Never an application EOF.
  void on_path_down(PathId id, DownCause cause, Time now);
  // Stream path `id`'s transport saw the peer acknowledge packets of ours although no frame
  // arrived (QUIC holds the stream's frames back while it repairs a loss): both directions
  // work, so the path counts as heard and its silence restarts. Other paths: nothing.
  void on_path_acknowledged(PathId id, Time now);
  // Explicit migration to an up path.
  bool migrate(PathId id, Time now);

  // ---- modes
  // Switches the mode of our sending and announces it to the peer (MODE frame), which switches
  // its own sending too. race<->bond is illegal and changes nothing. Safe mid-transfer.
  SetModeResult set_mode(Mode mode, Time now);

  // ---- frames
  // A frame arrived on `id`. DATA payloads are taken from `backing` (the frame's payload must
  // point into it) so they can be kept without copying. Stream carriers only: a datagram
  // path's frames come in packets (on_packet); here they are ignored.
  void on_frame(PathId id, const wire::Frame& frame, const wire::Slice& backing, Time now);
  // ---- messages in a reliable path's datagrams (QUIC DATAGRAM; core/message_datagrams.hpp)
  // A packet flow's reliable path `id` can carry a DATA frame of up to `max_frame_bytes` in one
  // datagram of its carrier (0: none, every frame goes on its stream). Messages whose frame
  // fits go in datagrams (OutFrame::datagram_id set), larger ones on the stream. The runtime
  // says it whenever the carrier's size may have changed (it grows with QUIC's path MTU).
  void set_message_datagram_size(PathId id, std::size_t max_frame_bytes);
  // Frames that arrived in datagrams of reliable path `id`: only a packet flow's message DATA
  // is taken (anything else is dropped and counted as a protocol error).
  void on_datagram_frames(PathId id, std::span<const wire::Frame> frames,
                          const wire::Slice& backing, Time now);
  // The carrier's verdict on datagram `datagram_id` of path `id`: it arrived, or it was lost
  // (its message goes out again as the mode says; an unreliable flow's is replaced by a SKIP).
  void on_datagram_acked(PathId id, std::uint64_t datagram_id, Time now);
  void on_datagram_lost(PathId id, std::uint64_t datagram_id, Time now);
  // A datagram path's packet arrived: `number` is its full packet number (the runtime
  // reconstructs it from the truncated one against largest_received_packet), `frames` its frames
  // in order (DATA payloads point into `backing`). A packet received before is dropped whole;
  // so is one on a server path still waiting for its PROOF that does not start with it (the
  // client sends it again). ACK_RANGES in it drive the path's loss detection and congestion
  // control; what lost packets carried is sent again. On a reliable path, or an unknown one,
  // nothing happens.
  void on_packet(PathId id, std::uint64_t number, std::span<const wire::Frame> frames,
                 const wire::Slice& backing, Time now);
  // The same for a packet that came from `source` (a listener's datagram paths): the path's
  // address validation sees it first. A packet from an address other than the path's current
  // one never moves the path: if it is the newest of the path, that address is challenged
  // (poll_probe), and only its PATH_RESPONSE makes it current: peer_address(id) changes, and
  // the runtime, which reads it for every send, follows (no event: nothing else to do).
  void on_packet(PathId id, std::uint64_t number, std::span<const wire::Frame> frames,
                 const wire::Slice& backing, Time now, const PacketSource& source);
  // Where datagram path `id`'s packets go (nullopt: unknown, the carrier's own peer; or not a
  // datagram path), and whether that address is validated.
  std::optional<PeerAddress> peer_address(PathId id) const;
  bool peer_address_validated(PathId id) const;
  // Address-validation probes of datagram path `id`: a PATH_CHALLENGE to a candidate address, a
  // PATH_RESPONSE to the address a challenge came from. poll_probe fills `out` (empty, of its
  // own) with one packet and says where it goes; the runtime seals it like any packet of the
  // path and sends it there. Call while wants_probe (and after on_timer: challenges are retried
  // on a probe timeout). Every probe is within its address's 3x allowance.
  bool wants_probe(PathId id) const;
  std::optional<ProbeTarget> poll_probe(PathId id, Time now, TransmitBatch& out);
  // Counters of datagram path `id`'s address validation (zero for other paths).
  AddressValidationStats address_stats(PathId id) const;
  // This end of datagram path `id` now sends from a new local address (a client's carrier moved
  // to a new socket, Conn::migrate_local_address). The peer moves only after that address
  // answered its challenge, so it must hear from it soon even on an idle flow: a PING is owed on
  // the path (sent from the new address; its acknowledgement may come to either). False if `id`
  // is not an up datagram path of a client.
  bool on_local_address_moved(PathId id);
  // The largest packet number received on datagram path `id` (nullopt: none yet, or not a
  // datagram path): the reference for reconstructing truncated packet numbers.
  std::optional<std::uint64_t> largest_received_packet(PathId id) const;
  // The largest datagram (UDP payload bytes: frames + header + AEAD tag) datagram path `id`
  // may send now: its starting size, or what path-MTU probing has found since (nullopt: not a
  // datagram path). The runtime sizes its buffers and GSO segments by it.
  std::optional<std::size_t> max_datagram_size(PathId id) const;
  // Appends frames to send on `id` to the caller's batch, while it has room (control first;
  // the last frame may overshoot). Returns true if anything was appended.
  // On a datagram path the frames come in whole packets (TransmitBatch::packets(): each with
  // its packet number, its frames within the path's max_packet_payload), as many as the
  // congestion window and pacing allow; control frames (ACKs, PONG, a probe PING) go out even
  // when the window is full.
  bool poll_transmit(PathId id, Time now, TransmitBatch& out);
  // True if poll_transmit(id) would produce something now.
  bool wants_transmit(PathId id) const;
  // True if poll_transmit(id) is worth calling now: it would produce something, or finding
  // nothing would still inform the flow. A carrier that just wrote a batch pulls again only
  // then.
  bool wants_pull(PathId id) const;

  // ---- time
  void on_timer(Time now);
  std::optional<Time> next_deadline() const;

  // ---- events
  std::optional<Event> poll_event();

  // ---- application side
  // Accepts up to bytes.size() bytes into the send buffer; 0 if full (wait for `writable`).
  std::size_t write(wire::ConstBytes bytes, Time now);
  std::size_t write_capacity() const;
  // Copies up to out.size() delivered bytes; 0 with `eof()` or `error()` set means the end.
  std::size_t read(wire::MutableBytes out, Time now);
  std::size_t readable_bytes() const;
  bool eof() const;  // peer's FIN delivered and every byte before it read
  // Half-close: a FIN follows the last written byte. Reads go on until the peer's FIN.
  void close(Time now);
  // Aborts the flow: CLOSE to the peer (best effort), state failed(aborted).
  void abort(Time now);
  bool send_closed() const;

  // ---- packet flows (FlowConfig::packet; a server's from the OPEN, docs/design.md "Packet
  // mode"). Each call is one whole message. On a stream flow they answer closed / none.
  std::optional<PacketOptions> packet_options() const;
  MessageSendResult send_message(wire::ConstBytes message, Time now);
  // The next message (in order if the flow is ordered), if `out` holds it; else it stays queued.
  MessageReceiveResult receive_message(wire::MutableBytes out, Time now);
  std::optional<std::size_t> next_message_size() const;

 private:
  struct Impl;
  explicit Flow(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rendr::core
