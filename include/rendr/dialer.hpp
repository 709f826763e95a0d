#pragma once
// rendr::Dialer — opens a flow over one or more paths.
#include <chrono>
#include <cstdint>
#include <system_error>
#include <vector>

#include "rendr/conn.hpp"
#include "rendr/engine.hpp"
#include "rendr/types.hpp"

namespace rendr {

// Tunables shared by both ends; defaults suit loopback to WAN (see docs/design.md).
struct FlowOptions {
  std::size_t send_buffer = 8 * 1024 * 1024;
  std::size_t recv_window = 8 * 1024 * 1024;
  std::chrono::milliseconds dead_floor{40};    // liveness deadline floor
  std::chrono::milliseconds dead_cap{3000};    // liveness deadline cap
  std::chrono::milliseconds redial_max{2000};  // backoff cap for re-dialing a dead path
  std::vector<std::uint8_t> psk;               // optional pre-shared key (both ends)
};

struct Dialer {
  Mode mode = Mode::prime;
  std::vector<PathSpec> paths;
  std::chrono::milliseconds migration_budget{90'000};
  std::chrono::milliseconds dial_timeout{10'000};  // for the first OPEN to complete
  FlowOptions options;
  Engine* engine = nullptr;  // nullptr: the default engine

  // Connects: OPEN on the first path that answers, then JOIN on the others in the background.
  // Paths that fail are re-dialed with backoff until dial_timeout; if none ever connected, the
  // error is the transport's last one (e.g. connection_refused), else errc::handshake_failed.
  Conn dial(std::error_code& ec) const;
  Conn dial() const;  // throws std::system_error
};

}  // namespace rendr
