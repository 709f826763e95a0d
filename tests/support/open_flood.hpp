#pragma once
// A flood of valid OPENs against a listener, as fast as the threads can go: each connection
// comes from one of many 127.0.0.0/8 source addresses, carries a well-formed OPEN for a fresh
// flow (real X25519 key share) and is then abandoned at once (closed, or reset), except every
// `hold_every`-th, which is held open silently (never read or written) among the last
// `max_held`. It models an attacker without a PSK who needs nothing but the protocol to open
// flows. Runs on its own threads until stop() (or destruction).
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace rendr::testing {

// The bytes of a well-formed OPEN for a fresh flow (random FlowId, real X25519 key share).
std::vector<std::uint8_t> fresh_open_bytes();

class OpenFlood {
 public:
  struct Options {
    std::uint16_t port = 0;  // the listener, on 127.0.0.1
    int first_source = 2;    // sources 127.0.0.<first_source>..127.0.0.<last_source>
    int last_source = 200;
    int threads = 2;
    std::uint64_t hold_every = 16;  // 0: hold none
    std::size_t max_held = 32;      // per thread; the oldest held one is closed for a new one
  };
  struct Counts {
    std::uint64_t opens = 0;           // OPENs written
    std::uint64_t held = 0;            // connections held open at some point
    std::uint64_t connect_errors = 0;  // connects refused or failed
  };

  explicit OpenFlood(const Options& options);
  ~OpenFlood();
  OpenFlood(const OpenFlood&) = delete;
  OpenFlood& operator=(const OpenFlood&) = delete;

  void start();
  void stop();  // joins the threads and closes every held connection
  Counts counts() const;

 private:
  void run(int index);

  Options options_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> opens_{0}, held_{0}, connect_errors_{0};
  std::vector<std::thread> threads_;
};

}  // namespace rendr::testing
