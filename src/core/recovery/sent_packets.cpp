#include "core/recovery/sent_packets.hpp"

#include <algorithm>
#include <iterator>

namespace rendr::core::recovery {

PacketNumber SentPackets::add(Time sent_at, std::size_t bytes, const PacketContent& content,
                              const DeliverySnapshot& delivery) {
  const PacketNumber pn = next_pn_++;
  if (!content.ack_eliciting) {
    ack_only_.push_back(AckOnlyPacket{pn, sent_at, content.control, content.ack_largest});
    if (ack_only_.size() > kMaxAckOnly) ack_only_.pop_front();
    return pn;
  }
  SentPacket& p = outstanding_.emplace_hint(outstanding_.end(), pn, SentPacket{})->second;
  p.pn = pn;
  p.sent_at = sent_at;
  p.bytes = static_cast<std::uint32_t>(bytes);
  p.eliciting_seq = next_eliciting_seq_++;
  p.delivery = delivery;
  p.content = content;
  return pn;
}

SentPackets::Map::iterator SentPackets::mark_lost(Map::iterator it) {
  const auto next = std::next(it);
  lost_.insert(lost_.end(), outstanding_.extract(it));  // moves the node: no allocation
  return next;
}

std::optional<PacketNumber> SentPackets::lowest() const {
  std::optional<PacketNumber> low;
  auto consider = [&](PacketNumber pn) { low = std::min(low.value_or(pn), pn); };
  if (!outstanding_.empty()) consider(outstanding_.begin()->first);
  if (!lost_.empty()) consider(lost_.begin()->first);
  if (!ack_only_.empty()) consider(ack_only_.front().pn);
  return low;
}

void SentPackets::trim(Time horizon) {
  // Losses are declared roughly in packet-number order, so the oldest are at the front.
  while (!lost_.empty() && lost_.begin()->second.lost_at < horizon)
    lost_.erase(lost_.begin());
}

}  // namespace rendr::core::recovery
