#pragma once
// Vocabulary shared by the sans-I/O core and the layers above it.
#include <chrono>
#include <cstdint>
#include <string_view>

#include "wire/frame.hpp"

namespace rendr::core {

using Clock = std::chrono::steady_clock;
using Time = Clock::time_point;
using Duration = Clock::duration;
using PathId = std::uint32_t;
inline constexpr PathId kNoPath = 0;

enum class Role { client, server };
enum class Mode : std::uint8_t { prime = 1, race = 2, bond = 3 };

enum class FlowState {
  opening,      // client: OPEN sent, waiting for OPEN_ACK
  established,  // at least one path up
  migrating,    // no path up; the migration budget clock runs
  closed,       // both directions finished cleanly
  failed,       // budget exceeded, protocol error or aborted
};

enum class PathState {
  idle,         // client: wants a dial (at or after its redial time)
  dialing,      // client: the runtime is connecting
  handshaking,  // OPEN or JOIN sent, waiting for the answer
  up,           // attached; carries frames
  dead,         // declared dead; the runtime closes the carrier
  removed,      // taken out by remove_path
};

// Why a path went down, as reported by a carrier or decided by the core.
enum class DownCause {
  eof,     // the peer's transport closed (never an application EOF)
  reset,   // RST or equivalent
  error,   // any other transport error
  silent,  // the liveness detector saw nothing back in time
  handshake_timeout,
  protocol_error,  // malformed or unexpected frame on this path
  replaced,        // a newer carrier for the same path id took over
  removed,         // remove_path
  flow_finished,
};

// Why the active path changed.
// quality: prime mode moved to a clearly better path (FlowConfig::quality).
enum class MigrateCause { explicit_request, death, follow_peer, quality };

// Result of Flow::set_mode. Switches go through prime: prime<->race and prime<->bond are legal,
// race<->bond is illegal and changes nothing.
enum class SetModeResult { ok, illegal };
constexpr bool mode_switch_legal(Mode from, Mode to) {
  return from == to || from == Mode::prime || to == Mode::prime;
}

// Failure of the flow, surfaced to the application.
enum class FlowError {
  none,
  migration_budget_exceeded,
  protocol_error,
  peer_aborted,
  aborted,
  handshake_failed,
  authentication_failed,  // the peer did not prove the flow key (pre-shared keys differ)
};

std::string_view to_string(FlowState s);
std::string_view to_string(PathState s);
std::string_view to_string(DownCause c);
std::string_view to_string(Mode m);
std::string_view to_string(MigrateCause c);

}  // namespace rendr::core
