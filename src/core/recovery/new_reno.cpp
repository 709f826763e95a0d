#include "core/recovery/new_reno.hpp"

namespace rendr::core::recovery {

void NewReno::grow_in_avoidance(std::size_t bytes, const RttStats&, Time) {
  // One datagram per window's worth of acknowledged bytes (RFC 9002 §7.3.3, byte counting).
  acked_in_window_ += bytes;
  if (acked_in_window_ >= cwnd_) {
    acked_in_window_ -= cwnd_;
    cwnd_ += mss_;
  }
}

void NewReno::reduce(Time) {
  ssthresh_ = std::max(cwnd_ / 2, min_window());
  cwnd_ = ssthresh_;
  acked_in_window_ = 0;
}

}  // namespace rendr::core::recovery
