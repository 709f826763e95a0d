#pragma once
// Vocabulary and tunables of loss recovery on datagram paths (RFC 9002, one packet-number space
// per path and direction). Defaults are RFC 9002's, except where a comment says why not.
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "core/types.hpp"

namespace rendr::core::recovery {

// A full (untruncated) packet number of one path and direction, starting at 0.
using PacketNumber = std::uint64_t;

// The congestion controller of a path's sending side (each end picks its own): loss-based
// NewReno or CUBIC, or model-based BBR (bbr.hpp), which does not read random loss as congestion.
enum class CongestionAlgorithm : std::uint8_t { new_reno, cubic, bbr };

struct RecoveryConfig {
  // Largest datagram payload the path carries (its current MTU, 1200 B safe default); windows
  // and pacing bursts are counted in these. DatagramTransport::set_max_datagram_size changes it.
  std::size_t max_datagram_size = 1200;
  // BBR by default: at a few percent of random loss it keeps most of its rate, where the
  // loss-based ones keep a third; against a loss-based TCP flow they take the same share.
  CongestionAlgorithm congestion = CongestionAlgorithm::bbr;
  std::size_t initial_window_packets = 10;  // RFC 9002 §7.2 (capped at 14720 B there)
  std::size_t minimum_window_packets = 2;
  // Upper bound on the congestion window, so a long loss-free run cannot make the sent-packet
  // map (one record per packet in flight) grow without limit.
  std::uint64_t maximum_window_bytes = 64ull << 20;

  // Receiver: the longest an ACK waits (RFC 9000 max_ack_delay) and how many ack-eliciting
  // packets make it go at once.
  Duration max_ack_delay = std::chrono::milliseconds(25);
  std::size_t ack_eliciting_threshold = 2;
  // Receiver: ACK ranges remembered (the lowest are forgotten first; packets below them are
  // then treated as duplicates), which bounds the memory a peer's packet numbers can take. At
  // most wire::AckRanges::kMaxRanges; an ACK_RANGES frame carries as many as its packet holds.
  std::size_t max_ack_ranges = 64;

  // Sender: RFC 9002 §6.1 thresholds and §6.2 timer granularity.
  std::uint64_t packet_threshold = 3;
  Duration timer_granularity = std::chrono::milliseconds(1);
  Duration initial_rtt = std::chrono::milliseconds(333);
  std::uint32_t persistent_congestion_threshold = 3;

  // Pacer: a burst may carry this many datagrams at once, so GSO batches of about ten packets
  // go out in one system call.
  std::size_t pacing_burst_packets = 10;
};

}  // namespace rendr::core::recovery
