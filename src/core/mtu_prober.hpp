#pragma once
// Path-MTU discovery for a datagram path (DPLPMTUD, RFC 8899, in QUIC's manner): the path starts
// at the safe 1200-byte datagram and probes upward with padded, ack-eliciting probe packets,
// sent with DF set (the carrier sets IP_PMTUDISC_PROBE, so the kernel never fragments and never
// lowers the size on ICMP). An acknowledged probe raises the size; a size lost `max_attempts`
// times is too big. The search is a binary search between the largest size known to pass and
// the smallest known to fail, stopping once they are `precision` bytes apart; it starts again
// after `research_after` (the route may have changed).
//
// Black-hole detection (RFC 8899 §4.3): a route change may shrink the path's MTU, and then
// full-size packets vanish (with DF, nothing fragments them; a local EMSGSIZE or a silent drop
// on the way look the same) while smaller ones pass. The owner reports each acknowledgement of
// its own packets (whether any was full-size: within `precision` of current()) and each loss of
// full-size ones. `black_hole_threshold` such losses in a row, each after an acknowledgement of
// only smaller packets and with no full-size packet acknowledged in between, are a black hole:
// the prober falls back to the base size and searches upward again. Random loss does not look
// like that: full-size packets keep being acknowledged around the lost ones.
//
// Sans-I/O: the owner asks probe_due(now), sends a probe of that size, and reports what became
// of it. Sizes are UDP payload bytes (the datagram, without IP and UDP headers).
#include <cstddef>
#include <optional>

#include "core/types.hpp"

namespace rendr::core {

struct MtuProbeConfig {
  std::size_t base = 1200;  // always assumed to pass
  // The largest size to try (a path's is the lower of its configured ceiling and what its
  // route takes whole): 1452 fits Ethernet's 1500 after an IPv6 (40) + UDP (8) header, with
  // room to spare over IPv4 (20 + 8).
  std::size_t max = 1452;
  int max_attempts = 3;
  std::size_t precision = 20;
  Duration research_after = std::chrono::minutes(10);
  int black_hole_threshold = 3;
};

class MtuProber {
 public:
  explicit MtuProber(const MtuProbeConfig& config = {});

  // The largest datagram known to pass.
  std::size_t current() const { return current_; }
  // The size assumed to pass on any path (the fallback after a black hole).
  std::size_t base() const { return config_.base; }
  // The size to probe now, if one is due: nothing in flight and the search not finished (or
  // finished more than research_after ago).
  std::optional<std::size_t> probe_due(Time now) const;
  bool probe_in_flight() const { return in_flight_.has_value(); }
  // The size of the probe in flight, if any (what its acknowledgement or loss is about).
  std::optional<std::size_t> probe_in_flight_size() const { return in_flight_; }

  void on_probe_sent(std::size_t size, Time now);
  void on_probe_acked(std::size_t size, Time now);
  void on_probe_lost(std::size_t size, Time now);
  // Full-size packets are being lost while small ones pass (a route change lowered the MTU):
  // fall back to the base size and search again from there.
  void on_black_hole(Time now);

  // Black-hole detection from the owner's own packets (not probes). A datagram of `bytes` is
  // full-size: above the base and within `precision` of current().
  bool full_size(std::size_t bytes) const {
    return bytes > config_.base && bytes + config_.precision >= current_;
  }
  // An acknowledgement newly acknowledged packets; `full_size`: one of them was.
  void on_packets_acked(bool full_size);
  // Full-size packets were declared lost. True: that made a black hole (on_black_hole ran).
  bool on_full_size_lost(Time now);
  // Black holes detected so far.
  std::uint64_t black_holes() const { return black_holes_; }

 private:
  bool searching() const { return too_big_ - current_ > config_.precision; }
  void finish_if_done(Time now);

  MtuProbeConfig config_;
  std::size_t current_;
  std::size_t too_big_;  // smallest size known not to pass (max + 1 until one failed)
  std::optional<std::size_t> in_flight_;
  std::size_t last_probed_ = 0;
  int attempts_ = 0;  // probes of last_probed_ lost so far
  std::optional<Time> search_done_at_;
  // Black-hole detection: losses of full-size packets counted towards the threshold, and
  // whether only smaller packets were acknowledged since the last one counted.
  int suspicious_losses_ = 0;
  bool smaller_acked_ = false;
  std::uint64_t black_holes_ = 0;
};

}  // namespace rendr::core
