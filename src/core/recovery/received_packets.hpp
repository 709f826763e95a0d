#pragma once
// The receiving half of a datagram path's recovery: which of the peer's packet numbers arrived
// (as ACK ranges), which are duplicates, and when an ACK_RANGES frame is due.
//
// An ACK goes out (RFC 9000 §13.2.1-2):
//   - at once when `ack_eliciting_threshold` ack-eliciting packets are unacknowledged, or when
//     an ack-eliciting packet arrives out of order (below the largest, or leaving a gap above
//     it), so the sender's loss detection hears about reordering and loss without delay;
//   - otherwise at most `max_ack_delay` after the first unacknowledged ack-eliciting packet.
// Packets that are not ack-eliciting (ACK-only) are acknowledged with the next ACK but never
// cause one, so two peers never ACK each other's ACKs forever.
//
// Memory is bounded: at most `max_ranges` ranges are kept. When a new gap would need one more,
// the lowest range is forgotten and every packet number below what is kept counts as a
// duplicate (it is old: its sender has declared it lost and re-sent its data). Ranges the peer
// has seen acknowledged (on_ack_acknowledged) are forgotten the same way (RFC 9000 §13.2.4).
//
// Call on_received only for packets that authenticated: an unauthenticated packet number must
// not shape the ACKs.
#include <cstddef>
#include <optional>
#include <vector>

#include "core/recovery/config.hpp"
#include "core/types.hpp"
#include "wire/frame.hpp"

namespace rendr::core::recovery {

class ReceivedPackets {
 public:
  enum class Receipt {
    fresh,      // first time: process its frames
    duplicate,  // seen before, or below what is remembered: drop it whole
  };

  explicit ReceivedPackets(const RecoveryConfig& config = {});

  Receipt on_received(PacketNumber pn, bool ack_eliciting, Time now);

  // Largest packet number received (for reconstructing truncated packet numbers).
  std::optional<PacketNumber> largest() const;
  // Something not yet acknowledged: an ACK may ride along with other frames.
  bool ack_pending() const { return ack_pending_; }
  // An ACK should go out now (threshold, reordering, or its delay ran out at `now`).
  bool ack_due(Time now) const;
  // When an ACK is due at the latest; nullopt: no ack-eliciting packet waits for one.
  std::optional<Time> ack_deadline() const;

  // The ACK_RANGES frame for what was received, highest ranges first, with the delay since the
  // largest arrived. At most `max_ranges` ranges (fewer make a smaller frame).
  wire::AckRanges make_ack(Time now, std::size_t max_ranges = wire::AckRanges::kMaxRanges) const;
  // That frame went out: no ACK is owed until new packets arrive.
  void on_ack_sent();
  // A packet that carried an ACK with `largest` was acknowledged by the peer: the peer knows
  // everything up to `largest` arrived, so those ranges need not be sent again.
  void on_ack_acknowledged(PacketNumber largest);

  std::size_t range_count() const { return ranges_.size(); }
  // Packet numbers below this are treated as duplicates (forgotten ranges).
  PacketNumber floor() const { return floor_; }

 private:
  bool contains(PacketNumber pn) const;
  void insert(PacketNumber pn);
  void forget_below(PacketNumber pn);

  std::size_t max_ranges_;
  std::size_t ack_eliciting_threshold_;
  Duration max_ack_delay_;
  std::vector<wire::PacketRange> ranges_;  // ascending, disjoint, non-adjacent
  PacketNumber floor_ = 0;
  Time largest_received_at_{};
  bool ack_pending_ = false;
  bool ack_immediately_ = false;
  std::size_t unacked_eliciting_ = 0;
  std::optional<Time> first_unacked_eliciting_at_;
};

}  // namespace rendr::core::recovery
