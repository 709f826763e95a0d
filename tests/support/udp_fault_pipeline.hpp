#pragma once
// One direction of one UDP fault-proxy session, without I/O: datagrams go in with the time they
// arrived, come out when they are due to be sent, and the caller sleeps until next_wake().
//
// Stages, in order: path MTU (max_datagram_bytes) -> blackhole -> loss -> duplication -> reorder
// hold -> bottleneck (token bucket and bounded FIFO) -> propagation delay line -> out. Every queue
// is bounded, so memory is too. RNG draws per arriving datagram, in this order: loss; then, if it
// survives, duplicate, and for each copy reorder and jitter (each only when its fault is enabled).
// The same seed, faults and arrivals therefore give the same decisions.
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <random>
#include <vector>

#include "support/udp_faults.hpp"

namespace rendr::testing {

class UdpFaultPipeline {
 public:
  using Clock = std::chrono::steady_clock;
  using Datagram = std::vector<char>;

  static constexpr std::size_t kMaxHeldDatagrams = 64;             // reorder holds
  static constexpr std::size_t kMaxQueueBytes = 16 * 1024 * 1024;  // bottleneck cap
  static constexpr std::size_t kMaxDelayLineBytes = 16 * 1024 * 1024;
  static constexpr std::size_t kBurstBytes = 16 * 1024;  // token bucket depth

  UdpFaultPipeline(std::uint64_t seed, AtomicUdpFaultCounters& counters, Clock::time_point now);

  // New faults from now on; turning blackhole on drops everything queued.
  void configure(const UdpFaults& faults, Clock::time_point now);
  void push(Datagram d, Clock::time_point now);
  // Appends to `out`, in send order, every datagram due at `now`.
  void pop_due(Clock::time_point now, std::vector<Datagram>& out);
  // When pop_due next has something to do (nullopt: nothing queued).
  std::optional<Clock::time_point> next_wake() const;
  std::size_t queued_bytes() const { return held_bytes_ + bottleneck_bytes_ + line_bytes_; }

 private:
  struct Held {
    Datagram data;
    std::chrono::microseconds wait;  // its delay line time, drawn on arrival
    std::size_t passes_left;         // later datagrams still to pass it
    Clock::time_point deadline;
  };
  struct Timed {
    Datagram data;
    Clock::time_point at;            // arrival (bottleneck) or release (delay line)
    std::chrono::microseconds wait;  // bottleneck only: its delay line time
    bool waited;                     // delay line only: held by the bucket or the line
  };

  bool chance(double p);
  std::chrono::microseconds draw_wait();
  void enter_bottleneck(Datagram d, std::chrono::microseconds wait, Clock::time_point now);
  void release_passed_holds(Clock::time_point now);
  void refill(Clock::time_point now);
  void drop_all();

  UdpFaults faults_;
  std::mt19937_64 rng_;
  AtomicUdpFaultCounters& counters_;
  std::deque<Held> held_;
  std::deque<Timed> bottleneck_;
  std::deque<Timed> line_;
  std::size_t held_bytes_ = 0;
  std::size_t bottleneck_bytes_ = 0;
  std::size_t line_bytes_ = 0;
  double tokens_ = static_cast<double>(kBurstBytes);
  Clock::time_point last_refill_;
  Clock::time_point last_release_{};
};

}  // namespace rendr::testing
