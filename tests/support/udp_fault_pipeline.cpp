#include "support/udp_fault_pipeline.hpp"

#include <algorithm>
#include <limits>
#include <utility>

namespace rendr::testing {

UdpFaultPipeline::UdpFaultPipeline(std::uint64_t seed, AtomicUdpFaultCounters& counters,
                                   Clock::time_point now)
    : rng_(seed), counters_(counters), last_refill_(now) {}

bool UdpFaultPipeline::chance(double p) {
  if (p <= 0) return false;
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng_) < p;
}

std::chrono::microseconds UdpFaultPipeline::draw_wait() {
  std::chrono::microseconds wait = faults_.delay;
  if (faults_.jitter.count() > 0) {
    wait += std::chrono::microseconds(
        std::uniform_int_distribution<std::int64_t>(0, faults_.jitter.count())(rng_));
  }
  return wait;
}

void UdpFaultPipeline::configure(const UdpFaults& faults, Clock::time_point now) {
  refill(now);  // tokens earned at the old rate stay earned
  faults_ = faults;
  if (faults_.blackhole) drop_all();
}

void UdpFaultPipeline::push(Datagram d, Clock::time_point now) {
  AtomicUdpFaultCounters::bump(counters_.received);
  // Too big for the path: dropped before any random draw, so the other faults' decisions stay
  // the same for the datagrams that pass.
  if (faults_.max_datagram_bytes > 0 && d.size() > faults_.max_datagram_bytes) {
    AtomicUdpFaultCounters::bump(counters_.dropped);
    AtomicUdpFaultCounters::bump(counters_.too_big);
    return;
  }
  if (faults_.blackhole || chance(faults_.loss)) {
    AtomicUdpFaultCounters::bump(counters_.dropped);
    return;
  }
  const bool duplicate = chance(faults_.duplicate);
  if (duplicate) AtomicUdpFaultCounters::bump(counters_.duplicated);
  const bool can_hold = faults_.reorder_gap > 0 || faults_.reorder_hold.count() > 0;
  for (int copy = duplicate ? 2 : 1; copy > 0; --copy) {
    Datagram data = copy > 1 ? d : std::move(d);
    const bool hold = can_hold && chance(faults_.reorder) && held_.size() < kMaxHeldDatagrams;
    const auto wait = draw_wait();  // drawn now so decisions do not depend on wake-up timing
    if (hold) {
      AtomicUdpFaultCounters::bump(counters_.reordered);
      held_bytes_ += data.size();
      held_.push_back(Held{
          std::move(data), wait,
          faults_.reorder_gap > 0 ? faults_.reorder_gap : std::numeric_limits<std::size_t>::max(),
          faults_.reorder_hold.count() > 0 ? now + faults_.reorder_hold
                                           : Clock::time_point::max()});
      continue;
    }
    enter_bottleneck(std::move(data), wait, now);
    release_passed_holds(now);
  }
}

void UdpFaultPipeline::release_passed_holds(Clock::time_point now) {
  for (auto it = held_.begin(); it != held_.end();) {
    if (it->passes_left != std::numeric_limits<std::size_t>::max()) --it->passes_left;
    if (it->passes_left == 0) {
      held_bytes_ -= it->data.size();
      Held h = std::move(*it);
      it = held_.erase(it);
      enter_bottleneck(std::move(h.data), h.wait, now);
    } else {
      ++it;
    }
  }
}

void UdpFaultPipeline::enter_bottleneck(Datagram d, std::chrono::microseconds wait,
                                        Clock::time_point now) {
  const std::size_t limit = std::min(faults_.queue_limit_bytes, kMaxQueueBytes);
  if (faults_.rate_bytes_per_sec > 0 && bottleneck_bytes_ + d.size() > limit) {
    AtomicUdpFaultCounters::bump(counters_.dropped);
    AtomicUdpFaultCounters::bump(counters_.overflowed);
    return;
  }
  bottleneck_bytes_ += d.size();
  bottleneck_.push_back(Timed{std::move(d), now, wait, false});
}

void UdpFaultPipeline::refill(Clock::time_point now) {
  const double burst = static_cast<double>(kBurstBytes);
  if (faults_.rate_bytes_per_sec == 0) {
    tokens_ = burst;
  } else if (now > last_refill_) {
    const double elapsed = std::chrono::duration<double>(now - last_refill_).count();
    tokens_ = std::min(burst, tokens_ + elapsed * static_cast<double>(faults_.rate_bytes_per_sec));
  }
  last_refill_ = std::max(last_refill_, now);
}

void UdpFaultPipeline::pop_due(Clock::time_point now, std::vector<Datagram>& out) {
  // Holds whose time is up join the bottleneck (they count as passing no one).
  for (auto it = held_.begin(); it != held_.end();) {
    if (it->deadline <= now) {
      held_bytes_ -= it->data.size();
      Held h = std::move(*it);
      it = held_.erase(it);
      enter_bottleneck(std::move(h.data), h.wait, now);
    } else {
      ++it;
    }
  }
  // Bottleneck -> delay line while the bucket has tokens (it may go into debt by one datagram).
  refill(now);
  while (!bottleneck_.empty() && tokens_ >= 0) {
    Timed t = std::move(bottleneck_.front());
    bottleneck_.pop_front();
    bottleneck_bytes_ -= t.data.size();
    if (faults_.rate_bytes_per_sec > 0) tokens_ -= static_cast<double>(t.data.size());
    if (line_bytes_ + t.data.size() > kMaxDelayLineBytes) {
      AtomicUdpFaultCounters::bump(counters_.dropped);
      continue;
    }
    const auto release = std::max(now + t.wait, last_release_);  // jitter never reorders
    last_release_ = release;
    line_bytes_ += t.data.size();
    line_.push_back(Timed{std::move(t.data), release, {}, t.at < now || release > now});
  }
  while (!line_.empty() && line_.front().at <= now) {
    if (line_.front().waited) AtomicUdpFaultCounters::bump(counters_.delayed);
    line_bytes_ -= line_.front().data.size();
    out.push_back(std::move(line_.front().data));
    line_.pop_front();
  }
}

std::optional<UdpFaultPipeline::Clock::time_point> UdpFaultPipeline::next_wake() const {
  std::optional<Clock::time_point> wake;
  auto consider = [&wake](Clock::time_point t) {
    if (!wake || t < *wake) wake = t;
  };
  for (const Held& h : held_)
    if (h.deadline != Clock::time_point::max()) consider(h.deadline);
  if (!bottleneck_.empty()) {
    if (tokens_ >= 0 || faults_.rate_bytes_per_sec == 0) {
      consider(last_refill_);
    } else {
      consider(last_refill_ +
               std::chrono::ceil<std::chrono::microseconds>(std::chrono::duration<double>(
                   -tokens_ / static_cast<double>(faults_.rate_bytes_per_sec))));
    }
  }
  if (!line_.empty()) consider(line_.front().at);
  return wake;
}

void UdpFaultPipeline::drop_all() {
  const std::size_t n = held_.size() + bottleneck_.size() + line_.size();
  AtomicUdpFaultCounters::bump(counters_.dropped, n);
  held_.clear();
  bottleneck_.clear();
  line_.clear();
  held_bytes_ = bottleneck_bytes_ = line_bytes_ = 0;
}

}  // namespace rendr::testing
