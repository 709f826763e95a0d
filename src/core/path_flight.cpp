#include "core/path_flight.hpp"

#include <algorithm>

namespace rendr::core {

namespace {

// Shorter intervals say more about ACK batching than about the path.
constexpr Duration kMinRateInterval = std::chrono::microseconds(100);
constexpr Duration kRateWindow = std::chrono::seconds(1);

}  // namespace

void PathFlight::on_sent(std::uint64_t from, std::uint64_t to, Time now) {
  if (from >= to) return;
  if (in_flight_ == 0) first_sent_time_ = delivered_time_ = now;
  in_flight_ += to - from;
  if (!ranges_.empty() && ranges_.back().to == from && ranges_.back().sent_at == now) {
    ranges_.back().to = to;
    return;
  }
  ranges_.push_back(Range{from, to, now, delivered_, delivered_time_, first_sent_time_});
}

void PathFlight::on_acked(std::uint64_t delivered, Time now) {
  const Range* newest_done = nullptr;
  Range done{};
  const std::uint64_t delivered_before = delivered_;
  for (Range& r : ranges_) {
    if (r.from >= delivered) continue;
    const std::uint64_t credited = std::min(r.to, delivered) - r.from;
    delivered_ += credited;
    in_flight_ -= credited;
    r.from += credited;
    if (r.from == r.to && (newest_done == nullptr || r.sent_at >= done.sent_at)) {
      done = r;
      newest_done = &done;
    }
  }
  std::erase_if(ranges_, [](const Range& r) { return r.from == r.to; });
  if (delivered_ != delivered_before) delivered_time_ = now;
  if (newest_done == nullptr) return;
  first_sent_time_ = done.sent_at;
  const Duration send_interval = done.sent_at - done.first_sent_at_send;
  const Duration ack_interval = now - done.delivered_time_at_send;
  const Duration interval = std::max(send_interval, ack_interval);
  if (interval < kMinRateInterval) return;
  const double sample = static_cast<double>(delivered_ - done.delivered_at_send) /
                        std::chrono::duration<double>(interval).count();
  if (now - window_start_ >= kRateWindow) {
    previous_window_max_ = window_max_;
    window_max_ = 0;
    window_start_ = now;
  }
  window_max_ = std::max(window_max_, sample);
}

void PathFlight::requeue_unacked(std::uint64_t base, RetransmitQueue& rtx) {
  for (const Range& r : ranges_) {
    if (r.to > base) rtx.add(std::max(r.from, base), r.to);
  }
  clear();
}

void PathFlight::clear() {
  ranges_.clear();
  in_flight_ = 0;
}

}  // namespace rendr::core
