#pragma once
// Consistent snapshots of a connection's state, for admin and monitoring.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "rendr/types.hpp"

namespace rendr {

// One path of a flow, as ConnStats::paths lists it.
struct PathInfo {
  PathId id = kNoPath;               // the path's number in its flow
  std::string spec;                  // "tcp://127.0.0.1:4000" (client) or the peer address (server)
  std::string state;                 // idle | dialing | handshaking | up | dead | removed
  bool active = false;               // prime mode sends on it now
  std::chrono::microseconds rtt{0};  // smoothed round-trip time
  std::chrono::microseconds rtt_var{0};         // its mean deviation
  std::chrono::microseconds last_heard_age{0};  // since anything last arrived on it
  std::uint64_t bytes_sent = 0;                 // bytes sent on this path
  std::uint64_t bytes_received = 0;             // bytes received on this path
  std::uint64_t frames_sent = 0;                // rendr frames of every type
  std::uint64_t frames_received = 0;            // rendr frames of every type
  std::uint64_t up_count = 0;                   // times it came up (after a handshake)
  std::uint64_t down_count = 0;                 // times it went down (last_down_cause says why)
  std::uint64_t delivery_rate = 0;  // bytes/s measured from acknowledged data (0: no sample yet)
  std::uint64_t in_flight = 0;      // bytes sent on this path and not yet acknowledged
  std::uint32_t weight = 1;         // bond scheduling weight (PathSpec::weight)
  std::string transport;            // "tcp", "quic", "udpflow" (empty: not known yet)
  // The transport's current addresses, "host:port" (empty where the transport does not say): a
  // quic:// or udpflow:// path's change when it migrates (Conn::migrate_local_address) or its
  // client's NAT rebinds.
  std::string local_address;  // this end's address, "host:port"
  std::string peer_address;   // the far end's address, "host:port"
  // DATA payload bytes sent again on this path (lost packets, replays after a failover).
  std::uint64_t bytes_retransmitted = 0;
  // Datagram paths (udpflow): their own loss recovery and congestion control. On a stream path
  // (TCP, QUIC), whose transport does this itself, packets_sent, packets_lost,
  // congestion_window, bytes_in_flight, pacing_rate, slow_start_threshold, congestion_control
  // and mtu are the transport's own, read when stats() is called (TCP: TCP_INFO; packets are
  // segments, lost ones are retransmissions, mtu is the MSS) or left by its last send (QUIC:
  // ngtcp2; packets_lost stays 0, ngtcp2 0.12 does not count them); the other fields here stay
  // 0. `rtt` above is rendr's smoothed RTT on both kinds.
  bool datagram = false;                // a datagram path (udpflow)
  std::uint64_t packets_sent = 0;       // datagrams sent on this path
  std::uint64_t packets_lost = 0;       // declared lost (packet or time threshold)
  std::uint64_t congestion_window = 0;  // bytes
  std::uint64_t bytes_in_flight = 0;    // whole packets the window counts, bytes
  std::uint64_t pacing_rate = 0;        // bytes/s (0: not pacing)
  std::uint64_t pto_count = 0;          // probe timeouts, in total
  // The probe timeout before backoff (loss recovery's RTT + max(4 RTT variance, 1 ms) + the
  // peer's ACK delay): a datagram path is declared dead after 7 of them without an ACK
  // (1 + 2 + 4, within the dead-path floor and cap).
  std::chrono::microseconds pto{0};
  // Losses declared, then acknowledged after all (reordering or a swing in queueing delay).
  std::uint64_t spurious_losses = 0;
  // Congestion events: recovery periods begun, each a loss (one or many packets) the
  // controller answered by lowering its window.
  std::uint64_t congestion_events = 0;
  // Congestion events whose every loss proved spurious: their window reduction was undone.
  std::uint64_t congestion_events_undone = 0;
  // Times losses spanning several PTOs collapsed the window to its minimum (RFC 9002 §7.6).
  std::uint64_t persistent_congestions = 0;
  // Loss-based controllers' slow-start threshold, bytes (0: still in the first slow start).
  std::uint64_t slow_start_threshold = 0;
  // This end's congestion controller on the path ("cubic", "newreno" or "bbr";
  // PathSpec::congestion); on a TCP path the kernel's name for the socket's ("cubic", "bbr", ...).
  std::string congestion_control;
  std::uint64_t bandwidth_estimate = 0;  // BBR's bottleneck bandwidth, bytes/s (0 otherwise)
  std::uint64_t mtu = 0;                 // the datagram size in use (UDP payload bytes)
  // The most path-MTU probing tries: the configured ceiling (PathSpec::max_datagram_size,
  // ListenOptions::udpflow_max_datagram_size), or less if the route to the peer takes less
  // whole (its interface's MTU less the IP and UDP headers); 0: no probing.
  std::uint64_t mtu_ceiling = 0;
  // Times the path's MTU shrank under it (full-size datagrams lost while smaller ones passed):
  // it fell back to 1200 bytes and probed upward again, without an error.
  std::uint64_t mtu_black_holes = 0;
  // Datagram paths: address validation (docs/design.md, "Address validation"). A server path
  // moves to a new address of its client (a NAT rebinding) only once it answered a challenge.
  std::uint64_t path_challenges_sent = 0;
  std::uint64_t path_validations = 0;         // new addresses validated: the path moved
  std::uint64_t path_validations_failed = 0;  // new addresses that never answered
  std::uint64_t amplification_blocked = 0;    // sends withheld by the 3x limit
  std::uint64_t bytes_to_unvalidated = 0;     // sent to addresses not validated yet
  // Datagrams from another address that could not start a validation: replays of older packets.
  std::uint64_t stale_address_packets = 0;
  // quic:// paths of a packet flow: messages sent one per QUIC DATAGRAM, and how many of those
  // QUIC acknowledged or declared lost (a lost reliable message is sent again).
  std::uint64_t datagrams_sent = 0;
  std::uint64_t datagrams_acked = 0;  // of datagrams_sent: acknowledged by QUIC
  std::uint64_t datagrams_lost = 0;   // of datagrams_sent: declared lost by QUIC
  // Of datagrams_lost: QUIC never judged them (rendr took them as lost after a few PTOs).
  std::uint64_t datagrams_unjudged = 0;
};

// A consistent snapshot of one flow and its paths (Conn::stats(), PacketConn::stats()).
struct ConnStats {
  FlowId flow_id{};                    // the flow's 128-bit id
  std::string state;                   // opening | established | migrating | closed | failed
  Mode mode = Mode::prime;             // the scheduling mode now
  PathId active_path = kNoPath;        // prime mode's path now
  std::uint64_t migrations = 0;        // changes of the active path, every cause
  std::uint64_t recv_queue_hwm = 0;    // most bytes ever waiting for the application to read
  std::uint64_t recv_dups = 0;         // duplicate copies received and dropped (race mode)
  std::uint64_t bond_stuck_skips = 0;  // bond mode passed over a stuck path
  std::uint64_t bytes_written = 0;     // by the application (messages: their payload bytes)
  std::uint64_t bytes_acked = 0;       // of bytes_written: acknowledged by the peer
  std::uint64_t bytes_delivered = 0;   // to the application, from the peer
  std::uint64_t send_buffered = 0;     // written and not yet acknowledged
  std::uint64_t recv_buffered = 0;     // received and not yet read
  std::uint64_t recv_memory = 0;  // storage held for recv_buffered (pinned read blocks, copies)
  std::uint64_t retransmitted_bytes = 0;  // DATA payload bytes sent again, every path
  std::uint64_t joins_rejected = 0;       // client: JOINs of a new path the server refused
  std::vector<PathInfo> paths;            // the flow's paths (`state` says which are up)
  std::uint64_t mode_switches = 0;        // by set_mode here or the peer's announcement
  // `migrations` by cause.
  std::uint64_t migrations_explicit = 0;
  std::uint64_t migrations_death = 0;    // the active path died
  std::uint64_t migrations_follow = 0;   // the peer moved (server side)
  std::uint64_t migrations_quality = 0;  // prime mode moved to a clearly better path
  // The path that went down last (kNoPath: none yet) and why: eof | reset | error | silent |
  // handshake-timeout | protocol-error | replaced | removed | flow-finished.
  PathId last_down_path = kNoPath;
  std::string last_down_cause;       // see above
  std::uint64_t joins_accepted = 0;  // server: paths that joined after the first (JOIN ok)
  // Frames refused as a broken or hostile peer's (outside the window, above the message limit,
  // overlapping what arrived, ...): ignored, or the path closed.
  std::uint64_t protocol_errors = 0;
};

// Counters of a listener: what it refused and why.
struct ListenerStats {
  std::uint64_t connections_accepted = 0;  // transport connections
  std::uint64_t flows_opened = 0;          // OPENs that made a flow
  // JOINs whose MAC verified; each is then held until its PROOF answers the server's challenge
  // (docs/protocol.md §8): a failed or missing PROOF counts in authentication_failures.
  std::uint64_t joins_accepted = 0;
  std::uint64_t rejected_malformed = 0;     // garbage or a non-OPEN/JOIN first frame
  std::uint64_t rejected_unknown_flow = 0;  // JOIN for a flow that does not exist
  std::uint64_t rejected_bad_proof = 0;     // JOIN MAC wrong
  std::uint64_t rejected_replay = 0;        // JOIN counter replayed
  std::uint64_t rejected_capacity = 0;      // max_flows flows, none of them evictable
  std::uint64_t rejected_timeout = 0;       // no first frame in time
  std::uint64_t live_flows = 0;             // flows held now
  // OPENs repeating the one that created a live flow (a client resending it after its first
  // path died): answered with that flow's OPEN_ACK, then closed, never attached.
  std::uint64_t duplicate_opens = 0;
  // Limits of the flow table (ListenOptions).
  std::uint64_t rejected_accept_queue = 0;  // OPEN while max_unaccepted flows wait, none evictable
  std::uint64_t rejected_paths_per_flow = 0;  // JOIN beyond max_paths_per_flow (status capacity)
  std::uint64_t evicted_half_open = 0;        // oldest half-open connection closed for a new one
  std::uint64_t evicted_flows = 0;            // pathless flows dropped to make room for an OPEN
  std::uint64_t evicted_unproven = 0;   // flows still awaiting their PROOF dropped for an OPEN
  std::uint64_t dropped_abandoned = 0;  // silent since OPEN, pathless for abandoned_flow_timeout
  std::uint64_t half_open = 0;          // connections waiting for their first frame now
  std::uint64_t unaccepted_flows = 0;   // flows opened and not yet taken by accept() now
  // Clients that did not prove the flow key (docs/protocol.md §8): a wrong PROOF (e.g. another
  // pre-shared key), another frame in its place, or none within the handshake timeout, after an
  // OPEN or a JOIN. Such a flow is never offered to accept(); such a path is never attached.
  std::uint64_t authentication_failures = 0;
  std::uint64_t rejected_memory = 0;  // OPENs refused (capacity): the memory budget is used up
  // udpflow: OPENs answered with a stateless RETRY (ListenOptions::udpflow_retry_above_unproven),
  // and the tokens echoed back: valid, expired (answered with a new RETRY), forged (dropped).
  std::uint64_t retries_sent = 0;
  std::uint64_t retry_tokens_valid = 0;    // the OPEN went on
  std::uint64_t retry_tokens_expired = 0;  // answered with a new RETRY
  std::uint64_t retry_tokens_forged = 0;   // dropped
};

// Every flow of one Engine (its io_context), client and server: for an embedder's monitoring
// (the numbers behind `rendr listen --metrics`). A flow counts from the moment it is
// established (client: OPEN_ACK verified; server: the client proved the key) until it has
// finished; the totals add the ended flows' final counters to the live ones', so they only grow.
struct EngineStats {
  std::uint64_t flows_started = 0;        // established, live or ended
  std::uint64_t flows_closed = 0;         // finished cleanly (both sides closed)
  std::uint64_t flows_failed = 0;         // finished with an error: abort, budget, protocol error
  std::uint64_t migrations_explicit = 0;  // migrations by cause, as in ConnStats
  std::uint64_t migrations_death = 0;     // as in ConnStats
  std::uint64_t migrations_follow = 0;    // as in ConnStats
  std::uint64_t migrations_quality = 0;   // as in ConnStats
  std::uint64_t bytes_written = 0;        // by the applications
  std::uint64_t bytes_delivered = 0;      // to the applications
  std::uint64_t retransmitted_bytes = 0;  // DATA payload bytes sent again
  std::vector<ConnStats> flows;  // the live flows, each a snapshot as Conn::stats() gives it
};

}  // namespace rendr
