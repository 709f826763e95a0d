#include "core/recovery/delivery_rate.hpp"

#include <algorithm>
#include <chrono>

namespace rendr::core::recovery {

std::uint64_t RateSample::rate() const {
  if (!valid) return 0;
  const double seconds = std::chrono::duration<double>(interval).count();
  return static_cast<std::uint64_t>(static_cast<double>(delivered) / seconds);
}

DeliverySnapshot DeliveryRateSampler::on_packet_sent(Time now, std::uint64_t in_flight) {
  // A new flight after an idle period: its intervals start now, not at the last ACK.
  if (in_flight == 0) {
    first_sent_time_ = now;
    delivered_time_ = now;
  }
  return DeliverySnapshot{delivered_, delivered_time_, first_sent_time_, app_limited_until_ != 0};
}

void DeliveryRateSampler::on_app_limited(std::uint64_t in_flight) {
  // At least 1: "app-limited until nothing more is delivered" still marks the next packets.
  app_limited_until_ = std::max<std::uint64_t>(delivered_ + in_flight, 1);
}

void DeliveryRateSampler::on_packet_acked(std::size_t bytes, Time sent_at,
                                          const DeliverySnapshot& snapshot, Time now) {
  delivered_ += bytes;
  delivered_time_ = now;
  sample_.newly_acked += bytes;
  // The sample follows the most recently sent of the acknowledged packets (the largest
  // `delivered` at its sending): it spans the shortest, most current interval.
  if (!has_packet_ || snapshot.delivered > sample_.prior_delivered) {
    has_packet_ = true;
    sample_.prior_delivered = snapshot.delivered;
    sample_.app_limited = snapshot.app_limited;
    send_elapsed_ = sent_at - snapshot.first_sent_time;
    ack_elapsed_ = now - snapshot.delivered_time;
    first_sent_time_ = sent_at;
  }
}

RateSample DeliveryRateSampler::take_sample(Duration min_rtt) {
  RateSample s = sample_;
  if (app_limited_until_ != 0 && delivered_ > app_limited_until_) app_limited_until_ = 0;
  if (has_packet_) {
    s.delivered = delivered_ - s.prior_delivered;
    // The slower of the send and ACK rates: a burst sent at once, or ACKs that arrive
    // compressed, would each overstate it.
    s.interval = std::max(send_elapsed_, ack_elapsed_);
    s.valid = s.interval > Duration::zero() && s.interval >= min_rtt && s.delivered > 0;
  }
  has_packet_ = false;
  sample_ = RateSample{};
  return s;
}

}  // namespace rendr::core::recovery
