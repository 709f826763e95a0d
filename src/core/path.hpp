#pragma once
// One path of a flow as the core sees it: its state, handshake progress, liveness, what it
// carries and how the schedulers treat it.
#include <cstdint>
#include <optional>

#include "core/path_flight.hpp"
#include "core/rtt.hpp"
#include "core/stats.hpp"
#include "core/types.hpp"
#include "wire/frame.hpp"

namespace rendr::core {

struct PathEntry {
  PathId id = kNoPath;
  PathState state = PathState::idle;

  // Client: dialing and handshake.
  Time next_dial{};
  Duration backoff{};
  Time handshake_sent{};
  bool open_pending = false;  // send OPEN on this path
  bool join_pending = false;  // send JOIN on this path (once the flow is established)
  bool handshake_in_flight = false;
  std::uint64_t join_counter = 0;
  wire::Nonce join_nonce{};

  // Server: handshake answers to send.
  bool open_ack_pending = false;
  bool join_ack_pending = false;

  // Liveness.
  Time last_heard{};
  std::optional<Time> unanswered_since;  // first ack-eliciting send not yet followed by input
  // Silence past the deadline is death only if the peer has been heard on another path since
  // (it is alive; this path is not). A peer silent on every path may only be starved of CPU,
  // so then death waits for silent_peer_grace. Halfway to the deadline the other paths are
  // pinged, so that an alive peer has answered somewhere by then (corroboration_sought).
  bool corroboration_sought = false;
  bool suspect = false;  // past the deadline, but the peer is silent everywhere
  // A new silence (or none): the judgement of the previous one no longer applies.
  void restart_silence(std::optional<Time> since) {
    unanswered_since = since;
    corroboration_sought = suspect = false;
  }
  Time next_ping{};
  bool ping_due = false;
  bool ping_outstanding = false;
  std::uint64_t ping_id = 0;
  bool close_pending = false;  // send CLOSE (abort) before the carrier closes
  bool pong_pending = false;
  // DATA arrived here while another path carries the flow's ACKs. The peer judges this path's
  // liveness by answers on it, so the next ACK is copied here too (ack_due) — otherwise a path
  // just migrated away from would look silent and be declared dead.
  bool ack_owed = false;
  bool ack_due = false;
  wire::Pong pong{};
  RttEstimator rtt;

  // Data carried, to decide whether its death needs a replay.
  std::uint64_t data_sent_end = 0;
  bool fin_sent = false;
  PathFlight flight;  // unacknowledged ranges sent here, delivery rate
  // Whether the outstanding PING has bulk data queued around it (see RttEstimator): our own
  // in flight when it left, and what the peer sent us on this path while it was out.
  bool ping_loaded = false;
  std::uint64_t ping_received_mark = 0;

  // Scheduling.
  std::uint32_t weight = 1;       // bond
  std::uint64_t send_cursor = 0;  // race: next offset to send here (at least the acked offset)
  // Bond: passed over since it last was admitted; one stuck skip is counted per episode.
  // Mutable because wants_transmit (const) is where the scheduler usually decides.
  mutable bool bond_skipping = false;
  // Bond shares (bond_share_admits): bytes this path may still send in the current round, and
  // whether its carrier is idle (its last pull got no DATA; the next kick makes it pull).
  std::int64_t bond_credit = 0;
  bool bond_idle = false;

  // Mode agreement: send MODE{seq, mode} as our announcement (ack-eliciting) or as the answer
  // to the peer's.
  bool mode_announce_pending = false;
  bool mode_answer_pending = false;

  PathStats stats;
};

}  // namespace rendr::core
