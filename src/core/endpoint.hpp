#pragma once
// core::Endpoint — the sans-I/O acceptor of first frames on the server side: it decides what
// each new transport connection's first frame (OPEN or JOIN) leads to, owns the limits of the
// flow table and counts every refusal and eviction. No sockets, no clock: inputs carry `now`,
// actions are pulled (poll_action) and next_deadline() says when to call on_timer.
//
// Ownership: the endpoint keeps one record per flow (FlowId -> limits bookkeeping); the caller
// owns the core::Flow objects and serialises each flow on its own (the runtime's Session holds
// its Flow under its mutex, the simulation holds it directly). So the endpoint never calls into
// a flow it did not just create: for a repeated OPEN or a JOIN it names the flow, the owner asks
// the flow (Flow::open_ack_for_repeated_open, admit_join below) and reports the answer back
// (answer_repeated_open, on_join_result). The owner also reports what the endpoint needs to
// judge a flow: how many paths it has and whether the client sent anything after its OPEN
// (on_flow_report), when the application accepted it and when it finished.
//
// Limits (docs/design.md, "Endpoint"):
//  - half-open connections (no first frame yet): at most max_half_open; a new one evicts the
//    oldest rather than being refused, and each is closed after first_frame_timeout;
//  - flows: at most max_flows, and at most max_unaccepted not yet taken by the application.
//    When either table is full, a flow without a path is evicted (never-heard ones first, then
//    the longest pathless) before a new OPEN is refused;
//  - a flow whose client sent nothing after its OPEN and has no path is dropped after
//    abandoned_flow_timeout (anyone may OPEN without a PSK: such flows must be cheap);
//  - paths per flow: a JOIN that would add a path beyond max_paths_per_flow is refused with
//    status `capacity` (admit_join).
//
// Datagram transports: their first packet arrives without a transport handshake, so the source
// address is unproven. The DatagramOrigin overload of on_first_frame takes it: under load (more
// than retry_above_unproven flows awaiting their PROOF) an OPEN without a valid retry token is
// answered with a RETRY carrying one (core/retry_token.hpp) and no state is kept; the new
// flow's first path gets the address and its 3x allowance (core/address_validation.hpp).
// Reliable transports (TCP, a QUIC stream) have validated the address already, which is why
// on_connection takes no address.
//
// Not thread-safe: the caller serialises all calls (admit_join is a free function, run under the
// flow's serialisation instead).
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <tuple>

#include "core/config.hpp"
#include "core/flow.hpp"
#include "core/peer_address.hpp"
#include "core/retry_token.hpp"
#include "core/types.hpp"
#include "wire/frame.hpp"

