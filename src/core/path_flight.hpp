#pragma once
// What one path carries that the peer has not acknowledged yet, and how fast the path delivers.
//
// Ranges are recorded per pull (contiguous frames sent at the same instant extend one range),
// so tracking costs no allocation per frame. When the cumulative ACK passes a range, the path
// is credited with its bytes and a delivery-rate sample is taken the way BBR does: the bytes
// this path delivered between sending the range and its acknowledgement, over the longer of
// the send and the ACK intervals (from the ACK before the range was sent). Over the range's
// own interval alone, one ACK covering ranges sent far apart (an application writing little
// at a time, a delayed ACK) would credit all their bytes to the last range's round trip.
// The estimate is the largest sample of the last one to two rate windows (a windowed max, as
// in BBR): a path that was given little to carry delivers little, and an average would starve
// it further; a path that really slowed down loses its old estimate after two windows.
#include <algorithm>
#include <cstdint>
#include <deque>

#include "core/retransmit_queue.hpp"
#include "core/types.hpp"

namespace rendr::core {

class PathFlight {
 public:
  void on_sent(std::uint64_t from, std::uint64_t to, Time now);
  // The cumulative ACK reached `delivered`.
  void on_acked(std::uint64_t delivered, Time now);
  // Hands the ranges above `base` to `rtx` (the path died) and forgets them.
  void requeue_unacked(std::uint64_t base, RetransmitQueue& rtx);
  void clear();

  std::uint64_t bytes() const { return in_flight_; }
  // Bytes per second; 0 until the first sample.
  double delivery_rate() const { return std::max(window_max_, previous_window_max_); }

 private:
  struct Range {
    std::uint64_t from;
    std::uint64_t to;
    Time sent_at;
    std::uint64_t delivered_at_send;  // delivered_ when the range went out
    Time delivered_time_at_send;      // delivered_time_ then
    Time first_sent_at_send;          // first_sent_time_ then
  };
  std::deque<Range> ranges_;
  std::uint64_t in_flight_ = 0;
  std::uint64_t delivered_ = 0;  // bytes sent here and acknowledged, ever
  Time delivered_time_{};        // when delivered_ last grew (or a send found nothing in flight)
  Time first_sent_time_{};       // when the newest acknowledged range went out (likewise)
  double window_max_ = 0;
  double previous_window_max_ = 0;
  Time window_start_{};
};

}  // namespace rendr::core
