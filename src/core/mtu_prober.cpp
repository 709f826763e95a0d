#include "core/mtu_prober.hpp"

#include <algorithm>

namespace rendr::core {

MtuProber::MtuProber(const MtuProbeConfig& config)
    : config_(config), current_(config.base), too_big_(std::max(config.max, config.base) + 1) {}

std::optional<std::size_t> MtuProber::probe_due(Time now) const {
  if (in_flight_) return std::nullopt;
  if (!searching()) {
    if (!search_done_at_ || now - *search_done_at_ < config_.research_after) return std::nullopt;
    // Research: the ceiling may have risen since; try the configured maximum again.
    if (current_ >= config_.max) return std::nullopt;
    return config_.max;
  }
  return current_ + (too_big_ - current_) / 2;
}

void MtuProber::on_probe_sent(std::size_t size, Time now) {
  if (!searching() && search_done_at_ && now - *search_done_at_ >= config_.research_after) {
    too_big_ = config_.max + 1;  // restart the search above what passes
    search_done_at_.reset();
  }
  if (size != last_probed_) attempts_ = 0;
  last_probed_ = size;
  in_flight_ = size;
}

void MtuProber::on_probe_acked(std::size_t size, Time now) {
  if (in_flight_ == size) in_flight_.reset();
  attempts_ = 0;
  if (size > current_ && size < too_big_) current_ = size;
  finish_if_done(now);
}

void MtuProber::on_probe_lost(std::size_t size, Time now) {
  if (in_flight_ != size) return;  // a stale report
  in_flight_.reset();
  // Below max_attempts, probe_due offers the same size again.
  if (++attempts_ < config_.max_attempts) return;
  attempts_ = 0;
  if (size > current_) too_big_ = std::min(too_big_, size);
  finish_if_done(now);
}

void MtuProber::on_black_hole(Time now) {
  current_ = config_.base;
  too_big_ = config_.max + 1;
  in_flight_.reset();
  attempts_ = 0;
  search_done_at_.reset();
  suspicious_losses_ = 0;
  smaller_acked_ = false;
  finish_if_done(now);
}

void MtuProber::on_packets_acked(bool full_size) {
  if (full_size) {
    // The current size passes: whatever full-size packets were lost, it was not to the MTU.
    suspicious_losses_ = 0;
    smaller_acked_ = false;
  } else {
    smaller_acked_ = true;
  }
}

bool MtuProber::on_full_size_lost(Time now) {
  // Without a smaller packet acknowledged since the last loss counted, this one says nothing
  // new (the same acknowledgement, a loss timer, or a path that passes nothing at all).
  if (!smaller_acked_ || current_ <= config_.base) return false;
  smaller_acked_ = false;
  if (++suspicious_losses_ < std::max(config_.black_hole_threshold, 1)) return false;
  on_black_hole(now);
  ++black_holes_;
  return true;
}

void MtuProber::finish_if_done(Time now) {
  if (!searching() && !search_done_at_) search_done_at_ = now;
}

}  // namespace rendr::core
