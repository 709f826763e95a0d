#pragma once
// Snapshot types produced by core::Flow::stats().
#include <cstdint>
#include <string_view>
#include <vector>

#include "core/address_validation.hpp"
#include "core/transport.hpp"
#include "core/types.hpp"

namespace rendr::core {

struct PathStats {
  PathId id = kNoPath;
  PathState state = PathState::idle;
  bool active = false;
  Duration srtt{};
  Duration rttvar{};
  Duration min_rtt{};
  Duration last_heard_age{};         // time since any frame arrived on this path
  std::uint64_t bytes_sent = 0;      // DATA payload bytes
  std::uint64_t bytes_received = 0;  // DATA payload bytes
  std::uint64_t frames_sent = 0;
  std::uint64_t frames_received = 0;
  std::uint64_t up_count = 0;             // times it came up (first attach + rejoins)
  std::uint64_t down_count = 0;           // times it went down
  std::uint64_t delivery_rate = 0;        // bytes/s, measured from acknowledged data (0: no sample)
  std::uint64_t bytes_retransmitted = 0;  // DATA payload bytes sent here again (any transport)
  std::uint64_t in_flight = 0;            // DATA bytes sent here and not yet acknowledged
  std::uint32_t weight = 1;               // bond scheduling weight
  // Datagram paths (all 0 on a reliable path): their loss recovery (core/recovery/).
  TransportKind transport = TransportKind::reliable;
  std::uint64_t packets_sent = 0;
  std::uint64_t packets_lost = 0;
  std::uint64_t packets_received = 0;
  std::uint64_t packets_duplicate = 0;  // received again (dropped whole)
  std::uint64_t congestion_window = 0;  // bytes
  std::uint64_t bytes_in_flight = 0;    // whole packets' bytes the window counts (cwnd's use)
  std::uint64_t pacing_rate = 0;        // bytes/s (0: not pacing)
  // The sending side's congestion controller ("cubic", "newreno", "bbr") and its
  // bottleneck-bandwidth estimate in bytes/s (BBR only; 0 otherwise).
  std::string_view congestion_control;
  std::uint64_t bandwidth_estimate = 0;
  std::uint64_t pto_count = 0;  // probe timeouts, in total
  // Declared lost, then acknowledged after all (reordering or a delay swing, not loss), and the
  // congestion events whose every loss proved spurious (their window reduction was undone).
  std::uint64_t spurious_losses = 0;
  std::uint64_t congestion_events_undone = 0;
  // Recovery periods begun: losses the congestion controller answered by lowering its window
  // (one per period, however many packets it lost).
  std::uint64_t congestion_events = 0;
  // Window collapses to the minimum: losses spanning several PTOs (RFC 9002 §7.6).
  std::uint64_t persistent_congestions = 0;
  // Bytes; 0 while the path is still in its first slow start.
  std::uint64_t slow_start_threshold = 0;
  std::uint32_t consecutive_ptos = 0;   // in a row without an acknowledgement (liveness)
  std::uint64_t max_datagram_size = 0;  // bytes on the wire per packet (its MTU share)
  // The top of the path-MTU search: the configured ceiling, or what the carrier's route takes
  // whole if that is less (0: no search).
  std::uint64_t mtu_ceiling = 0;
  // Times the path's MTU was found to have shrunk (full-size packets lost while smaller ones
  // passed): it fell back to the base size and searched upward again (core/mtu_prober.hpp).
  std::uint64_t mtu_black_holes = 0;
  // Reliable paths of a packet flow (QUIC DATAGRAM): messages sent in datagrams, and the
  // carrier's verdicts on them.
  std::uint64_t datagrams_sent = 0;
  std::uint64_t datagrams_acked = 0;
  std::uint64_t datagrams_lost = 0;
  std::uint64_t datagrams_unjudged = 0;  // of datagrams_lost: never judged, taken as lost
  AddressValidationStats address;        // datagram paths: address validation
  Duration pto{};  // the probe timeout before backoff (srtt + max(4 rttvar, 1 ms) + ACK delay)
};

struct FlowStats {
  wire::FlowId flow_id{};
  Role role = Role::client;
  Mode mode = Mode::prime;
  FlowState state = FlowState::opening;
  PathId active_path = kNoPath;
  std::uint64_t migrations = 0;
  std::uint64_t migrations_explicit = 0;
  std::uint64_t migrations_death = 0;
  std::uint64_t migrations_follow = 0;
  std::uint64_t bytes_written = 0;    // accepted from the application
  std::uint64_t bytes_acked = 0;      // acknowledged by the peer
  std::uint64_t bytes_delivered = 0;  // given to the application
  std::uint64_t send_buffered = 0;    // written but not yet acknowledged
  std::uint64_t recv_buffered = 0;    // received but not yet read (incl. reorder)
  std::uint64_t recv_memory = 0;      // block storage those bytes hold (RecvBuffer::memory)
  std::uint64_t recv_queue_hwm = 0;   // largest reorder-buffer depth (segments)
  std::uint64_t recv_dups = 0;        // DATA frames (or parts) already received
  // Packet flows: messages accepted by send_message, and distinct messages received.
  std::uint64_t messages_sent = 0;
  std::uint64_t messages_received = 0;
  std::uint64_t retransmitted_bytes = 0;
  std::uint64_t joins_accepted = 0;
  std::uint64_t joins_rejected = 0;  // bad MAC or replay
  std::uint64_t protocol_errors = 0;
  std::uint64_t migrations_quality = 0;  // prime mode moved to a clearly better path
  std::uint64_t mode_switches = 0;       // mode changes, by set_mode or by the peer's MODE
  std::uint64_t bond_stuck_skips = 0;    // bond: a path that wanted data was passed over
  // The path that went down last (kNoPath: none yet) and why, e.g. for "path 2 died (silent)".
  PathId last_down_path = kNoPath;
  DownCause last_down_cause = DownCause::eof;
  std::vector<PathStats> paths;
};

}  // namespace rendr::core
