#pragma once
// A control for latency benches: a thread that sleeps in 1 ms steps and records how late it
// wakes. On a virtual machine a thread can miss its wake-up by 10-20 ms with nothing else
// running; a gap the application sees is only rendr's doing if it exceeds this.
#include <atomic>
#include <chrono>
#include <thread>

namespace rendr::cli {

class SchedulingNoise {
 public:
  SchedulingNoise();
  ~SchedulingNoise();
  SchedulingNoise(const SchedulingNoise&) = delete;
  SchedulingNoise& operator=(const SchedulingNoise&) = delete;

  // The latest wake-up seen so far, in milliseconds.
  double worst_ms() const { return worst_us_.load() / 1000.0; }

 private:
  std::atomic<bool> stopping_{false};
  std::atomic<std::int64_t> worst_us_{0};
  std::thread thread_;
};

}  // namespace rendr::cli
