#include "core/recovery/sent_packets.hpp"

namespace rendr::core::recovery {

SentPacket& SentPackets::add(Time sent_at, std::size_t bytes, const PacketContent& content) {
  const PacketNumber pn = next_pn_++;
  SentPacket& p = records_.emplace_hint(records_.end(), pn, SentPacket{})->second;
  p.pn = pn;
  p.sent_at = sent_at;
  p.bytes = static_cast<std::uint32_t>(bytes);
  p.content = content;
  return p;
}

void SentPackets::trim(Time horizon) {
  while (!records_.empty()) {
    const SentPacket& p = records_.begin()->second;
    const bool done =
        (p.lost && p.lost_at < horizon) || (!p.content.ack_eliciting && p.sent_at < horizon);
    if (!done) return;
    records_.erase(records_.begin());
  }
}

}  // namespace rendr::core::recovery