namespace rendr::core {

struct EndpointLimits {
  std::size_t max_half_open = 256;
  Duration first_frame_timeout = 5s;
  std::size_t max_flows = 4096;
  std::size_t max_unaccepted = 1024;
  std::size_t max_paths_per_flow = 16;
  Duration abandoned_flow_timeout = 10s;
  // Datagram carriers: with this many flows awaiting their PROOF, an OPEN from an address
  // without a valid retry token gets a RETRY instead of a flow (0: always; SIZE_MAX: never).
  std::size_t retry_above_unproven = 64;
  Duration retry_token_lifetime = 10s;
};

struct EndpointStats {
  std::uint64_t connections = 0;  // transport connections seen
  std::uint64_t flows_opened = 0;
  std::uint64_t joins_accepted = 0;
  std::uint64_t duplicate_opens = 0;  // repeats of a live flow's OPEN, answered with its OPEN_ACK
  std::uint64_t rejected_malformed = 0;
  std::uint64_t rejected_unknown_flow = 0;
  std::uint64_t rejected_bad_proof = 0;
  std::uint64_t rejected_replay = 0;
  std::uint64_t rejected_capacity = 0;        // OPEN: max_flows flows, none evictable
  std::uint64_t rejected_accept_queue = 0;    // OPEN: max_unaccepted flows, none evictable
  std::uint64_t rejected_paths_per_flow = 0;  // JOIN: max_paths_per_flow paths already
  std::uint64_t rejected_memory = 0;          // OPEN: the flows' memory budget is used up
  std::uint64_t rejected_timeout = 0;         // no first frame within first_frame_timeout
  std::uint64_t evicted_half_open = 0;        // oldest half-open closed for a new connection
  std::uint64_t evicted_flows = 0;            // pathless flows dropped for a new OPEN
  std::uint64_t evicted_unproven = 0;   // flows still awaiting their PROOF dropped for a new OPEN
  std::uint64_t dropped_abandoned = 0;  // silent pathless flows after the timeout
  // Datagram carriers (DatagramOrigin): RETRYs sent instead of a flow, and the tokens that
  // came back with an OPEN.
  std::uint64_t retries_sent = 0;
  std::uint64_t retry_tokens_valid = 0;
  std::uint64_t retry_tokens_expired = 0;  // under load: answered with a fresh RETRY
  std::uint64_t retry_tokens_forged = 0;   // under load: dropped unanswered
  // Gauges.
  std::uint64_t half_open = 0;
  std::uint64_t live_flows = 0;
  std::uint64_t unaccepted_flows = 0;
};

using ConnectionId = std::uint64_t;

// A flow's entry in the endpoint. `serial` tells a flow from a later one with the same FlowId
// (an OPEN replayed after the first flow ended), so a late report never touches the wrong one.
struct FlowRef {
  wire::FlowId id{};
  std::uint64_t serial = 0;
};

// What the caller must do; drained with poll_action().
struct EndpointAction {
  enum class Kind {
    close_connection,  // a half-open connection: evicted or timed out (already counted)
    drop_flow,         // abort the flow and hand it to nobody; on_flow_finished follows
  };
  Kind kind = Kind::close_connection;
  ConnectionId connection = 0;
  FlowRef flow{};
};

// The verdict on a first frame.
struct Admission {
  enum class Kind {
    open,           // `created` is a new server flow; the connection is its first path
    repeated_open,  // an OPEN naming `flow`: ask it, then answer_repeated_open
    join,           // a JOIN for `flow`: admit_join on it, then on_join_result
    refuse,         // send `answer`, then close the connection
    drop,           // close the connection without an answer
  };
  Kind kind = Kind::drop;
  FlowRef flow{};
  std::unique_ptr<Flow> created;
  std::optional<wire::Frame> answer;
};

// Where a datagram carrier's first packet came from.
struct DatagramOrigin {
  PeerAddress from;
  std::size_t datagram_bytes = 0;  // the whole UDP payload
  // The token of a RETRY frame that came before the OPEN in the same packet.
  std::optional<wire::RetryToken> token{};
};

// A flow's owner's view of it. `version` grows with each report, so reports that cross on
// their way (several threads) are applied in order.
struct FlowReport {
  std::uint64_t version = 0;
  std::size_t paths = 0;       // carriers attached now
  bool heard = false;          // the client sent something after its OPEN (DATA, PING, a JOIN...)
  bool authenticated = false;  // the client's PROOF arrived (Flow::authenticated)
};

// On the flow's owner's side: a JOIN that would add a path to a flow that has
// `max_paths` already is refused with `capacity` (a JOIN replacing the carrier of a path the
// flow has is not a new path); otherwise Flow::on_join decides.
JoinVerdict admit_join(Flow& flow, const wire::Join& join, std::size_t max_paths, Time now);
// The same for a JOIN that came over a carrier of kind `carrier.transport`.
JoinVerdict admit_join(Flow& flow, const wire::Join& join, std::size_t max_paths, Time now,
                       const PathOptions& carrier);

class Endpoint {
 public:
  Endpoint(const FlowConfig& config, const EndpointLimits& limits);

  const EndpointLimits& limits() const { return limits_; }
  // Counters and gauges.
  EndpointStats stats() const;

