#include "core/types.hpp"

namespace rendr::core {

std::string_view to_string(FlowState s) {
  switch (s) {
    case FlowState::opening:
      return "opening";
    case FlowState::established:
      return "established";
    case FlowState::migrating:
      return "migrating";
    case FlowState::closed:
      return "closed";
    case FlowState::failed:
      return "failed";
  }
  return "unknown";
}

std::string_view to_string(PathState s) {
  switch (s) {
    case PathState::idle:
      return "idle";
    case PathState::dialing:
      return "dialing";
    case PathState::handshaking:
      return "handshaking";
    case PathState::up:
      return "up";
    case PathState::dead:
      return "dead";
    case PathState::removed:
      return "removed";
  }
  return "unknown";
}

std::string_view to_string(DownCause c) {
  switch (c) {
    case DownCause::eof:
      return "eof";
    case DownCause::reset:
      return "reset";
    case DownCause::error:
      return "error";
    case DownCause::silent:
      return "silent";
    case DownCause::handshake_timeout:
      return "handshake-timeout";
    case DownCause::protocol_error:
      return "protocol-error";
    case DownCause::replaced:
      return "replaced";
    case DownCause::removed:
      return "removed";
    case DownCause::flow_finished:
      return "flow-finished";
  }
  return "unknown";
}

std::string_view to_string(Mode m) {
  switch (m) {
    case Mode::prime:
      return "prime";
    case Mode::race:
      return "race";
    case Mode::bond:
      return "bond";
  }
  return "unknown";
}

std::string_view to_string(MigrateCause c) {
  switch (c) {
    case MigrateCause::explicit_request:
      return "explicit";
    case MigrateCause::death:
      return "death";
    case MigrateCause::follow_peer:
      return "follow";
    case MigrateCause::quality:
      return "quality";
  }
  return "unknown";
}

}  // namespace rendr::core
