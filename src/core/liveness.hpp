#pragma once
// Liveness: when a path is dead, and when it is pinged (docs/design.md, "the dead-path rule").
//
// A path is silent from its first ack-eliciting send that nothing on the path has answered
// since. Past its deadline,
//     clamp(2·srtt + 8·rttvar + max_ack_delay, dead_floor (race: race_dead_floor), dead_cap),
// it is dead if the peer answered, on another up path, a probe it read since halfway (the
// corroborating pings went out then), or if it is the only up path; otherwise the peer itself
// may be stalled, so the path is *suspect* and dies after silent_peer_grace. PINGs keep every up
// path measured: carrying paths every ping_interval_active, standbys every ping_interval_standby.
//
// A datagram path is silent from when its loss recovery last saw an acknowledgement while
// an ack-eliciting packet awaited one (the oldest such packet's send time if later), and its
// deadline is datagram_dead_ptos probe timeouts in a row (1 + 2 + 4 PTOs for 3; the PTO
// adapts to the path's RTT, variance and ACK delay), within the same floor and cap; the same
// corroboration applies. Packets sent meanwhile do not restart that silence, so an application
// that keeps writing into a blackhole does not postpone the death, and the peer's DATA arriving
// does not either (only its ACKs say ours arrive). PINGs are ack-eliciting packets there, and
// a lost one is sent again.
#include <cstdint>
#include <optional>

#include "core/config.hpp"
#include "core/path.hpp"
#include "core/types.hpp"
#include "wire/frame.hpp"

namespace rendr::core {

// A PING with more than this much DATA around it (ours in flight when it left, or the peer's
// arriving while it was out) may have queued behind it, so prime quality switching ignores its
// RTT sample. Small on purpose: even 64 KiB is 13 ms of queue at 40 Mbit/s.
inline constexpr std::uint64_t kUnloadedProbeBytes = 4 * 1024;

class Liveness {
 public:
  // `mode` is the flow's (race has a higher floor); both references outlive this object.
  Liveness(const FlowConfig& config, const Mode& mode) : config_(config), mode_(mode) {}

  // Silence past this is death (corroborated).
  Duration deadline(const Path& p) const;
  // Silence past this is death even if the peer was heard nowhere else.
  Duration uncorroborated_deadline(const Path& p) const;

  // Anything arrived on `p`. `outstanding`: something sent on it still awaits an answer (a
  // PING, unacknowledged DATA or FIN), so its silence clock restarts now instead of stopping.
  void heard(Path& p, bool outstanding, PathTable& paths, Time now);
  // An ack-eliciting frame went out on `p` (a datagram path's loss recovery keeps its own).
  void sent_eliciting(Path& p, Time now) {
    if (!p.unanswered_since && !p.datagram()) p.restart_silence(now);
  }
  // Judges `p`'s silence at `now` (and owes corroborating PINGs on the others halfway); true
  // if `p` is dead. `awaits_answer`: something sent on `p` still awaits its answer.
  bool dead(Path& p, PathTable& paths, bool awaits_answer, Time now);

  // Owes a PING on `p` if one is due; the next is due `interval` later.
  void schedule_ping(Path& p, Duration interval, Time now);
  // The PING to send on `p` now (it is then outstanding).
  wire::Ping make_ping(Path& p, Time now);
  // A PONG on `p`: true if it answers the outstanding PING (an RTT sample was taken).
  bool on_pong(Path& p, const wire::Pong& pong, Time now);
  // The peer answered, on `p`, a probe we sent at `sent_at` (datagram paths: an ACK).
  static void probe_answered(Path& p, Time sent_at);
  // The PING outstanding on `p` is answered (its PONG; on a datagram path the ACK of its
  // packet, Flow::on_timer or at once if a corroborating PING waits): the next may go, and a
  // corroborating one owed goes now.
  static void ping_answered(Path& p);

  // When `p` (up) next needs on_timer.
  std::optional<Time> next_deadline(const Path& p) const;
  // Set when a path hears the peer while another path is suspect: re-judge that one then.
  std::optional<Time> recheck() const { return recheck_; }
  void clear_recheck() { recheck_.reset(); }

 private:
  // Since when `p` has been silent while something awaits an answer; nullopt: not silent.
  static std::optional<Time> silent_since(const Path& p);
  bool peer_heard_elsewhere(const Path& p, const PathTable& paths) const;
  void seek_corroboration(Path& p, PathTable& paths);

  const FlowConfig& config_;
  const Mode& mode_;
  std::optional<Time> recheck_;
};

// Nanoseconds since the clock's epoch: a PING's timestamp.
std::uint64_t ticks(Time t);

}  // namespace rendr::core
