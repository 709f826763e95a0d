#include "scheduling_noise.hpp"

#include <algorithm>

namespace rendr::cli {

SchedulingNoise::SchedulingNoise() {
  thread_ = std::thread([this] {
    using Clock = std::chrono::steady_clock;
    constexpr auto kStep = std::chrono::milliseconds(1);
    Clock::time_point next = Clock::now() + kStep;
    while (!stopping_.load(std::memory_order_relaxed)) {
      std::this_thread::sleep_until(next);
      const Clock::time_point woke = Clock::now();
      const auto late = std::chrono::duration_cast<std::chrono::microseconds>(woke - next).count();
      if (late > worst_us_.load(std::memory_order_relaxed)) worst_us_.store(late);
      next = std::max(next + kStep, woke);  // a late wake-up is measured once, not caught up
    }
  });
}

SchedulingNoise::~SchedulingNoise() {
  stopping_ = true;
  thread_.join();
}

}  // namespace rendr::cli
