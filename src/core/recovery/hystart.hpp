#pragma once
// HyStart++ (RFC 9406): leaves the first slow start when the round trip starts to grow (a queue
// is forming at the bottleneck) instead of at the first loss, after doubling the window into an
// already full queue. Each round (about one RTT) keeps its smallest RTT sample; once a round's
// minimum exceeds the previous round's by an eighth (clamped to 4..16 ms) the window grows a
// quarter as fast (Conservative Slow Start) for up to five rounds, then congestion avoidance
// takes over without a loss. If the RTT falls back meanwhile, the delay rise was noise and slow
// start resumes.
//
// Rounds are told apart by send time: a round ends with the first ACK of a packet sent after
// the round began (RFC 9406 counts SND.NXT; this is the same boundary). Paced senders apply no
// per-ACK growth limit (the RFC's L is infinite for them), and rendr's datagram paths pace.
#include <chrono>
#include <cstdint>
#include <optional>

#include "core/types.hpp"

namespace rendr::core::recovery {

class HyStart {
 public:
  static constexpr Duration kMinRttThreshold = std::chrono::milliseconds(4);
  static constexpr Duration kMaxRttThreshold = std::chrono::milliseconds(16);
  static constexpr int kMinRttDivisor = 8;
  static constexpr int kRttSamplesPerRound = 8;  // N_RTT_SAMPLE
  static constexpr std::uint64_t kCssGrowthDivisor = 4;
  static constexpr int kCssRounds = 5;

  enum class Phase {
    slow_start,    // grow by every acknowledged byte
    conservative,  // grow by a quarter of them
    finished,      // leave slow start now (set ssthresh to the window)
  };

  // One ACK during slow start: `newest_acked_sent_at` is when its newest acknowledged packet
  // left, `latest_rtt` the RTT sample it gave (or the latest one). Returns the phase the ACK's
  // growth follows.
  Phase on_ack(Time newest_acked_sent_at, Duration latest_rtt, Time now);
  // A loss ended the slow start HyStart++ watched: from now on it decides nothing, and every ACK
  // reports plain slow start (should an undone loss bring slow start back).
  void stop() { stopped_ = true; }

 private:
  void start_round(Time now);

  Phase phase_ = Phase::slow_start;
  bool stopped_ = false;
  std::optional<Time> round_start_;  // packets sent after this end the round when acknowledged
  std::optional<Duration> last_round_min_;
  std::optional<Duration> current_round_min_;
  int samples_ = 0;
  std::optional<Duration> css_baseline_;
  int css_rounds_ = 0;
};

}  // namespace rendr::core::recovery
