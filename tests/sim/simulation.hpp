#pragma once
// Deterministic simulation of two core::Flows joined by a simulated network in virtual time.
//
// One seed fixes everything random about a run: the network (2-4 routes, each a reliable
// ordered byte pipe per connection with latency, order-preserving jitter and a bandwidth
// limit; or, for datagram paths, packets with per-direction loss, duplication, reordering
// jitter and an MTU), the fault schedule (blackholes, resets, route kills, latency changes, dark
// periods; on some seeds already during the OPEN/OPEN_ACK handshake), the admin schedule (migrate,
// add_path, remove_path), strangers replaying or forging the OPEN, and the application's writes
// and reads in both directions. Every run is checked against the contract of DESIGN.md §1.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "core/message.hpp"

namespace rendr::sim {

// What carries the client's paths: stream carriers (TCP-like byte pipes), datagram paths
// (udpflow-like: packets lost, duplicated, reordered and dropped above the route's MTU; the
// core recovers), or a mix of both, chosen per path.
enum class Transports { reliable, datagram, mixed };

struct RunOptions {
  Transports transports = Transports::reliable;
  bool verbose = false;  // trace every network, flow and application event to stderr
  // The no-false-death check (timing_watch.hpp) in race and bond too, not only in prime (the
  // CI sweeps turn it on).
  bool deaths_in_every_mode = false;
  // Datagram paths probe their path MTU (up to 1452 bytes) over routes whose MTU is 1500, 1400
  // or 1300; off, every route carries 1500 and paths keep their 1200-byte datagrams.
  bool mtu_probing = false;
  // Packet mode: the flow carries messages with these options; each end's application sends
  // numbered, self-describing messages and checks every one it reads (whole, intact, never
  // twice, in order if ordered, all of them if reliable).
  std::optional<core::PacketOptions> packet;
  // The failover-timing and no-false-death judge (timing_watch.hpp).
  bool check_timing = true;
};

enum class Outcome {
  closed,           // both ends closed cleanly, every byte delivered both ways
  budget_exceeded,  // a dark period longer than the budget: both ends failed as allowed
                    // (the client with handshake_failed if it was still opening)
};

struct RunResult {
  bool ok = true;
  Outcome outcome = Outcome::closed;
  std::string failure;  // what broke, then the state of both flows
  std::string summary;  // one line: scenario and counters
  double virtual_seconds = 0;
  bool handshake_faults = false;     // the fault schedule also hit the handshake
  std::uint64_t repeated_opens = 0;  // honest repeated OPENs the listener answered
  std::uint64_t stranger_opens = 0;  // replayed or forged OPENs the listener answered/refused
  double established_after = 0;      // virtual seconds from dial to the client's OPEN_ACK
  // Blackholes of the active path whose failover time was judged (timing_watch.hpp), and the
  // slowest of them as a fraction of its allowance (deadline + bound; at most 1 when ok).
  std::uint64_t failovers_checked = 0;
  // The largest datagram that crossed a route (UDP payload bytes; 0: none): above 1200 only if
  // MTU probing found room.
  std::size_t largest_datagram = 0;
  double worst_failover_ratio = 0;
  // Packet mode: messages sent in both directions, and those never delivered (0 when reliable).
  std::uint64_t messages_sent = 0;
  std::uint64_t messages_lost = 0;
  std::uint64_t datagrams_dropped = 0;  // by the network: loss, dark directions, the MTU
};

RunResult run_seed(std::uint64_t seed, const RunOptions& options = {});

}  // namespace rendr::sim
