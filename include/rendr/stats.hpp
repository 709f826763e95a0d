#pragma once
// Consistent snapshots of a connection's state, for admin and monitoring.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "rendr/types.hpp"

namespace rendr {

struct PathInfo {
  PathId id = kNoPath;
  std::string spec;   // "tcp://127.0.0.1:4000" (client) or the peer address (server)
  std::string state;  // idle | dialing | handshaking | up | dead | removed
  bool active = false;
  std::chrono::microseconds rtt{0};
  std::chrono::microseconds rtt_var{0};
  std::chrono::microseconds last_heard_age{0};
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t frames_sent = 0;
  std::uint64_t frames_received = 0;
  std::uint64_t up_count = 0;
  std::uint64_t down_count = 0;
  std::uint64_t delivery_rate = 0;  // bytes/s measured from acknowledged data (0: no sample yet)
  std::uint64_t in_flight = 0;      // bytes sent on this path and not yet acknowledged
  std::uint32_t weight = 1;         // bond scheduling weight (PathSpec::weight)
};

struct ConnStats {
  FlowId flow_id{};
  std::string state;  // opening | established | migrating | closed | failed
  Mode mode = Mode::prime;
  PathId active_path = kNoPath;
  std::uint64_t migrations = 0;
  std::uint64_t recv_queue_hwm = 0;
  std::uint64_t recv_dups = 0;
  std::uint64_t bond_stuck_skips = 0;
  std::uint64_t bytes_written = 0;
  std::uint64_t bytes_acked = 0;
  std::uint64_t bytes_delivered = 0;
  std::uint64_t send_buffered = 0;
  std::uint64_t recv_buffered = 0;
  std::uint64_t recv_memory = 0;  // storage held for recv_buffered (pinned read blocks, copies)
  std::uint64_t retransmitted_bytes = 0;
  std::uint64_t joins_rejected = 0;
  std::vector<PathInfo> paths;
  std::uint64_t mode_switches = 0;  // by set_mode here or the peer's announcement
  // `migrations` by cause.
  std::uint64_t migrations_explicit = 0;
  std::uint64_t migrations_death = 0;
  std::uint64_t migrations_follow = 0;
  std::uint64_t migrations_quality = 0;
};

// Counters of a listener: what it refused and why.
struct ListenerStats {
  std::uint64_t connections_accepted = 0;  // transport connections
  std::uint64_t flows_opened = 0;
  std::uint64_t joins_accepted = 0;
  std::uint64_t rejected_malformed = 0;     // garbage or a non-OPEN/JOIN first frame
  std::uint64_t rejected_unknown_flow = 0;  // JOIN for a flow that does not exist
  std::uint64_t rejected_bad_proof = 0;     // JOIN MAC wrong
  std::uint64_t rejected_replay = 0;        // JOIN counter replayed
  std::uint64_t rejected_capacity = 0;      // half-open or flow limits
  std::uint64_t rejected_timeout = 0;       // no first frame in time
  std::uint64_t live_flows = 0;
  // OPENs repeating the one that created a live flow (a client resending it after its first
  // path died): answered with that flow's OPEN_ACK, then closed, never attached.
  std::uint64_t duplicate_opens = 0;
  std::uint64_t rejected_memory = 0;  // OPENs refused (capacity): the memory budget is used up
};

}  // namespace rendr
