#pragma once
// Smoothed round-trip time per path (RFC 6298 weights), and the recent *unloaded* samples. An
// unloaded sample is a probe with (almost) no data around it: a sample taken while bulk data
// queued ahead of the probe measures the queue, not the path, and would make a busy path look
// worse than an idle one of the same quality. Handshake round trips are not unloaded either: they
// include the peer's key agreement.
//
// Prime quality switching compares paths by the minimum of their recent unloaded samples and
// needs several of them on each side: a busy active path collects few, and a lone old sample
// (taken, say, while the machine was starting up) must not be weighed against the many fresh
// ones of an idle standby.
#include <algorithm>
#include <array>
#include <cstddef>

#include "core/types.hpp"

namespace rendr::core {

// The minimum of the unloaded samples taken within RttEstimator::kRecentHorizon, how many there
// were and when the newest was taken (samples 0: nothing recent is known, the rest is
// meaningless).
struct RecentRtt {
  Duration min{};
  std::size_t samples = 0;
  Time latest{};
};

class RttEstimator {
 public:
  static constexpr Duration kRecentHorizon = std::chrono::seconds(10);

  void add_sample(Duration sample, Time now, bool unloaded = true) {
    if (sample < Duration::zero()) return;
    if (unloaded) {
      unloaded_[next_unloaded_ % unloaded_.size()] = {now, sample};
      ++next_unloaded_;
    }
    if (!has_sample_) {
      srtt_ = sample;
      rttvar_ = sample / 2;
      min_rtt_ = sample;
      has_sample_ = true;
      return;
    }
    const Duration delta = srtt_ > sample ? srtt_ - sample : sample - srtt_;
    rttvar_ = (3 * rttvar_ + delta) / 4;
    srtt_ = (7 * srtt_ + sample) / 8;
    min_rtt_ = std::min(min_rtt_, sample);
  }
  bool has_sample() const { return has_sample_; }
  Duration srtt() const { return srtt_; }
  Duration rttvar() const { return rttvar_; }
  Duration min_rtt() const { return min_rtt_; }

  RecentRtt recent_unloaded(Time now) const {
    RecentRtt r;
    const std::size_t kept = std::min(next_unloaded_, unloaded_.size());
    for (std::size_t i = 0; i < kept; ++i) {
      const Unloaded& u = unloaded_[i];
      if (now - u.at > kRecentHorizon) continue;
      r.min = r.samples == 0 ? u.rtt : std::min(r.min, u.rtt);
      r.latest = r.samples == 0 ? u.at : std::max(r.latest, u.at);
      ++r.samples;
    }
    return r;
  }

 private:
  struct Unloaded {
    Time at{};
    Duration rtt{};
  };

  bool has_sample_ = false;
  Duration srtt_{};
  Duration rttvar_{};
  Duration min_rtt_{};
  // The last unloaded samples, oldest overwritten first (a standby pinged every 250 ms fills it
  // in 4 s; an idle active path, pinged every 50 ms, in 0.8 s).
  std::array<Unloaded, 16> unloaded_{};
  std::size_t next_unloaded_ = 0;
};

}  // namespace rendr::core
