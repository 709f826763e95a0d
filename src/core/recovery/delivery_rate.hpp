#pragma once
// Delivery-rate estimation (draft-cheng-iccrg-delivery-rate-estimation): each ack-eliciting
// packet remembers, when it is sent, how much the path had delivered by then and when; when an
// ACK arrives, the packets it acknowledges give one sample of the rate the path delivered at
// over the interval between the newest of them being sent and being acknowledged. A sample is
// marked application-limited when the sender had run out of data while the packet was sent
// (it then shows what the application offered, not what the path could carry).
#include <cstdint>

#include "core/types.hpp"

namespace rendr::core::recovery {

// The path's delivery state when a packet left (kept with the packet until it is acknowledged).
struct DeliverySnapshot {
  std::uint64_t delivered = 0;  // bytes acknowledged on the path before it was sent
  Time delivered_time{};        // when `delivered` last grew
  Time first_sent_time{};       // send time of the first packet of the current flight
  bool app_limited = false;     // the sender had no data to fill the window with
};

// One ACK's sample. Valid only when `interval` is positive and at least the path's min RTT
// (shorter intervals come from compressed ACKs and overstate the rate).
struct RateSample {
  bool valid = false;
  std::uint64_t delivered = 0;        // bytes delivered over `interval`
  Duration interval{};                // max(send elapsed, ack elapsed)
  std::uint64_t prior_delivered = 0;  // path's delivered when the newest acked packet left
  bool app_limited = false;
  std::uint64_t newly_acked = 0;  // bytes this ACK acknowledged
  // Bytes per second (0 when invalid).
  std::uint64_t rate() const;
};

class DeliveryRateSampler {
 public:
  // A packet leaves at `now` with `in_flight` bytes already outstanding: its snapshot.
  DeliverySnapshot on_packet_sent(Time now, std::uint64_t in_flight);
  // The sender has nothing more to send while the window has room (`in_flight` outstanding):
  // packets sent until what is in flight now is delivered are application-limited.
  void on_app_limited(std::uint64_t in_flight);
  // One packet of `bytes`, sent at `sent_at` with `snapshot`, acknowledged at `now` (any order
  // within one ACK).
  void on_packet_acked(std::size_t bytes, Time sent_at, const DeliverySnapshot& snapshot, Time now);
  // The sample of the packets acknowledged since the last call (`min_rtt`: the path's minimum).
  RateSample take_sample(Duration min_rtt);

  std::uint64_t delivered() const { return delivered_; }
  bool app_limited() const { return app_limited_until_ != 0; }

 private:
  std::uint64_t delivered_ = 0;
  Time delivered_time_{};
  Time first_sent_time_{};
  // Nonzero: packets are app-limited until delivered_ passes it.
  std::uint64_t app_limited_until_ = 0;
  // The sample being built from the current ACK's packets.
  bool has_packet_ = false;
  RateSample sample_;
  Duration send_elapsed_{};
  Duration ack_elapsed_{};
};

}  // namespace rendr::core::recovery
