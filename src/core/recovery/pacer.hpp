#pragma once
// Paces a datagram path's packets: a token bucket filled at the congestion controller's pacing
// rate. The bucket holds a burst of `burst_packets` datagrams (at least), so packets still
// leave in small trains that one GSO send can carry, while a full window never leaves at once
// at line rate into a bottleneck's queue.
#include <cstddef>
#include <cstdint>
#include <optional>

#include "core/types.hpp"

namespace rendr::core::recovery {

class Pacer {
 public:
  Pacer(std::size_t max_datagram_size, std::size_t burst_packets);

  // New rate (bytes/s; 0: no pacing) and window: the bucket holds
  // max(burst_packets datagrams, 2 ms at the rate), never more than the window.
  void set_rate(std::uint64_t bytes_per_second, std::uint64_t window, Time now);
  void set_max_datagram_size(std::size_t bytes);

  // A packet of `bytes` left at `now`.
  void on_sent(std::size_t bytes, Time now);
  // When a full-size datagram may leave; nullopt: now, or pacing is off.
  std::optional<Time> next_send_time() const;

  std::uint64_t rate() const { return rate_; }
  std::uint64_t capacity() const { return capacity_; }
  // Bytes the bucket holds at `now`.
  std::uint64_t tokens(Time now) const;

 private:
  void refill(Time now);

  std::size_t mss_;
  std::size_t burst_packets_;
  std::uint64_t rate_ = 0;
  std::uint64_t capacity_ = 0;
  double tokens_ = 0;
  Time last_{};
};

}  // namespace rendr::core::recovery
