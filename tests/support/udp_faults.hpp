#pragma once
// The faults the UDP fault proxy applies to one direction of traffic, and its counters.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace rendr::testing {

// Per direction. Probabilities are in [0, 1] (clamped); decisions come from a seeded RNG.
struct UdpFaults {
  double loss = 0;       // each arriving datagram is dropped with this probability
  double duplicate = 0;  // a surviving datagram is forwarded twice with this probability
  // Reordering: a datagram is held back with probability `reorder` until `reorder_gap` later
  // datagrams of its session and direction have passed it, or `reorder_hold` has elapsed (whichever
  // comes first; 0 disables that trigger). Nothing else reorders: jitter keeps order.
  double reorder = 0;
  std::size_t reorder_gap = 3;
  std::chrono::microseconds reorder_hold{20'000};
  // Propagation delay: released at send + delay + uniform(0, jitter), never before the datagram
  // ahead of it.
  std::chrono::microseconds delay{0};
  std::chrono::microseconds jitter{0};
  // Bottleneck: a token bucket of rate_bytes_per_sec (0 = unlimited) in front of a FIFO of at
  // most queue_limit_bytes; a datagram that does not fit is dropped (tail drop, like a router).
  std::uint64_t rate_bytes_per_sec = 0;
  std::size_t queue_limit_bytes = 64 * 1024;
  bool blackhole = false;  // drop everything, including what is queued when it is set
  // A path MTU: datagrams larger than this many bytes (UDP payload) are dropped silently, as a
  // router does with DF set (0 = no limit). Setting it mid-run models a route change.
  std::size_t max_datagram_bytes = 0;
};

// Datagram counts for one direction, summed over every client of the proxy.
struct UdpFaultCounters {
  std::uint64_t received = 0;    // datagrams that arrived at the proxy
  std::uint64_t forwarded = 0;   // datagrams sent on (a duplicate counts twice)
  std::uint64_t dropped = 0;     // loss, blackhole, full queue or delay line, failed send
  std::uint64_t overflowed = 0;  // the part of `dropped` due to a full bottleneck queue
  std::uint64_t duplicated = 0;  // extra copies made
  std::uint64_t reordered = 0;   // datagrams held back by the reorder fault
  std::uint64_t delayed = 0;     // datagrams that waited for the delay line or the token bucket
  std::uint64_t too_big = 0;     // the part of `dropped` above max_datagram_bytes
};

// The live form of UdpFaultCounters: written on the proxy's io thread, read from any thread.
struct AtomicUdpFaultCounters {
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::uint64_t> forwarded{0};
  std::atomic<std::uint64_t> dropped{0};
  std::atomic<std::uint64_t> overflowed{0};
  std::atomic<std::uint64_t> duplicated{0};
  std::atomic<std::uint64_t> reordered{0};
  std::atomic<std::uint64_t> delayed{0};
  std::atomic<std::uint64_t> too_big{0};

  static void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) {
    c.fetch_add(n, std::memory_order_relaxed);
  }
  UdpFaultCounters snapshot() const {
    constexpr auto r = std::memory_order_relaxed;
    return {received.load(r),   forwarded.load(r), dropped.load(r), overflowed.load(r),
            duplicated.load(r), reordered.load(r), delayed.load(r), too_big.load(r)};
  }
};

}  // namespace rendr::testing
