#include "core/recovery/loss_detector.hpp"

#include <algorithm>
#include <chrono>

namespace rendr::core::recovery {

namespace {

// Lost records are kept this many PTOs to recognise a late acknowledgement (a spurious loss).
constexpr int kLostRetentionPtos = 3;

}  // namespace

LossDetector::LossDetector(const RecoveryConfig& config,
                           std::unique_ptr<CongestionController> controller)
    : config_(config),
      controller_(std::move(controller)),
      rtt_(config.initial_rtt),
      packet_threshold_(
          std::clamp<std::uint64_t>(config.packet_threshold, 3, kMaxPacketThreshold)) {}

Duration LossDetector::pto_base() const {
  return rtt_.smoothed() + std::max(4 * rtt_.rttvar(), config_.timer_granularity) +
         config_.max_ack_delay;
}

Duration LossDetector::probe_timeout() const {
  // The peer's receiver acknowledges at once when ack_eliciting_threshold ack-eliciting packets
  // are unacknowledged (RFC 9000 §13.2.2; both ends run ReceivedPackets with the flow's
  // config). With that many out, its ACK is not held back on purpose, so the timer need not
  // wait max_ack_delay for it, as RFC 9002 §6.2.1 reasons for the handshake spaces. On a path
  // whose round trip is far below max_ack_delay, that wait is most of the PTO, and a lost ACK
  // of a whole window (nothing more goes out until the PTO) costs it every time.
  const Duration base = pto_base();
  if (sent_.outstanding().size() >= config_.ack_eliciting_threshold)
    return base - config_.max_ack_delay;
  return base;
}

Duration LossDetector::loss_delay() const {
  const Duration base = std::max(rtt_.latest(), rtt_.smoothed());
  return std::max(base * time_threshold_eighths_ / 8, config_.timer_granularity);
}

std::optional<Time> LossDetector::unacknowledged_since() const {
  // A path-MTU probe does not count: it is expected to vanish (too big), and no PTO follows
  // it, so on an idle path nothing would ever answer for it. One is out at a time.
  for (const auto& [pn, p] : sent_.outstanding()) {
    if (p.content.mtu_probe) continue;
    return last_ack_time_ ? std::max(p.sent_at, *last_ack_time_) : p.sent_at;
  }
  return std::nullopt;
}

PacketNumber LossDetector::on_packet_sent(std::size_t bytes, const PacketContent& content,
                                          Time now) {
  sent_.trim(now - kLostRetentionPtos * pto_base());
  // Path-MTU probes and ACK-only packets are outside the window, so outside the rate samples.
  const bool sampled = content.ack_eliciting && !content.mtu_probe;
  const PacketNumber pn = sent_.add(
      now, bytes, content,
      sampled ? delivery_.on_packet_sent(now, controller_->bytes_in_flight()) : DeliverySnapshot{});
  ++counters_.packets_sent;
  if (content.mtu_probe) return pn;  // no window, no PTO: the flow learns its fate from ACKs
  if (content.ack_eliciting) {
    last_eliciting_sent_ = now;
    controller_->on_packet_sent(bytes, now);
    if (probes_owed_ > 0) --probes_owed_;
    set_timer();
  }
  return pn;
}

LossDetector::AckOutcome LossDetector::on_ack_received(const wire::AckRanges& ack, Time now,
                                                       RetransmitQueue& lost) {
  AckOutcome out;
  if (ack.ranges.empty()) return out;
  if (ack.largest() >= sent_.next_pn()) {
    out.invalid = true;
    return out;
  }
  largest_acked_ = std::max(largest_acked_.value_or(0), ack.largest());

  acked_scratch_.clear();
  std::optional<Time> largest_newly_acked_sent;  // the ACK's largest, if newly acknowledged
  bool newly_acked_eliciting = false;
  auto note = [&](PacketNumber pn, Time sent_at, std::uint32_t control,
                  std::optional<PacketNumber> ack_largest) {
    ++out.newly_acked;
    out.acked_control |= control;
    if (ack_largest) out.ack_largest = std::max(out.ack_largest.value_or(0), *ack_largest);
    if (pn == ack.largest()) largest_newly_acked_sent = sent_at;
  };
  // Ranges come highest first; each visits only the records inside it, and the ranges below
  // every record (old gaps the peer still reports) are not looked at.
  const std::optional<PacketNumber> lowest = sent_.lowest();
  for (const wire::PacketRange& range : ack.ranges) {
    if (!lowest || range.largest < *lowest) break;
    auto& outstanding = sent_.outstanding();
    for (auto it = outstanding.lower_bound(range.smallest);
         it != outstanding.end() && it->first <= range.largest;) {
      const SentPacket& p = it->second;
      note(p.pn, p.sent_at, p.content.control, p.content.ack_largest);
      newly_acked_eliciting = true;
      if (!p.content.mtu_probe) {
        acked_scratch_.push_back(AckedPacket{p.pn, p.bytes, p.sent_at});
        delivery_.on_packet_acked(p.bytes, p.sent_at, p.delivery, now);
      }
      it = outstanding.erase(it);
    }
    auto& lost_records = sent_.lost();
    for (auto it = lost_records.lower_bound(range.smallest);
         it != lost_records.end() && it->first <= range.largest;) {
      const SentPacket& p = it->second;
      note(p.pn, p.sent_at, p.content.control, p.content.ack_largest);
      on_spurious_loss(p);
      it = lost_records.erase(it);
    }
    auto& ack_only = sent_.ack_only();
    auto first =
        std::lower_bound(ack_only.begin(), ack_only.end(), range.smallest,
                         [](const AckOnlyPacket& a, PacketNumber pn) { return a.pn < pn; });
    auto last = first;
    for (; last != ack_only.end() && last->pn <= range.largest; ++last)
      note(last->pn, last->sent_at, last->control, last->ack_largest);
    ack_only.erase(first, last);
  }
  if (out.newly_acked == 0) return out;
  counters_.packets_acked += out.newly_acked;
  last_ack_time_ = now;

  // RFC 9002 §5.1: a sample only when the largest acknowledged is new and something
  // ack-eliciting was newly acknowledged; the peer's delay is capped at max_ack_delay.
  if (largest_newly_acked_sent && newly_acked_eliciting) {
    const Duration reported = std::chrono::microseconds(std::min<std::uint64_t>(
        ack.ack_delay_us,
        std::chrono::duration_cast<std::chrono::microseconds>(config_.max_ack_delay).count()));
    rtt_.update(now - *largest_newly_acked_sent, reported);
    if (!first_rtt_sample_at_) first_rtt_sample_at_ = now;
    out.rtt_sampled = true;
  }

  const std::uint64_t lost_before = counters_.packets_lost;
  detect_lost(now, lost);
  out.newly_lost = static_cast<std::size_t>(counters_.packets_lost - lost_before);
  // Acknowledged packets sort ascending for the controller (ranges came highest first).
  std::sort(acked_scratch_.begin(), acked_scratch_.end(),
            [](const AckedPacket& a, const AckedPacket& b) { return a.pn < b.pn; });
  const RateSample sample = delivery_.take_sample(rtt_.min());
  if (!acked_scratch_.empty()) {
    controller_->on_rate_sample(sample);
    controller_->on_packets_acked(acked_scratch_, rtt_, now);
  }

  pto_count_ = 0;
  probes_owed_ = 0;
  set_timer();
  return out;
}

void LossDetector::on_timeout(Time now, RetransmitQueue& lost) {
  if (!timer_ || now < *timer_) return;
  if (loss_time_) {
    detect_lost(now, lost);
    set_timer();
    return;
  }
  // PTO: nothing was declared lost; ask for probes so the peer answers (RFC 9002 §6.2.4).
  ++pto_count_;
  ++counters_.pto_fired;
  probes_owed_ = 2;
  set_timer();
}

void LossDetector::detect_lost(Time now, RetransmitQueue& lost) {
  loss_time_.reset();
  if (!largest_acked_) return;
  const Duration delay = loss_delay();
  const Time lost_send_time = now - delay;

  lost_scratch_.clear();
  // Whether the run of consecutive lost packets (in packet number) that persistent congestion
  // looks at is still unbroken, and when its first and last ack-eliciting packets were sent.
  bool persistent = false;
  std::optional<std::uint64_t> previous_lost_seq;  // eliciting_seq of the previous loss
  bool in_run = false;  // run_start is set (an optional here trips GCC 12's uninitialized check)
  Time run_start{};
  const Duration congestion_period = pto_base() * config_.persistent_congestion_threshold;

  auto& outstanding = sent_.outstanding();
  for (auto it = outstanding.begin(); it != outstanding.end() && it->first <= *largest_acked_;) {
    SentPacket& p = it->second;
    const bool by_packets = *largest_acked_ >= p.pn + packet_threshold_;
    const bool by_time = p.sent_at <= lost_send_time;
    if (!by_packets && !by_time) {
      const Time at = p.sent_at + delay;
      loss_time_ = loss_time_ ? std::min(*loss_time_, at) : at;
      ++it;
      continue;
    }
    if (p.content.mtu_probe) {
      it = drop_lost_probe(it);
      continue;
    }
    // A run of losses is broken by any ack-eliciting packet between them that was not lost.
    if (previous_lost_seq && p.eliciting_seq != *previous_lost_seq + 1) in_run = false;
    previous_lost_seq = p.eliciting_seq;
    if (first_rtt_sample_at_ && p.sent_at >= *first_rtt_sample_at_) {
      if (!in_run) {
        in_run = true;
        run_start = p.sent_at;
      } else if (p.sent_at - run_start > congestion_period) {
        persistent = true;
      }
    }
    declare_lost(p, by_time && !by_packets, now, lost);
    it = sent_.mark_lost(it);
  }
  if (lost_scratch_.empty()) return;

  // A new congestion event unless every loss predates the current recovery period.
  const Time newest_sent = std::max_element(lost_scratch_.begin(), lost_scratch_.end(),
                                            [](const LostPacket& a, const LostPacket& b) {
                                              return a.sent_at < b.sent_at;
                                            })
                               ->sent_at;
  if (!controller_->in_recovery(newest_sent)) {
    ++counters_.congestion_events;
    event_undoable_ = true;
    event_lost_ = 0;
    event_spurious_ = 0;
  }
  // Losses inside the recovery period belong to the event that started it.
  for (const LostPacket& l : lost_scratch_)
    sent_.lost().at(l.pn).loss_event = counters_.congestion_events;
  event_lost_ += lost_scratch_.size();
  controller_->on_packets_lost(lost_scratch_, now);
  if (persistent) {
    ++counters_.persistent_congestion;
    event_undoable_ = false;
    rtt_.reset_min_to_latest();
    controller_->on_persistent_congestion(now);
  }
}

SentPackets::Map::iterator LossDetector::drop_lost_probe(SentPackets::Map::iterator it) {
  // Too big for the path, most likely: the flow's prober hears of it; congestion does not.
  ++counters_.mtu_probes_lost;
  lost_control_ |= it->second.content.control;
  return sent_.outstanding().erase(it);
}

void LossDetector::declare_lost(SentPacket& p, bool by_time, Time now, RetransmitQueue& lost) {
  p.lost_by_time = by_time;
  p.lost_at = now;
  p.reorder_distance = *largest_acked_ - p.pn;
  ++counters_.packets_lost;
  lost_control_ |= p.content.control;
  for (std::uint8_t i = 0; i < p.content.data_count; ++i)
    lost.add(p.content.data[i].from, p.content.data[i].to);
  lost_scratch_.push_back(LostPacket{p.pn, p.bytes, p.sent_at});
}

void LossDetector::on_spurious_loss(const SentPacket& p) {
  ++counters_.spurious_losses;
  // Reordering, not loss: widen the threshold that fired so the same reordering is tolerated
  // next time (RFC 9002 §6.1 allows adapting both).
  if (p.lost_by_time) {
    time_threshold_eighths_ = std::min(time_threshold_eighths_ + 1, kMaxTimeThresholdEighths);
  } else {
    packet_threshold_ =
        std::clamp<std::uint64_t>(p.reorder_distance + 1, packet_threshold_, kMaxPacketThreshold);
  }
  if (p.loss_event != counters_.congestion_events || !event_undoable_) return;
  if (++event_spurious_ == event_lost_) {
    event_undoable_ = false;
    ++counters_.congestion_events_undone;
    controller_->on_spurious_congestion_event();
  }
}

void LossDetector::set_timer() {
  if (loss_time_) {
    timer_ = loss_time_;
    return;
  }
  // Only ack-eliciting packets count in flight, so this says whether any awaits an answer.
  if (controller_->bytes_in_flight() == 0 || !last_eliciting_sent_) {
    timer_.reset();
    return;
  }
  // Exponential backoff, capped so the shift cannot overflow (a path is long dead by then).
  const std::uint32_t shift = std::min<std::uint32_t>(pto_count_, 16);
  timer_ = *last_eliciting_sent_ + probe_timeout() * (1u << shift);
}

}  // namespace rendr::core::recovery