  // ---- connections
  // A transport connection arrived. With max_half_open waiting already, the oldest of them
  // is evicted (close_connection) rather than the new one refused: a healthy client's first
  // frame arrives within one round trip, so an attacker must open max_half_open connections
  // faster than that to push it out, and no source address (NATs share them, floods spoof
  // many) is needed to judge.
  ConnectionId on_connection(Time now);
  // The connection's first frame. A connection the endpoint has closed already gets `drop`.
  Admission on_first_frame(ConnectionId connection, const wire::Frame& first, Time now);
  // The same for a first frame that came over a carrier of kind `carrier.transport` (a new
  // flow's first path is of that kind).
  Admission on_first_frame(ConnectionId connection, const wire::Frame& first, Time now,
                           const PathOptions& carrier);
  // The same for a datagram carrier's first packet from `origin`. An OPEN may be answered with
  // a RETRY (Admission::refuse, `answer` a wire::Retry: send it to origin.from, keep nothing);
  // a created flow's first path, and a JOIN's path (pass `carrier` on to admit_join), start at
  // origin.from with its 3x allowance, validated already if the OPEN's token was.
  Admission on_first_frame(ConnectionId connection, const wire::Frame& first, Time now,
                           const PathOptions& carrier, const DatagramOrigin& origin);
  // What a datagram path starts with for a first packet from `origin` (the JOIN's carrier).
  static PathOptions with_origin(PathOptions carrier, const DatagramOrigin& origin);
  // The connection went away before its first frame (`protocol_error`: it sent garbage).
  void on_connection_lost(ConnectionId connection, bool protocol_error);

  // ---- answers through a flow
  // The frame answering a repeated OPEN, from Flow::open_ack_for_repeated_open (nullopt: the
  // flow refused it, or has gone).
  wire::Frame answer_repeated_open(const std::optional<wire::OpenAck>& ack);
  // admit_join's verdict on the connection routed to `flow`; counts it. Returns the refusal to
  // send before closing, nullopt if the JOIN was accepted.
  std::optional<wire::Frame> on_join_result(const FlowRef& flow, wire::Status status);

  // ---- reports of a flow's owner
  void on_flow_report(const FlowRef& flow, const FlowReport& report, Time now);
  // The application took the flow (accept()).
  void on_flow_accepted(const FlowRef& flow);
  // The flow finished (closed, failed, aborted or dropped): its FlowId is free again.
  void on_flow_finished(const FlowRef& flow);

  // ---- time and actions
  std::optional<Time> next_deadline() const;
  void on_timer(Time now);
  std::optional<EndpointAction> poll_action();

 private:
  struct Record {
    std::uint64_t serial = 0;
    bool heard = false;
    bool accepted = false;
    bool dropping = false;  // dropped; waits for on_flow_finished, counts for no limit
    std::uint64_t report_version = 0;
    std::optional<Time> pathless_since;  // unset while a carrier is attached (the OPEN's first)
    bool authenticated = false;          // reported: the client proved the key
  };
  // Eviction order of pathless flows: never heard first, then the longest without a path.
  using PathlessKey = std::tuple<bool, Time, wire::FlowId>;

  Admission open(const wire::Open& open, Time now, const PathOptions& carrier);
  Admission join(const wire::Join& join);
  Record* find(const FlowRef& flow);
  // Evicts the first pathless flow (of those not yet accepted, if `unaccepted_only`), else the
  // oldest flow still awaiting its PROOF.
  bool evict(bool unaccepted_only);
  bool has_evictable(bool unaccepted_only) const;
  void drop(const wire::FlowId& id, Record& record);
  void set_pathless(const wire::FlowId& id, Record& record, bool pathless, Time now);
  void set_heard(const wire::FlowId& id, Record& record);
  static Admission refusal(wire::Frame answer);

  const FlowConfig config_;
  const EndpointLimits limits_;
  EndpointStats stats_;
  ConnectionId next_connection_ = 1;
  std::uint64_t next_serial_ = 1;
  std::map<ConnectionId, Time> half_open_;  // ids grow with time: the first is the oldest
  std::map<wire::FlowId, Record> flows_;
  std::set<PathlessKey> pathless_;
  // Flows whose client has not proved the key yet, oldest (lowest serial) first. Anyone can
  // OPEN and hold the connection, so with the tables full the oldest of them makes room for a
  // new OPEN (as the half-open table does): an attacker must then open flows faster than a
  // genuine client's PROOF takes (one round trip) to keep it out.
  std::map<std::uint64_t, wire::FlowId> unproven_;
  std::size_t live_ = 0;        // records not dropping
  std::size_t unaccepted_ = 0;  // of those, not yet accepted
  std::deque<EndpointAction> actions_;
  RetryTokens retry_tokens_;  // a random secret of this endpoint
};

}  // namespace rendr::core
