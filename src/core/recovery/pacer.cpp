#include "core/recovery/pacer.hpp"

#include <algorithm>
#include <chrono>

namespace rendr::core::recovery {

namespace {

// The bucket also holds this much time at the rate, so high rates still send in bursts large
// enough for a timer of this resolution to keep up.
constexpr Duration kBurstInterval = std::chrono::milliseconds(2);

}  // namespace

Pacer::Pacer(std::size_t max_datagram_size, std::size_t burst_packets)
    : mss_(max_datagram_size), burst_packets_(std::max<std::size_t>(burst_packets, 1)) {}

void Pacer::refill(Time now) {
  if (now <= last_) return;
  if (rate_ > 0) {
    tokens_ += std::chrono::duration<double>(now - last_).count() * static_cast<double>(rate_);
    tokens_ = std::min(tokens_, static_cast<double>(capacity_));
  }
  last_ = now;
}

void Pacer::set_rate(std::uint64_t bytes_per_second, std::uint64_t window, Time now) {
  refill(now);
  const bool first = rate_ == 0 && capacity_ == 0;
  rate_ = bytes_per_second;
  const auto interval_bytes = static_cast<std::uint64_t>(
      std::chrono::duration<double>(kBurstInterval).count() * static_cast<double>(rate_));
  capacity_ = std::max<std::uint64_t>(burst_packets_ * mss_, interval_bytes);
  capacity_ = std::max<std::uint64_t>(std::min(capacity_, window), mss_);
  // A fresh bucket starts full: the first burst (the initial window) need not wait.
  if (first) tokens_ = static_cast<double>(capacity_);
  tokens_ = std::min(tokens_, static_cast<double>(capacity_));
}

void Pacer::set_max_datagram_size(std::size_t bytes) {
  if (bytes > 0) mss_ = bytes;
}

void Pacer::on_sent(std::size_t bytes, Time now) {
  refill(now);
  // May go below zero by part of a datagram: the debt is paid before the next one leaves.
  tokens_ -= static_cast<double>(bytes);
  tokens_ = std::max(tokens_, -static_cast<double>(capacity_));
}

std::optional<Time> Pacer::next_send_time() const {
  if (rate_ == 0) return std::nullopt;
  const double missing = static_cast<double>(mss_) - tokens_;
  if (missing <= 0) return std::nullopt;
  // To the nearest tick: a rounding error of a nanosecond's worth of tokens is immaterial.
  return last_ + std::chrono::round<Duration>(
                     std::chrono::duration<double>(missing / static_cast<double>(rate_)));
}

std::uint64_t Pacer::tokens(Time now) const {
  double t = tokens_;
  if (now > last_ && rate_ > 0) {
    t += std::chrono::duration<double>(now - last_).count() * static_cast<double>(rate_);
    t = std::min(t, static_cast<double>(capacity_));
  }
  return t <= 0 ? 0 : static_cast<std::uint64_t>(t);
}

}  // namespace rendr::core::recovery
