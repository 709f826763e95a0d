#include "core/recovery/received_packets.hpp"

#include <algorithm>
#include <chrono>

namespace rendr::core::recovery {

ReceivedPackets::ReceivedPackets(const RecoveryConfig& config)
    : max_ranges_(std::clamp<std::size_t>(config.max_ack_ranges, 1, wire::AckRanges::kMaxRanges)),
      ack_eliciting_threshold_(std::max<std::size_t>(config.ack_eliciting_threshold, 1)),
      max_ack_delay_(config.max_ack_delay) {
  ranges_.reserve(max_ranges_ + 1);
}

bool ReceivedPackets::contains(PacketNumber pn) const {
  if (pn < floor_) return true;
  // The first range whose largest is >= pn.
  const auto it =
      std::lower_bound(ranges_.begin(), ranges_.end(), pn,
                       [](const wire::PacketRange& r, PacketNumber v) { return r.largest < v; });
  return it != ranges_.end() && it->smallest <= pn;
}

void ReceivedPackets::insert(PacketNumber pn) {
  // The common case: the next packet in order extends the top range.
  if (!ranges_.empty() && ranges_.back().largest + 1 == pn) {
    ranges_.back().largest = pn;
    return;
  }
  auto it =
      std::lower_bound(ranges_.begin(), ranges_.end(), pn,
                       [](const wire::PacketRange& r, PacketNumber v) { return r.largest < v; });
  // `it` is the first range above pn (pn is not inside any). Join the neighbours it touches.
  const bool joins_above = it != ranges_.end() && it->smallest == pn + 1;
  const bool joins_below = it != ranges_.begin() && std::prev(it)->largest + 1 == pn;
  if (joins_above && joins_below) {
    std::prev(it)->largest = it->largest;
    ranges_.erase(it);
  } else if (joins_above) {
    it->smallest = pn;
  } else if (joins_below) {
    std::prev(it)->largest = pn;
  } else {
    ranges_.insert(it, wire::PacketRange{pn, pn});
  }
  // Bounded memory: forget the lowest range; everything up to it now counts as seen.
  if (ranges_.size() > max_ranges_) forget_below(ranges_.front().largest + 1);
}

void ReceivedPackets::forget_below(PacketNumber pn) {
  if (pn <= floor_) return;
  floor_ = pn;
  while (!ranges_.empty() && ranges_.front().largest < floor_)
    ranges_.erase(ranges_.begin());
  if (!ranges_.empty()) ranges_.front().smallest = std::max(ranges_.front().smallest, floor_);
}

ReceivedPackets::Receipt ReceivedPackets::on_received(PacketNumber pn, bool ack_eliciting,
                                                      Time now) {
  if (contains(pn)) return Receipt::duplicate;
  const std::optional<PacketNumber> before = largest();
  insert(pn);
  if (!before || pn > *before) largest_received_at_ = now;
  ack_pending_ = true;
  if (!ack_eliciting) return Receipt::fresh;

  ++unacked_eliciting_;
  if (!first_unacked_eliciting_at_) first_unacked_eliciting_at_ = now;
  // Out of order (below the largest) or leaving a gap above it: tell the sender at once.
  if (before && (pn < *before || pn > *before + 1)) ack_immediately_ = true;
  if (unacked_eliciting_ >= ack_eliciting_threshold_) ack_immediately_ = true;
  return Receipt::fresh;
}

std::optional<PacketNumber> ReceivedPackets::largest() const {
  if (ranges_.empty()) return std::nullopt;
  return ranges_.back().largest;
}

bool ReceivedPackets::ack_due(Time now) const {
  if (ack_immediately_) return true;
  const std::optional<Time> deadline = ack_deadline();
  return deadline && now >= *deadline;
}

std::optional<Time> ReceivedPackets::ack_deadline() const {
  if (ack_immediately_) return first_unacked_eliciting_at_;
  if (!first_unacked_eliciting_at_) return std::nullopt;
  return *first_unacked_eliciting_at_ + max_ack_delay_;
}

wire::AckRanges ReceivedPackets::make_ack(Time now, std::size_t max_ranges) const {
  wire::AckRanges ack;
  const std::size_t count = std::min({ranges_.size(), max_ranges, wire::AckRanges::kMaxRanges});
  ack.ranges.reserve(count);
  for (auto it = ranges_.rbegin(); it != ranges_.rend() && ack.ranges.size() < count; ++it)
    ack.ranges.push_back(*it);
  const Duration delay = std::max(now - largest_received_at_, Duration::zero());
  ack.ack_delay_us = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(delay).count());
  return ack;
}

void ReceivedPackets::on_ack_sent() {
  ack_pending_ = false;
  ack_immediately_ = false;
  unacked_eliciting_ = 0;
  first_unacked_eliciting_at_.reset();
}

void ReceivedPackets::on_ack_acknowledged(PacketNumber largest) {
  // Keep the top range whole: it is where new packets land, and forgetting it would make the
  // next in-order packet look like a gap (an immediate ACK for nothing).
  if (ranges_.empty()) return;
  const PacketNumber keep_from = std::min(largest + 1, ranges_.back().smallest);
  forget_below(keep_from);
}

}  // namespace rendr::core::recovery
