#pragma once
// rendr's error codes: std::error_code values in the rendr category. Where a portable meaning
// exists they compare equal to a std::errc condition (default_error_condition):
//   migration_budget_exceeded == std::errc::timed_out, peer_aborted == connection_aborted,
//   aborted == operation_canceled, protocol_error == protocol_error,
//   not_connected == not_connected, bad_path_spec == invalid_argument,
//   message_too_large == message_size.
#include <string>
#include <system_error>

namespace rendr {

// The errors rendr reports (besides asio's own, such as asio::error::eof for a clean close).
enum class errc {
  migration_budget_exceeded = 1,  // no usable path for longer than the migration budget
  illegal_mode_switch,            // race <-> bond
  protocol_error,                 // the peer broke the protocol
  peer_aborted,                   // the peer aborted the flow (CLOSE)
  aborted,                        // this side aborted the flow
  handshake_failed,               // OPEN could not complete on any path
  no_such_path,                   // admin call on an unknown or not-up path
  last_path,                      // remove_path on the only path
  bad_path_spec,                  // unparsable or unsupported path spec
  not_connected,                  // operation on an empty Conn/Listener
  listener_closed,                // the Listener was closed while accepting
  authentication_failed,          // the peer did not prove the flow key: pre-shared keys differ
  // A blocking call (Dialer::dial, Listener::accept, Conn::read_some/write_some) was made on a
  // thread that is running the engine's io_context: waiting there would deadlock, since that
  // thread is the one that would complete it. Use the async form on such threads.
  blocking_call_on_engine_thread,
  // PacketConn: a message larger than the flow's limit is refused, never truncated or split.
  message_too_large,
  // PacketConn: the receive buffer is smaller than the next message, which stays queued (the
  // call reports its size; receive it with a buffer that large).
  message_buffer_too_small,
};

// The "rendr" error category: messages for every errc, and their std::errc equivalents.
const std::error_category& category() noexcept;

// Makes errc values usable as std::error_code (found by argument-dependent lookup).
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), category()};
}

}  // namespace rendr

namespace std {
template <>
struct is_error_code_enum<rendr::errc> : true_type {};
}  // namespace std
