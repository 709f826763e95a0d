// Flow::Impl on a reliable path whose carrier also sends datagrams (QUIC DATAGRAM): a packet
// flow's messages go one per datagram, and the carrier's loss detection judges each one
// (core/message_datagrams.hpp, docs/design.md "Packet mode over QUIC DATAGRAM"). The decisions
// are made here: which message goes in a datagram (push_data), what a lost one means (the
// scheduler's lost-data queue: sent again where the mode says, or a SKIP for an unreliable
// flow), which received datagrams are taken, and when a datagram the carrier never judged is
// taken as lost.
#include <algorithm>
#include <chrono>
#include <variant>

#include "core/flow.hpp"
#include "core/flow_impl.hpp"

namespace rendr::core {

void Flow::set_message_datagram_size(PathId id, std::size_t max_frame_bytes) {
  Impl& m = *impl_;
  Path* p = m.find(id);
  if (p == nullptr || p->datagram() || m.messages == nullptr) return;
  p->message_datagram_size = max_frame_bytes;
}

void Flow::on_datagram_frames(PathId id, std::span<const wire::Frame> frames,
                              const wire::Slice& backing, Time now) {
  Impl& m = *impl_;
  for (const wire::Frame& frame : frames) {
    const Path* p = m.find(id);
    if (p == nullptr || p->datagram() || m.finished()) return;
    // Only an up path's messages: a datagram never stands in for the stream's handshake (it
    // may overtake it) or carries a control frame (which relies on the stream's order).
    const bool message = m.messages != nullptr && std::holds_alternative<wire::Data>(frame.body) &&
                         (frame.flags & wire::Data::kFlagMessage) != 0;
    if (!message || p->state != PathState::up) {
      ++m.counters.protocol_errors;
      continue;
    }
    m.receive_frame(id, frame, backing, now);
  }
}

void Flow::on_datagram_acked(PathId id, std::uint64_t datagram_id, Time now) {
  Impl& m = *impl_;
  Path* p = m.find(id);
  if (p == nullptr) return;
  if (p->message_datagrams.on_acked(datagram_id)) ++p->stats.datagrams_acked;
  if (!m.finished()) m.expire_unjudged_datagrams(*p, now);
}

void Flow::on_datagram_lost(PathId id, std::uint64_t datagram_id, Time now) {
  Impl& m = *impl_;
  Path* p = m.find(id);
  if (p == nullptr || m.finished()) return;
  if (const auto lost = p->message_datagrams.on_lost(datagram_id))
    m.message_datagram_lost(*p, *lost);
  m.expire_unjudged_datagrams(*p, now);
}

void Flow::Impl::message_datagram_lost(Path& p, const RetransmitQueue::Range& lost) {
  ++p.stats.datagrams_lost;
  // As a lost udpflow packet's DATA: the scheduler's queue, clipped to what the peer has
  // acknowledged by then (RetransmitQueue::next).
  scheduler().lost_data_queue(p).add(lost.from, lost.to);
}

Duration Flow::Impl::unjudged_datagram_age(const Path& p) const {
  // ngtcp2 judges a datagram within about a probe timeout (and its probe's round trip); the
  // floor keeps a loaded machine's late verdicts from being pre-empted (a spurious loss costs
  // a reliable flow a copy, an unreliable one its message).
  constexpr int kProbeTimeouts = 4;
  constexpr Duration kMinAge = std::chrono::seconds(1);
  if (!p.rtt.has_sample()) return kMinAge;
  const Duration pto = p.rtt.srtt() +
                       std::max<Duration>(4 * p.rtt.rttvar(), std::chrono::milliseconds(1)) +
                       config.max_ack_delay;
  return std::max(kProbeTimeouts * pto, kMinAge);
}

void Flow::Impl::expire_unjudged_datagrams(Path& p, Time now) {
  const Duration max_age = unjudged_datagram_age(p);
  while (const auto lost = p.message_datagrams.take_overdue(now, max_age, kMaxDatagramRecords)) {
    ++p.stats.datagrams_unjudged;
    message_datagram_lost(p, *lost);
  }
}

}  // namespace rendr::core
