#pragma once
// Tunables of a flow. Defaults are documented in docs/design.md (liveness, buffers, redial).
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <vector>

#include "core/address_validation.hpp"
#include "core/memory_budget.hpp"
#include "core/message.hpp"
#include "core/recovery/config.hpp"
#include "core/types.hpp"

namespace rendr::core {

using namespace std::chrono_literals;

// Prime mode's move to a clearly better path (core/quality_monitor.hpp): the candidate's
// recent minimum unloaded RTT (over the last 5-10 s of samples, rtt.hpp) must be lower than the
// active path's by `margin` (relative) and by `min_gain`, continuously for `dwell`, and `cooldown`
// must have passed since the previous quality switch. Only the client switches; the server follows.
struct QualityPolicy {
  double margin = 0.25;
  // A few ms of RTT is within scheduling noise on a busy host (a path that is busy with bulk
  // data is judged by few clean samples) and not worth a switch.
  Duration min_gain = 5ms;
  Duration dwell = 2s;
  Duration cooldown = 10s;
  // Unloaded RTT samples within RttEstimator::kRecentHorizon each side needs to be compared.
  std::size_t samples_needed = 3;
  // A busy active path has no unloaded samples; when a standby looks clearly better than its
  // loaded RTT, the active path pauses new DATA until its flight drains and probes (one RTT of
  // idle link), at most this often. A probe waits at most probe_drain_limit for the drain.
  Duration probe_interval = 500ms;
  Duration probe_drain_limit = 1s;
};

struct FlowConfig {
  Mode mode = Mode::prime;

  // Buffers (memory bounds; full buffers are back-pressure).
  std::size_t send_buffer = 8 * 1024 * 1024;  // bytes kept until acknowledged
  std::size_t recv_window = 8 * 1024 * 1024;  // bytes the peer may have in flight to us
  std::size_t max_data_payload = 64 * 1024;   // per DATA frame on reliable carriers
  // Shared by a listener's flows (core/memory_budget.hpp): the receive window advertised beyond
  // what was read is reserved from it. nullptr: recv_window alone bounds the peer.
  std::shared_ptr<MemoryBudget> memory_budget;

  // Acknowledgements: an ACK goes out after this many new bytes or this delay.
  std::size_t ack_every_bytes = 256 * 1024;
  Duration max_ack_delay = 2ms;

  // Liveness. A path is dead when an ack-eliciting frame sent on it has been followed by
  // silence for deadline = clamp(2*srtt + 8*rttvar + max_ack_delay, dead_floor, dead_cap);
  // before the path's first RTT sample, handshake_timeout stands in for the formula.
  Duration dead_floor = 40ms;
  Duration dead_cap = 3s;
  // ... unless the peer has been silent on every path as long: it may be starved of CPU, not
  // gone, and no other path would do better. Such a path dies after this much silence.
  Duration silent_peer_grace = 500ms;
  // In race every path already carries every byte, so a path's death is not on the
  // application's path and detecting it can wait longer; a false death (a path whose answers
  // queue behind bulk data) costs a re-dial and the whole window sent again.
  Duration race_dead_floor = 250ms;
  Duration ping_interval_active = 50ms;  // keeps the active path measured when idle
  Duration ping_interval_standby = 250ms;
  // A one-path flow with nothing unacknowledged and no DATA for idle_after pings this often.
  Duration idle_after = 2s;
  Duration ping_interval_idle = 2s;
  Duration handshake_timeout = 2s;  // OPEN/JOIN without an answer

  // Datagram paths (udpflow): loss recovery, congestion control and pacing per path
  // (core/recovery/). Its max_ack_delay is the flow's (both ends use it, as for the flow's
  // ACKs) and its datagram size the path's (PathOptions::max_packet_payload).
  recovery::RecoveryConfig datagram_recovery;
  // Datagram paths: challenges to new peer addresses and the 3x limit before one is validated
  // (core/address_validation.hpp).
  AddressValidationConfig address_validation;
  // A datagram path's deadline: this many probe timeouts in a row, each twice the last
  // (1 + 2 + 4 = 7 PTOs for 3), clamped like the silence deadline above (dead_floor, dead_cap),
  // counted from when an ack-eliciting packet last waited with no ACK arriving.
  std::uint32_t datagram_dead_ptos = 3;

  // Client: re-dial a dead path with exponential backoff.
  Duration redial_initial = 20ms;
  Duration redial_max = 2s;

  // With no live path, reads and writes wait this long, then fail.
  Duration migration_budget = 90s;

  // After both directions finished, wait at most this long for the peer's confirmation that it
  // has our last ACK (re-acknowledging meanwhile), then close anyway.
  Duration close_linger = 10s;

  // Prime mode: quality switching of the client's active path (the server follows).
  QualityPolicy quality;

  // Bond mode: the delivery rate assumed for a path before it has been measured.
  double bond_initial_rate = 12.5e6;  // bytes per second (100 Mbit/s)

  // Optional pre-shared key mixed into the flow key (authenticates both ends).
  std::vector<wire::Byte> psk;

  // Packet mode (core/message_payload.hpp): set, the flow carries messages with these options
  // instead of a byte stream. A client's OPEN announces it; a server takes it from the OPEN.
  std::optional<PacketOptions> packet;
  // Server: whether an OPEN for a packet flow is accepted (else refused: unsupported_kind).
  bool accept_packet_flows = false;
  // Server: whether an OPEN for a stream flow is accepted (else refused: unsupported_kind), so a
  // listener that takes only packet flows answers a stream client clearly.
  bool accept_stream_flows = true;
};

}  // namespace rendr::core
