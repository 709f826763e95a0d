#pragma once
// Fault proxy: a user-space TCP relay that injects faults on one network path at run time.
// Used by integration tests, the demo and benchmarks ("path A goes dark", "path B is slow").
//
// One FaultProxy listens on listen_host:<ephemeral> and relays every accepted connection to
// target_host:target_port. It owns one io thread (started in the constructor, joined in the
// destructor). All public member functions are thread-safe.
//
// Modes (set_mode applies to live AND future connections):
//  - pass:      relay bytes both ways, with optional per-direction shaping (delay, jitter, rate).
//               EOF on one side is propagated as shutdown(send) on the other side once the bytes
//               queued before it have been written. A read/write error (e.g. RST) on either side
//               aborts the whole connection with RST on both sides.
//  - blackhole: both sockets stay open; everything read in either direction is silently discarded
//               (and counted in bytes_discarded()). Reading continues so the peers never see a
//               closed window. FIN/RST from a peer is swallowed too (not propagated); the
//               connection is dropped once every side it has has finished.
//               A connection that was live while the proxy was blackholed stays blackholed FOREVER,
//               even after set_mode(pass): bytes were lost mid-stream, so resuming forwarding would
//               silently corrupt the byte stream. Only connections accepted in pass mode forward.
//               A connection accepted while blackholed is accepted on the client side but NO
//               upstream connection is made (the server never sees it, as with a real blackhole
//               that eats the SYN); everything the client sends is discarded.
//               Bytes already handed to the kernel (a write in flight when the mode switched) are
//               still delivered; bytes queued in the proxy (delay line) are discarded.
//  - reset:     every live connection is aborted with a TCP RST on both sides (SO_LINGER {1,0} then
//               close), and every new connection is RST immediately after accept (the client's
//               connect() succeeds at the kernel level, its first read gets ECONNRESET).
//
// Shaping (per direction, applies to live connections from the next chunk on, and to future ones):
//  - each chunk read is released at read_time + delay + uniform(0, jitter), but never before the
//    previous chunk of the same direction (bytes are never reordered);
//  - after release, chunks go through a token bucket of rate_bps (depth kBurstBytes), written in
//    pieces of at most kPaceBytes; 0 = unlimited. The bucket is deeper than a piece so a timer
//    that fires late does not cost the link the tokens it would have earned meanwhile.
//
// Back-pressure: per direction the proxy buffers at most kBaseBufferBytes plus, when delay/jitter
// is set, what the delay line needs (rate/8 * (delay + jitter) + burst if rate-limited, otherwise
// kUnlimitedDelayBufferBytes), capped at kMaxBufferBytes. When the buffer is full it stops reading
// that side, so a stalled or rate-limited receiver pushes back on the sender through TCP flow
// control instead of making the proxy queue without bound.
//
// set_mode and set_shaping are synchronous: when they return, the change has been applied on the
// io thread to every live connection. (Do not call them from a destructor racing ~FaultProxy.)
//
// TCP_NODELAY is set on both sockets of every relayed connection.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace rendr::testing {

enum class FaultMode { pass, blackhole, reset };

struct Shaping {                        // per direction
  std::chrono::microseconds delay{0};   // added one-way delay
  std::chrono::microseconds jitter{0};  // uniform extra 0..jitter, order preserved
  std::uint64_t rate_bps = 0;           // bits per second, 0 = unlimited (token bucket)
};

class FaultProxy {
 public:
  static constexpr std::size_t kReadChunkBytes = 32 * 1024;
  static constexpr std::size_t kBaseBufferBytes = 64 * 1024;
  static constexpr std::size_t kBurstBytes = 64 * 1024;
  static constexpr std::size_t kPaceBytes = 16 * 1024;
  static constexpr std::size_t kUnlimitedDelayBufferBytes = 8 * 1024 * 1024;
  static constexpr std::size_t kMaxBufferBytes = 16 * 1024 * 1024;

  // Listens on listen_host:0 (ephemeral port) and relays every accepted connection to target.
  // Resolves both hosts synchronously; throws std::system_error if that or the bind fails.
  FaultProxy(std::string listen_host, std::string target_host, std::uint16_t target_port);
  // Closes the listener and every connection (plain close, no RST), stops and joins the io thread.
  ~FaultProxy();

  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;
  FaultProxy(FaultProxy&&) = delete;
  FaultProxy& operator=(FaultProxy&&) = delete;

  std::uint16_t port() const;  // the port it listens on

  void set_mode(FaultMode m);  // applies to live AND future connections; synchronous
  FaultMode mode() const;

  void set_shaping(Shaping client_to_server, Shaping server_to_client);  // synchronous
  Shaping shaping_client_to_server() const;
  Shaping shaping_server_to_client() const;

  // Counters (monotonic except live_connections / bytes_queued).
  std::uint64_t bytes_forwarded() const;     // written to a peer, both directions
  std::uint64_t bytes_discarded() const;     // read (or queued) and dropped while blackholed
  std::size_t connections_accepted() const;  // every accept, whatever the mode
  std::size_t live_connections() const;      // connections currently held open
  std::uint64_t bytes_queued() const;        // currently buffered inside the proxy, all conns

  struct Impl;  // public only so the implementation's helpers can name it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace rendr::testing
