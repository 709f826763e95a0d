#pragma once
// The largest value seen over a sliding window of "time" (here: round trips counted by the
// caller), kept in three samples as Kathleen Nichols' algorithm (Linux lib/minmax.c) does:
// the best, and the best of the window's later parts to fall back on when it expires. Memory
// is constant; a window without new samples keeps its best (expiry is judged on update).
#include <array>
#include <cstdint>

namespace rendr::core::recovery {

class WindowedMaxFilter {
 public:
  explicit WindowedMaxFilter(std::uint64_t window) : window_(window) {}

  std::uint64_t best() const { return samples_[0].value; }
  void reset(std::uint64_t value, std::uint64_t time) { samples_.fill(Sample{value, time}); }

  void update(std::uint64_t value, std::uint64_t time) {
    if (value >= samples_[0].value || time - samples_[2].time > window_) {
      reset(value, time);
      return;
    }
    const Sample sample{value, time};
    if (value >= samples_[1].value) {
      samples_[2] = samples_[1] = sample;
    } else if (value >= samples_[2].value) {
      samples_[2] = sample;
    }
    // The best expired: promote the later ones; keep the three spread over the window.
    const std::uint64_t age = time - samples_[0].time;
    if (age > window_) {
      samples_[0] = samples_[1];
      samples_[1] = samples_[2];
      samples_[2] = sample;
      if (time - samples_[0].time > window_) {
        samples_[0] = samples_[1];
        samples_[1] = samples_[2];
      }
    } else if (samples_[1].time == samples_[0].time && age > window_ / 4) {
      samples_[2] = samples_[1] = sample;
    } else if (samples_[2].time == samples_[1].time && age > window_ / 2) {
      samples_[2] = sample;
    }
  }

 private:
  struct Sample {
    std::uint64_t value = 0;
    std::uint64_t time = 0;
  };
  std::uint64_t window_;
  std::array<Sample, 3> samples_{};
};

}  // namespace rendr::core::recovery
